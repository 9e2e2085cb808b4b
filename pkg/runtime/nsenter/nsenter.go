// Package nsenter carries xrunc's C constructor (nsenter.c), which joins and
// creates namespaces in the re-executed init before the Go runtime starts
// threads, and the Go helper that describes that work in the environment.
// Import it for its side effect from the xrunc main package only.
//
// Internal to xstack; no API stability.
package nsenter

/*
#cgo CFLAGS: -Wall -Wextra -Werror -O2
*/
import "C"

import (
	"strconv"
	"strings"
)

// EnvName is the environment variable the constructor reads.
const EnvName = "_XRUNC_NSENTER"

// Join is one namespace to enter: an fd the init inherits, and its
// CLONE_NEW* type.
type Join struct {
	Fd   int
	Type uintptr
}

// Config describes the namespace work for one init process.
type Config struct {
	// SyncFd is the init's fd of the sync socket.
	SyncFd int
	// CloneFlags are the CLONE_NEW* flags of namespaces to create.
	CloneFlags uintptr
	// Joins are namespaces to enter, in any order: the constructor enters
	// the user namespace last.
	Joins []Join
}

// Env returns the "NAME=value" environment entry for c.
func (c Config) Env() string {
	var b strings.Builder
	b.WriteString(EnvName)
	b.WriteByte('=')
	b.WriteString(strconv.Itoa(c.SyncFd))
	b.WriteByte(' ')
	b.WriteString(strconv.FormatUint(uint64(c.CloneFlags), 16))
	for _, j := range c.Joins {
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(j.Fd))
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(uint64(j.Type), 16))
	}
	return b.String()
}
