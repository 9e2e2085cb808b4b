// Package xctl is the xctl command line: xd's client for people, with the
// habits of ctr, nerdctl and docker (run, ps, exec, logs, images ...). Each
// command calls xd through pkg/client; cmd/xctl only calls Main.
//
// Exit codes follow docker: 1 for an xctl error, 125 when run fails before
// the container starts, the container's own exit status otherwise.
//
// Internal to xstack; no API stability.
package xctl
