// Command bench is the benchmark behind `make bench`: it compares xrunc,
// xstack's OCI runtime, with runc 1.1.5 and crun 1.8.1, xshim, xstack's
// shim, with containerd-shim-runc-v2 1.6, and xd with xctl, xstack's daemon
// and client, with containerd 1.6 and ctr, side by side in one run and
// prints the ratios that reference.md sets targets for.
//
// Usage (as root):
//
//	XSTACK_BINDIR=/work/main/bin go run ./bench [-runtimes=xrunc,runc,crun|none] [-n 20] [-json]
//		[-shims=true] [-shim-containers 20] [-shim-runtimes runc,xrunc] [-shim-settle 2s]
//		[-daemons=true] [-daemon-n 20] [-daemon-list 20] [-daemon-restart 100] [-daemon-restarts 5]
//		[-daemon-scale 0]
//		[-daemon-image FILE]
//
// -runtimes none skips the runtime benchmarks, -shims=false the shim
// benchmark, -daemons=false the daemon benchmark; for the daemon benchmark
// alone: -runtimes none -shims=false.
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
// xrunc is absent) are what counts, not absolute times. A line says
// whether xrunc meets reference.md's targets: lifecycle and run + delete
// ≤ 1.0× crun's, create, start, state and delete each ≤ crun's (medians),
// create's peak RSS ≤ 5 MiB.
//
// Each runtime has its own temp --root and --log; stdio of the runtime, and
// so of the container, is /dev/null. Every container gets the cgroupsPath
// /xstack-bench-<pid>/<id>; the parents are removed from every hierarchy at
// the end. crun cannot run on this hybrid cgroup layout, so it runs from a
// worker process in a private mount namespace without the cgroup2 mount
// (see crunworker.go). Only processes the bench started are ever signalled.
//
// The shim benchmark (shims.go) measures the memory a shim costs per
// running container. It runs -shim-containers sleeping containers
// (/bin/sleep on the same busybox rootfs, the same spec, cgroupsPath under
// the same parent) under each configuration: containerd-shim-runc-v2
// driving runc (the reference, "runc-v2"), and xshim driving each runtime
// of -shim-runtimes ("xshim+runc", the fair comparison, and "xshim+xrunc",
// the product's default). The bench plays containerd 1.6 exactly
// (shim-protocol.md §1.2, §4.4): a 0700 bundle <tmp>/shims/<ns>/<id> with
// config.json and the log FIFO, which it keeps draining; `<shim> -namespace
// NS -address A -publish-binary /bin/true -id ID start` in the bundle, in
// its own process group, with GOMAXPROCS=2 and TTRPC_ADDRESS set and a
// protobuf Any of containerd.runc.v1.Options{binary_name, root} on stdin;
// then over ttrpc, with the namespace metadata on every call, Create (no
// stdio: /dev/null; the same options), Start and Connect (for the shim's
// pid). Events go to a Forward server of the bench on $TTRPC_ADDRESS, so
// the shims publish as they would to containerd; each container must cause
// one create, start, exit and delete event. The configurations take turns
// starting their containers, as the runtimes do above; each runs its own
// copy of its shim binary, so its N shims share their text pages with each
// other only, whatever else runs on the machine.
//
// After the last container started and -shim-settle passed (nothing is
// triggered in the shims meanwhile), each shim process is read once:
// PSS = Pss and USS (private) = Private_Clean + Private_Dirty from
// /proc/PID/smaps_rollup, RSS = Rss, threads from /proc/PID/status; the
// container's init must still be the shim's child. The report has the
// median and max per configuration, the ratios xshim/reference, and
// whether each xshim configuration meets reference.md's targets (PSS ≤
// 1.5 MiB, private ≤ 1.25 MiB, PSS ≤ half the reference's). Teardown is
// containerd's: Kill SIGKILL, Wait (137), Delete, Shutdown, close, `shim
// ... -bundle B delete` (must exit 0 and print a DeleteResponse), after
// which the shim must exit and its socket (/run/containerd/s/…,
// /run/xstack/s/…) must be gone; the runtime roots must be empty. Any of
// these failing is reported and fails the run, and everything is still
// cleaned up. Shims are reparented to the bench (the subreaper), which
// reaps them; a shim still running after Shutdown is killed by its pidfd.
//
// The daemon benchmark (daemons.go) compares a private xd (default runtime
// xshim + xrunc) driven by xctl with a private containerd 1.6 (runc through
// io.containerd.runc.v2) driven by ctr. Both run in one private mount
// namespace with a tmpfs on /run, held by an anchor process (`unshare
// --mount --propagation private sh -c 'mount -t tmpfs tmpfs /run && exec
// sleep infinity'`, shim-protocol.md §4.5), so containerd's hard-coded
// /run/containerd/s and xshim's /run/xstack/s are private; the daemons and
// every client call enter it with `nsenter -t ANCHOR -m`, so both clients
// pay the same nsenter exec. Each daemon has its own root, state and socket
// under the temp dir; containerd's config disables CRI and keeps the opt
// plugin out of /opt. The image is an OCI image-layout tar built with
// `go run ./contrib/busybox-image` (or -daemon-image), imported into both
// with `images import` (ctr needs no extra flag for it) under the name in
// its index.json; every container lives in the namespace
// xstack-bench-d<pid>. It measures, the daemons taking turns in a rotating
// order, each client call timed as fork+exec+wait like the runtime steps:
//
//   - end to end, -daemon-n times after -warmup: `xctl run --rm --name ID
//     IMAGE /bin/true` against `ctr run --rm IMAGE ID /bin/true`;
//   - -daemon-list sleeping containers started in each (`run -d`, /bin/sleep
//     3600; each start is timed too), then listing them, -daemon-n times
//     after -warmup: `xctl ps` against `ctr task ls`;
//   - more sleeping containers up to -daemon-restart, their init pids read
//     (`xctl ps --format json`, `ctr task ls`), then -daemon-restarts
//     restarts of each daemon: SIGTERM to the daemon (by its pid; it is our
//     child) and wait for its exit (timed as "stop"), check every init is
//     still alive, start the daemon again and time from the start of the new
//     process until its list shows all of them running, polled every 10 ms
//     (`xctl ps -q` lines, `ctr task ls` RUNNING rows); then every container
//     must have kept its init pid, or it counts as lost and the run fails;
//   - with -daemon-scale N (make bench-scale: 1,000), the scale figures of
//     reference.md: more sleeping containers up to N in each, then, after
//     2 s, the daemon process's RSS, PSS and threads (smaps_rollup,
//     status), the listing timed -daemon-n times after -warmup, one more
//     restart timed as above, and after 2 s the daemon's memory again.
//     xd's targets are absolute: its list under 100 ms (median), its RSS
//     under 100 MiB (both readings).
//
// The report has the medians (p90, max), the ratios xd/containerd and
// whether reference.md's targets are met (run --rm ≤ 0.33, list ≤ 0.5,
// restart ≤ 0.25); a missed target is reported, not a failure. Teardown
// removes every container of the namespace through its daemon (`xctl rm
// -f`; `ctr task rm -f`, `ctr container rm`) and checks none is left, stops
// the daemons with SIGTERM, checks that no process is left in the private
// namespace (a leftover is killed by its pidfd and fails the run), that no
// shim socket or mount is left in it (noted; they end with it), kills the
// anchor, and removes the cgroup parents /<ns> (containerd) and /xd/<ns>
// (xd) in every hierarchy, and /xd if the benchmark created it and it is
// empty; a container cgroup still there is noted.
//
// The exit status is non-zero if any step of any runtime, shim or daemon
// failed, if a container exited non-zero or was lost, or if a reference
// runtime, shim or daemon is missing; a missing xrunc, xshim, xd or xctl is
// reported and the others are benchmarked.
package main
