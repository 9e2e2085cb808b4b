package runtime_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestCheckpointRestore: checkpoint and restore need CRIU. On this machine
// Debian's CRIU 3.17 fails `criu check` (the kernel's vDSO layout is newer
// than it knows), and xrunc does not drive CRIU yet: both commands must
// fail with an error that says so, and leave the container as it was and no
// restored container behind.
func TestCheckpointRestore(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t)
		c := rt.CreateStart(t, b)
		pid := c.Pid(t)
		images := filepath.Join(testenv.TempDir(t, 0o700), "images")
		r := rt.Run(t, "checkpoint", "--leave-running", "--image-path", images, c.ID)
		if r.Code == 0 {
			t.Logf("%s checkpointed: CRIU works here", rt.Name)
		} else if msg := rt.ErrorText(t, r); rt.Is("xrunc") && !strings.Contains(msg, "checkpoint: not supported by this version of xrunc (") {
			t.Errorf("checkpoint error %q does not say why", msg)
		}
		if st := rt.MustState(t, c.ID); st.Status != "running" || st.Pid != pid {
			t.Errorf("after checkpoint: %s pid %d, want running pid %d", st.Status, st.Pid, pid)
		}
		restored := c.ID + "-restored"
		r = rt.Run(t, "restore", "--detach", "--bundle", b.Dir, "--image-path", images, restored)
		if r.Code == 0 {
			t.Fatalf("restore from a failed checkpoint succeeded: %s", r)
		}
		if msg := rt.ErrorText(t, r); rt.Is("xrunc") && !strings.Contains(msg, "restore: not supported by this version of xrunc (") {
			t.Errorf("restore error %q does not say why", msg)
		}
		if _, _, err := rt.State(t, restored); err == nil {
			t.Errorf("failed restore left container %s", restored)
		}
		if r := rt.Run(t, "checkpoint", "no-such-container"); r.Code == 0 || !strings.Contains(rt.ErrorText(t, r), "container does not exist") {
			t.Errorf("checkpoint of a missing container: %s", r)
		}
	})
}
