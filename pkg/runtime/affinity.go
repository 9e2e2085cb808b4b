package runtime

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// pinInit returns what sets the calling thread's CPU affinity to the one
// an exec asks to start with (process.execCPUAffinity.initial), so that
// the init forked from that thread starts with it; nil when none is asked.
// Without one the init resets its affinity itself (see
// syncproto.InitConfig.KeepAffinity).
func pinInit(initial *unix.CPUSet) func() error {
	if initial == nil {
		return nil
	}
	return func() error {
		if err := unix.SchedSetaffinity(0, initial); err != nil {
			return fmt.Errorf("process.execCPUAffinity.initial: set the affinity the process starts with: %w", err)
		}
		return nil
	}
}
