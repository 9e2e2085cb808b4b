// Package devicefilter enforces a container's device rules on cgroup v2,
// where they are not cgroup files but an eBPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup. The
// program gives the same answers as the v1 devices controller fed "deny
// all" and then the rules in order: the last rule that matches a request
// decides it, and a request no rule matches is denied.
//
// The program is a handful of instructions of four kinds, loaded and
// attached with bpf(2) directly. cilium/ebpf would do the same but adds
// 1.5 MB to xrunc: measured, 3 ms more per `xrunc run` when every create
// copied the binary into a sealed memfd (now only the fallback, see
// exeseal), and more page faults at every start. Programs are attached with
// BPF_PROG_ATTACH (not a bpf_link), so they stay with the cgroup after the
// short-lived runtime process exits.
package devicefilter
