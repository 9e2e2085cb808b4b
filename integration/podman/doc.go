// Package podman holds the end-to-end suite in which Debian's podman 4.3
// (with conmon) drives the OCI runtime under test through --runtime, as a
// user who swaps runc for xrunc would (package podman_test; this file only
// documents it).
//
// Each test gets a private podman: storage, run root and tmpdir in a temp
// dir, the runtime's --root and --log passed with --runtime-flag so its
// state and log stay with the test, the cgroupfs manager with a test
// cgroup parent (conmon lands in <parent>/conmon), the file events backend
// and no network. Containers run from a copy of the test rootfs
// (--rootfs), so no image store is involved: what podman hands the runtime
// is the same bundle it would build from an image. The tests run for each
// runtime in XSTACK_RUNTIMES, runc first to prove them right. They need
// root.
//
// Internal to xstack; no API stability.
package podman
