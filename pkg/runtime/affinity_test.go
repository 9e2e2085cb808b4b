package runtime

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/procattr"
)

func cpuSet(cpus ...int) unix.CPUSet {
	var s unix.CPUSet
	for _, c := range cpus {
		s.Set(c)
	}
	return s
}

func TestCovers(t *testing.T) {
	tests := []struct {
		name     string
		set, sub unix.CPUSet
		want     bool
	}{
		{"equal", cpuSet(0, 1), cpuSet(0, 1), true},
		{"superset", cpuSet(0, 1, 2), cpuSet(1), true},
		{"missing one", cpuSet(0), cpuSet(0, 1), false},
		{"disjoint", cpuSet(2), cpuSet(1), false},
		{"high word", cpuSet(0, 700), cpuSet(700), true},
		{"high word missing", cpuSet(0), cpuSet(700), false},
		{"empty sub", cpuSet(0), cpuSet(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := covers(tt.set, tt.sub); got != tt.want {
				t.Errorf("covers(%v, %v) = %v, want %v", tt.set, tt.sub, got, tt.want)
			}
		})
	}
}

// TestForkAffinity runs on a thread of its own, whose affinity it narrows
// (the thread is discarded afterwards, never unlocked).
func TestForkAffinity(t *testing.T) {
	online, err := onlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if online.Count() < 2 {
		t.Skipf("needs two online CPUs to narrow the affinity, this host has %d", online.Count())
	}
	first := -1
	for c := 0; first < 0; c++ {
		if online.IsSet(c) {
			first = c
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		asked := cpuSet(first)
		if got := forkAffinity(&asked); got == nil || *got != asked {
			t.Errorf("with an initial affinity: %v, want it", got)
		}
		var own unix.CPUSet
		if err := unix.SchedGetaffinity(0, &own); err != nil {
			t.Error(err)
			return
		}
		if covers(own, online) {
			if got := forkAffinity(nil); got != nil {
				t.Errorf("with every online CPU already: %v, want nil (keep it)", got)
			}
		}
		if err := unix.SchedSetaffinity(0, &asked); err != nil {
			t.Error(err)
			return
		}
		if got, all := forkAffinity(nil), procattr.AllCPUs(); got == nil || *got != all {
			t.Errorf("pinned to CPU %d: %v, want every CPU", first, got)
		}
	}()
	<-done
}
