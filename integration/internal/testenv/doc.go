// Package testenv is the harness of the xstack integration suites: runtime
// selection (runc, xrunc, ...), test rootfs and bundle builders, helpers to run
// the runtime's CLI and decode its state and JSON log, a console-socket
// receiver, cgroup and leak checks, and cleanup of everything a test created.
//
// Tests need root. Environment:
//
//	XSTACK_RUNTIMES  comma-separated runtimes to test (default "runc,xrunc");
//	                 "xrunc" is $XSTACK_BINDIR/xrunc, any other name is looked
//	                 up in $PATH, an absolute path is used as is.
//	XSTACK_BINDIR    where xrunc is built (default <repo>/bin).
//
// A test package should call testenv.Main from its TestMain so the per-binary
// caches are removed at the end.
//
// Internal to xstack; no API stability.
package testenv
