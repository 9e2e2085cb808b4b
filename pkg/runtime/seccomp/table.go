package seccomp

import (
	"slices"
	"strings"
)

// syscallTable is a generated syscall name → number table, sorted by name.
// A slice of constants is laid out by the linker and costs nothing when a
// process starts; a map literal of this size would be built by every xrunc
// process (start, state, delete...), seccomp or not.
type syscallTable []syscallNr

type syscallNr struct {
	name string
	nr   uint32
}

func (t syscallTable) lookup(name string) (uint32, bool) {
	i, ok := slices.BinarySearchFunc(t, name, func(e syscallNr, name string) int { return strings.Compare(e.name, name) })
	if !ok {
		return 0, false
	}
	return t[i].nr, true
}
