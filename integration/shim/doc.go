// Package shim holds the black-box end-to-end suite of containerd shim v2
// binaries (package shim_test; this file only documents it).
//
// The tests play containerd's part: they make bundles, start the shim with
// `<shim> -namespace NS -address A -publish-binary P -id ID start` exactly as
// containerd 1.6 does, serve the events API
// (containerd.services.events.ttrpc.v1.Events/Forward) on $TTRPC_ADDRESS,
// and drive the task API (containerd.task.v2.Task) over ttrpc; teardown runs
// `<shim> ... -bundle B delete` as containerd does after every disconnect.
//
// Every test runs for each shim in XSTACK_SHIMS (containerd-shim-runc-v2 and
// xshim by default) driving each OCI runtime in XSTACK_SHIM_RUNTIMES (runc
// and xrunc by default), so the reference containerd-shim-runc-v2 1.6.20
// validates the tests before they judge xshim. The tests need root; see
// integration/shim/README.md.
//
// Internal to xstack; no API stability.
package shim
