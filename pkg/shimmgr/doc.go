// Package shimmgr is the daemon side of containerd runtime v2 shims: it
// starts a shim binary for a container exactly as containerd 1.6 does, talks
// to it over ttrpc (containerd.task.v2.Task), re-attaches to it after a
// daemon restart, and runs the shim's out-of-band `delete` to clean up after
// it. It drives xshim and containerd-shim-runc-v2 alike.
//
// The protocol (shim-protocol.md §1 and §4.4 in the shared docs):
//
//   - The bundle is <dir>/<ns>/<id>: containerd-shim-runc-v2's `delete`
//     finds its bundle as dir(cwd)/<id>, so Start refuses a bundle whose base
//     name is not the id.
//   - Before `start`, the daemon makes the FIFO <bundle>/log and keeps
//     reading it for as long as it is attached: the shim opens it for writing
//     at startup (containerd-shim-runc-v2 exits if that fails) and would block
//     on a FIFO nobody drains. Its lines go to the Manager's logger at debug.
//   - `<shim> -namespace NS -address A -publish-binary B -id ID [-debug] start`
//     runs with cwd = bundle, its own process group, TTRPC_ADDRESS=A in the
//     environment, the runc Options as a protobuf Any on stdin, and prints
//     the shim's address (bare "unix://..." or 1.7+ bootstrap JSON).
//   - A Direct runtime (xshim) is launched without `start`: the Manager
//     does start's work itself (pkg/shim/launch: socket, address and
//     options files, the server with the listener as fd 3), with the same
//     command line, cwd, process group and environment, and the server made
//     a child of xd's parent (CLONE_PARENT), where `start` would leave it.
//   - Every task API call carries the ttrpc metadata
//     containerd-namespace-ttrpc: NS (the runc shim refuses Create without).
//   - Files the Manager keeps in the bundle: log (FIFO), shim-binary-path
//     (written before `start`, so Cleanup can always run the right binary)
//     and address (the shim writes it; the Manager does if it did not).
//   - `<shim> ... -id ID -bundle B delete` prints a DeleteResponse; it runs
//     after every disconnect, the normal Shutdown included.
//
// Internal to xstack; no API stability.
package shimmgr
