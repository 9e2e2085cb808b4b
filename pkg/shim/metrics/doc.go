// Package metrics turns a container's cgroup counters, as
// pkg/runtime/cgroups reads them, into the protobuf message containerd
// expects in the shim's StatsResponse: io.containerd.cgroups.v1.Metrics for
// a cgroup v1 (or hybrid) container, io.containerd.cgroups.v2.Metrics for a
// cgroup v2 one, with the field conventions containerd's own cgroups library
// uses, so containerd, ctr and the CRI plugin read them as they read
// containerd-shim-runc-v2's.
//
// Internal to xstack; no API stability.
package metrics
