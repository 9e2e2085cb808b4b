package runtime_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestCyclesLeaveNothing: many create/start/exec/delete cycles leave no
// mount, cgroup, process or state behind (no runtime process outlives a
// command, so a leaked fd would show as a process left behind). xrunc runs the full 500;
// runc runs a tenth, enough to show the checks pass on the reference.
func TestCyclesLeaveNothing(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		cycles := 500
		if !rt.Is("xrunc") {
			cycles = 50
		}
		if testing.Short() {
			cycles = 20
		}
		b := testenv.NewBundle(t)
		snap := testenv.TakeSnapshot(t)
		for i := 0; i < cycles; i++ {
			b.ID = fmt.Sprintf("cycle-%d", i)
			c := rt.CreateStart(t, b)
			if out := execOK(t, rt, c.ID, nil, "/xtest", "pid"); out == "" {
				t.Fatalf("cycle %d: exec printed nothing", i)
			}
			rt.MustRun(t, "delete", "--force", c.ID)
			// The container's stdio files are the harness's, not leaks.
			os.Remove(c.Stdout)
			os.Remove(c.Stderr)
		}
		snap.AssertNoLeaks(t, rt, b, b.ID)
		t.Logf("%d cycles", cycles)
	})
}
