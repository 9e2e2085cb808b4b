package shim_test

import (
	"syscall"
	"testing"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/task"
	"google.golang.org/grpc/codes"
)

// TestKill: SIGTERM reaches an init that handles it; Kill all kills the
// init and the execs; Kill of a process that has exited is NotFound.
func TestKill(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		t.Run("sigterm", func(t *testing.T) {
			b := e.newBundle(t, newID("term"), withArgs("/xtest", "pause"))
			io := e.newStdio(t, false, true, true)
			s := e.startShim(t, b)
			s.run(t, io)
			io.waitOut(t, "ready\n")
			if err := s.kill("", syscall.SIGTERM, false); err != nil {
				t.Fatalf("Kill SIGTERM: %v", err)
			}
			w := s.mustWait(t, "")
			io.waitOut(t, "SIGTERM\n")
			if w.ExitStatus != 0 {
				t.Errorf("exit status %d after a handled SIGTERM, want 0", w.ExitStatus)
			}
			// The process has exited: Kill is NotFound, for the init
			// (with and without all) as for an exec.
			err := s.kill("", syscall.SIGKILL, false)
			wantCode(t, "Kill of an exited init", err, codes.NotFound)
			if err := s.kill("", syscall.SIGKILL, true); err != nil {
				t.Logf("Kill all of an exited init: %v (code %v)", err, codeOf(err))
			} else {
				t.Logf("Kill all of an exited init: ok")
			}
			s.mustDelete(t, "")
			err = s.kill("", syscall.SIGKILL, false)
			wantCode(t, "Kill of a deleted init", err, codes.NotFound)
		})

		t.Run("all", func(t *testing.T) {
			b := e.newBundle(t, newID("all"), withArgs("/bin/sleep", "3600"))
			s := e.startShim(t, b)
			s.run(t, nil)
			s.exec(t, "e1", nil, false, "/bin/sleep", "3600")
			epid := s.startTask(t, "e1")
			if err := s.kill("", syscall.SIGKILL, true); err != nil {
				t.Fatalf("Kill all: %v", err)
			}
			if w := s.mustWait(t, "e1"); w.ExitStatus != 137 {
				t.Errorf("exec after Kill all: exit %d, want 137", w.ExitStatus)
			}
			if w := s.mustWait(t, ""); w.ExitStatus != 137 {
				t.Errorf("init after Kill all: exit %d, want 137", w.ExitStatus)
			}
			if !waitGone(int(epid), 5*time.Second) {
				t.Errorf("exec pid %d still alive after Kill all", epid)
			}
			err := s.kill("e1", syscall.SIGKILL, false)
			wantCode(t, "Kill of an exited exec", err, codes.NotFound)
			s.mustDelete(t, "e1")
			s.mustDelete(t, "")
		})

		t.Run("unknown", func(t *testing.T) {
			b := e.newBundle(t, newID("unk"))
			s := e.startShim(t, b)
			s.run(t, nil)
			ctx, cancel := s.ctx()
			defer cancel()
			_, err := s.task.Kill(ctx, &taskapi.KillRequest{ID: b.ID, ExecID: "no-such-exec", Signal: 9})
			wantCode(t, "Kill of an unknown exec", err, codes.NotFound)
		})
	})
}

// TestPauseResume: Pause freezes the container (State PAUSED, also for a
// running exec), Resume thaws it (RUNNING); TaskPaused and TaskResumed are
// published.
func TestPauseResume(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		b := e.newBundle(t, newID("pause"), withArgs("/bin/sleep", "3600"))
		s := e.startShim(t, b)
		s.run(t, nil)
		s.exec(t, "e1", nil, false, "/bin/sleep", "3600")
		s.startTask(t, "e1")
		ctx, cancel := s.ctx()
		defer cancel()
		if _, err := s.task.Pause(ctx, &taskapi.PauseRequest{ID: b.ID}); err != nil {
			t.Fatalf("Pause: %v", err)
		}
		if st := s.mustState(t, ""); st.Status != task.Status_PAUSED {
			t.Errorf("State after Pause: %v, want PAUSED", st.Status)
		}
		if st := s.mustState(t, "e1"); st.Status != task.Status_PAUSED {
			t.Errorf("State of a running exec after Pause: %v, want PAUSED", st.Status)
		}
		if _, err := s.task.Resume(ctx, &taskapi.ResumeRequest{ID: b.ID}); err != nil {
			t.Fatalf("Resume: %v", err)
		}
		if st := s.mustState(t, ""); st.Status != task.Status_RUNNING {
			t.Errorf("State after Resume: %v, want RUNNING", st.Status)
		}
		if st := s.mustState(t, "e1"); st.Status != task.Status_RUNNING {
			t.Errorf("State of the exec after Resume: %v, want RUNNING", st.Status)
		}
		evs, ok := e.events.WaitFor(exitTimeout, func(evs []recordedEvent) bool {
			n := 0
			for _, ev := range eventsFor(evs, b.ID) {
				if ev.Topic == topicPaused || ev.Topic == topicResumed {
					n++
				}
			}
			return n >= 2
		})
		var got []string
		for _, ev := range eventsFor(evs, b.ID) {
			if ev.Topic == topicPaused || ev.Topic == topicResumed {
				got = append(got, ev.Topic)
			}
		}
		if !ok || len(got) != 2 || got[0] != topicPaused || got[1] != topicResumed {
			t.Errorf("pause events %q, want [%s %s]", got, topicPaused, topicResumed)
		}
		// Resuming a running container is an error (Unknown "cannot
		// resume a running process" in the reference).
		_, err := s.task.Resume(ctx, &taskapi.ResumeRequest{ID: b.ID})
		if err == nil {
			t.Errorf("Resume of a running container: no error")
		} else {
			t.Logf("Resume of a running container: %v (code %v)", err, codeOf(err))
		}
		_, err = s.task.Pause(ctx, &taskapi.PauseRequest{ID: "no-such-container"})
		wantCode(t, "Pause of an unknown container", err, codes.NotFound)
	})
}
