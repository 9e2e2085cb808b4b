// Package ocicli is the shim's client of an OCI runtime's command line:
// xrunc, runc or crun driven through their runc-compatible CLI, the way
// containerd-shim-runc-v2 drives runc (see shim-protocol.md §5).
//
// It builds the argv (global flags before the subcommand), runs the binary
// through a Spawner, and turns a failure into an *Error that carries the
// exit status, the captured output and the last error the runtime appended
// to its --log JSON file during that very command.
//
// The reaper rule: the shim is a subreaper whose reaper collects every child
// with wait4(-1), so os/exec must never wait for a runtime process itself.
// Every child is therefore run through Runtime.Spawner, and no copying
// goroutine of os/exec is ever involved: the stdio given to a child is always
// an *os.File (the container's stdio, /dev/null, or a pipe this package
// reads or writes itself).
//
// Internal to xstack; no API stability.
package ocicli
