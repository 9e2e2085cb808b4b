// Package taskio is xd's end of a task process's stdio: the FIFOs the shim
// hands to the container, a copier per output stream that appends the init's
// output to its log file and fans it out to attached clients, and the stdin
// writer. FIFOs are reopened by path after an xd restart; the shim keeps its
// own ends open meanwhile, so the container never sees EPIPE or EOF.
//
// Internal to xstack; no API stability.
package taskio
