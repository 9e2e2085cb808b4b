// Package containerd holds the end-to-end suite in which a real, private
// containerd 1.6 (Debian's /usr/bin/containerd) and its ctr client drive a
// shim v2 binary (package containerd_test; this file only documents it).
//
// Each test starts its own containerd: root, state and the grpc socket in
// a temp dir, the CRI plugin disabled, inside a private mount namespace
// with a tmpfs on /run (containerd 1.6 hard-codes /run/containerd/s for
// shim sockets), held by an anchor process; containerd and every ctr
// command enter it with nsenter. The shim under test is put first in
// containerd's PATH under the name containerd-shim-runc-v2 (so the default
// runtime io.containerd.runc.v2 launches it with the real
// containerd.runc.v1.Options that `ctr run --runc-binary` sends), and the
// OCI runtime under test first under the name runc (the default binary of
// a shim that gets no options, as with `ctr run --runtime /abs/shim`).
//
// Tests run for each shim in XSTACK_SHIMS and runtime in
// XSTACK_SHIM_RUNTIMES; see integration/shim/README.md. They need root.
//
// Internal to xstack; no API stability.
package containerd
