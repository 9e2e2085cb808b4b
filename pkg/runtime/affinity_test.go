package runtime

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPinInit runs on a thread of its own, whose affinity it changes (the
// thread is discarded afterwards, never unlocked).
func TestPinInit(t *testing.T) {
	if pinInit(nil) != nil {
		t.Fatal("pinInit(nil) sets an affinity")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		var own unix.CPUSet
		if err := unix.SchedGetaffinity(0, &own); err != nil {
			t.Error(err)
			return
		}
		var first unix.CPUSet
		for c := 0; first.Count() == 0; c++ {
			if own.IsSet(c) {
				first.Set(c)
			}
		}
		if err := pinInit(&first)(); err != nil {
			t.Error(err)
			return
		}
		var got unix.CPUSet
		if err := unix.SchedGetaffinity(0, &got); err != nil || got != first {
			t.Errorf("after pinInit(%v): %v, %v", first, got, err)
		}
		var none unix.CPUSet
		none.Set(1023) // no such CPU here
		if err := pinInit(&none)(); err == nil {
			t.Error("pinInit to a CPU this host lacks succeeded")
		}
	}()
	<-done
}
