package runtime

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/procattr"
)

// forkAffinity is the CPU affinity the init is forked with, which it keeps
// until it enters the container's cgroup; nil keeps xrunc's own. An exec
// may ask for one (process.execCPUAffinity.initial). Otherwise a narrower
// affinity that xrunc inherited from its caller (a shim pinned to
// housekeeping CPUs, a taskset) is not passed on: the container gets every
// CPU its cpuset allows, as runc does.
func forkAffinity(initial *unix.CPUSet) *unix.CPUSet {
	if initial != nil {
		return initial
	}
	var own unix.CPUSet
	if err := unix.SchedGetaffinity(0, &own); err != nil {
		return nil
	}
	online, err := onlineCPUs()
	if err != nil || covers(own, online) {
		return nil
	}
	all := procattr.AllCPUs()
	return &all
}

func onlineCPUs() (unix.CPUSet, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return unix.CPUSet{}, err
	}
	return procattr.CPUList(strings.TrimSpace(string(b)))
}

// covers reports whether every CPU of sub is in set.
func covers(set, sub unix.CPUSet) bool {
	for i := range sub {
		if sub[i]&^set[i] != 0 {
			return false
		}
	}
	return true
}

// pinInit returns what sets the calling thread's affinity to the one the
// init is to be forked with (the init inherits it), or nil if there is
// none to set.
func pinInit(initial *unix.CPUSet) func() error {
	cpus := forkAffinity(initial)
	if cpus == nil {
		return nil
	}
	what := "reset the CPU affinity inherited from xrunc's caller"
	if initial != nil {
		what = "process.execCPUAffinity.initial: set the affinity the process starts with"
	}
	return func() error {
		if err := unix.SchedSetaffinity(0, cpus); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
}
