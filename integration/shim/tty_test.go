package shim_test

import (
	"strings"
	"testing"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
)

// TestTTY: an init with a terminal (spec process.terminal and
// CreateTaskRequest.terminal) reads its stdin FIFO and writes its stdout
// FIFO through the pty; ResizePty changes `stty size` for the init and for
// an exec with a terminal.
func TestTTY(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		b := e.newBundle(t, newID("tty"), withArgs("/bin/sh"), withTerminal())
		// With a terminal there is no stderr, as in containerd.
		io := e.newStdio(t, true, true, false)
		s := e.startShim(t, b)
		s.create(t, io, true)
		if st := s.mustState(t, ""); !st.Terminal {
			t.Errorf("State: terminal false, want true")
		}
		s.startTask(t, "")

		// The shell's answer, not the terminal's echo of the command.
		io.write(t, "echo hi-$((40+2))\n")
		io.waitOut(t, "hi-42")

		resize := func(execID string, w, h uint32) {
			t.Helper()
			ctx, cancel := s.ctx()
			defer cancel()
			if _, err := s.task.ResizePty(ctx, &taskapi.ResizePtyRequest{ID: b.ID, ExecID: execID, Width: w, Height: h}); err != nil {
				t.Fatalf("ResizePty %q: %v", execID, err)
			}
		}
		resize("", 101, 31)
		io.write(t, "echo size-$(stty size | tr ' ' x)\n")
		io.waitOut(t, "size-31x101")

		t.Run("exec", func(t *testing.T) {
			eio := e.newStdio(t, true, true, false)
			// It waits for a line so the resize lands first.
			s.exec(t, "tty1", eio, true, "/bin/sh", "-c", "read x; stty size; test -t 0 && test -t 1 && echo is-a-tty")
			s.startTask(t, "tty1")
			resize("tty1", 77, 22)
			eio.write(t, "go\n")
			if w := s.mustWait(t, "tty1"); w.ExitStatus != 0 {
				t.Errorf("exec with terminal: exit %d, want 0", w.ExitStatus)
			}
			out := eio.waitOut(t, "is-a-tty")
			if !strings.Contains(out, "22 77") {
				t.Errorf("stty size in the exec: %q, want 22 77", out)
			}
			s.mustDelete(t, "tty1")
		})

		io.write(t, "exit 4\n")
		if w := s.mustWait(t, ""); w.ExitStatus != 4 {
			t.Errorf("shell exit %d, want 4", w.ExitStatus)
		}
		s.mustDelete(t, "")
	})
}
