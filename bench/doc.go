// Command bench is the benchmark behind `make bench`: it compares xrunc,
// xstack's OCI runtime, with runc 1.1.5 and crun 1.8.1 side by side in one
// run and prints the ratios that reference.md sets targets for.
//
// Usage (as root):
//
//	XSTACK_BINDIR=/work/main/bin go run ./bench [-runtimes=xrunc,runc,crun] [-n 20] [-json]
//
// For every runtime it measures, with a /bin/true container on a static
// busybox rootfs:
//
//   - the full lifecycle: create (--pid-file), start, wait until the init has
//     stopped, delete. The wait is not a `state` loop, which would add runtime
//     calls: the bench is the child subreaper (as a shim is), the init is
//     reparented to it when create exits, and it waits on a pidfd of the
//     init, then reaps it with wait4 and checks it exited 0. It reports the
//     per-container median and p90 and the per-step medians, plus `state`
//     on a created container, timed in a separate lifecycle;
//   - a foreground `run` (the runtime waits for the container and exits with
//     its status) plus `delete --force`: a foreground run already removes
//     the container when it exits, so a plain delete would fail with
//     "container does not exist" in both runc and crun;
//   - the peak memory of create: ru_maxrss of create as reported by GNU
//     time (/usr/bin/time -f %M, Debian package "time") in separate,
//     untimed lifecycles (inside the worker for crun). Not the rusage of
//     the timed create: Go starts it with vfork, and Linux charges the
//     pre-exec mm, ours, to its ru_maxrss; GNU time forks a ~1 MiB copy
//     (see rss.go);
//   - the floor: `unshare --fork --pid --mount --uts --ipc --net --cgroup
//     /bin/true`, for context.
//
// Each step is timed as the wall clock around fork+exec+wait of the runtime
// process, by the same code for every runtime. The runtimes alternate within
// each iteration, in a rotating order, so noise on this shared machine hits
// all of them alike; the ratios (xrunc/runc, xrunc/crun, or crun/runc when
// xrunc is absent) are what counts, not absolute times.
//
// Each runtime has its own temp --root and --log; stdio of the runtime, and
// so of the container, is /dev/null. Every container gets the cgroupsPath
// /xstack-bench-<pid>/<id>; the parents are removed from every hierarchy at
// the end. crun cannot run on this hybrid cgroup layout, so it runs from a
// worker process in a private mount namespace without the cgroup2 mount
// (see crunworker.go). Only processes the bench started are ever signalled.
//
// The exit status is non-zero if any step of any runtime failed, if a
// container exited non-zero, or if a reference runtime is missing; a missing
// xrunc is reported and the others are benchmarked.
package main
