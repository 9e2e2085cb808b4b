package procattr

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maxCPUs is how many CPUs a unix.CPUSet (the kernel's default
// CPU_SETSIZE) can name.
const maxCPUs = len(unix.CPUSet{}) * 64

// CPUList parses a CPU list in the kernel's list format, "0-3,7", as the
// runtime spec writes CPU affinities.
func CPUList(list string) (unix.CPUSet, error) {
	var set unix.CPUSet
	if strings.TrimSpace(list) == "" {
		return set, fmt.Errorf("empty CPU list")
	}
	err := parseList(list, "CPU", maxCPUs, "an affinity mask can name", set.Set)
	return set, err
}

// parseList parses the kernel's list format ("0-3,7") of numbers below
// limit, calling set for each.
func parseList(list, what string, limit int, why string, set func(int)) error {
	number := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a %s number", s, what)
		}
		if n >= limit {
			return 0, fmt.Errorf("%s %d is beyond the %d %ss %s", what, n, limit, what, why)
		}
		return n, nil
	}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		first, err := number(lo)
		if err != nil {
			return err
		}
		last := first
		if isRange {
			if last, err = number(hi); err != nil {
				return err
			}
			if last < first {
				return fmt.Errorf("%s range %q runs backwards", what, part)
			}
		}
		for n := first; n <= last; n++ {
			set(n)
		}
	}
	return nil
}

// ExecCPUAffinity converts process.execCPUAffinity. Initial is the
// affinity an exec'd process starts with, until it enters the container's
// cgroup; final is set once it is there. Either is nil when not given.
func ExecCPUAffinity(a *specs.CPUAffinity) (initial, final *unix.CPUSet, err error) {
	if a == nil {
		return nil, nil, nil
	}
	if a.Initial != "" {
		set, err := CPUList(a.Initial)
		if err != nil {
			return nil, nil, fmt.Errorf("process.execCPUAffinity.initial: %w", err)
		}
		initial = &set
	}
	if a.Final != "" {
		set, err := CPUList(a.Final)
		if err != nil {
			return nil, nil, fmt.Errorf("process.execCPUAffinity.final: %w", err)
		}
		final = &set
	}
	return initial, final, nil
}

// AllCPUs is the mask that names every CPU: set as an affinity, the
// kernel narrows it to the CPUs the caller's cpuset allows.
func AllCPUs() unix.CPUSet {
	var set unix.CPUSet
	for cpu := range maxCPUs {
		set.Set(cpu)
	}
	return set
}
