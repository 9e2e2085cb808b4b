package shim_test

import (
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/task"
	"google.golang.org/grpc/codes"
)

// TestLifecycle: Create → CREATED with a pid → Start → RUNNING → Wait gets
// the exit code and exited_at → STOPPED with that status → Delete returns
// it → State NotFound; for exit 0, exit 3 and SIGKILL (137). Stdout and
// stderr reach their FIFOs.
func TestLifecycle(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		cases := []struct {
			name   string
			args   []string
			kill   bool
			status uint32
		}{
			{"exit0", []string{"/bin/sh", "-c", "read x; echo out-$x; echo err-$x >&2; exit 0"}, false, 0},
			{"exit3", []string{"/bin/sh", "-c", "read x; echo out-$x; echo err-$x >&2; exit 3"}, false, 3},
			{"sigkill", []string{"/bin/sh", "-c", "read x; echo out-$x; echo err-$x >&2; exec /bin/sleep 3600"}, true, 137},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				b := e.newBundle(t, newID(tc.name), withArgs(tc.args...))
				io := e.newStdio(t, true, true, true)
				s := e.startShim(t, b)
				pid := s.create(t, io, false)
				st := s.mustState(t, "")
				if st.Status != task.Status_CREATED || st.Pid != pid {
					t.Errorf("State after Create: status %v pid %d, want CREATED pid %d", st.Status, st.Pid, pid)
				}
				if st.Bundle != b.Dir || st.ID != b.ID {
					t.Errorf("State: id %q bundle %q, want %q %q", st.ID, st.Bundle, b.ID, b.Dir)
				}
				if st.Stdin != io.Stdin || st.Stdout != io.Stdout || st.Stderr != io.Stderr {
					t.Errorf("State stdio %q %q %q, want %q %q %q", st.Stdin, st.Stdout, st.Stderr, io.Stdin, io.Stdout, io.Stderr)
				}
				if got := s.startTask(t, ""); got != pid {
					t.Errorf("Start pid %d, want the Create pid %d", got, pid)
				}
				st = s.mustState(t, "")
				if st.Status != task.Status_RUNNING {
					t.Errorf("State after Start: %v, want RUNNING", st.Status)
				}
				io.write(t, "hello\n")
				io.waitOut(t, "out-hello\n")
				io.waitErr(t, "err-hello\n")
				if tc.kill {
					if err := s.kill("", syscall.SIGKILL, false); err != nil {
						t.Fatalf("Kill: %v", err)
					}
				}
				w := s.mustWait(t, "")
				if w.ExitStatus != tc.status {
					t.Errorf("Wait: exit status %d, want %d", w.ExitStatus, tc.status)
				}
				st = s.mustState(t, "")
				if st.Status != task.Status_STOPPED || st.ExitStatus != tc.status {
					t.Errorf("State after exit: %v status %d, want STOPPED %d", st.Status, st.ExitStatus, tc.status)
				}
				if st.Pid != pid {
					t.Errorf("State after exit: pid %d, want %d", st.Pid, pid)
				}
				if !st.ExitedAt.AsTime().Equal(w.ExitedAt.AsTime()) {
					t.Errorf("State exited_at %v != Wait exited_at %v", st.ExitedAt.AsTime(), w.ExitedAt.AsTime())
				}
				d := s.mustDelete(t, "")
				if d.ExitStatus != tc.status || d.Pid != pid {
					t.Errorf("Delete: pid %d status %d, want %d %d", d.Pid, d.ExitStatus, pid, tc.status)
				}
				if !d.ExitedAt.AsTime().Equal(w.ExitedAt.AsTime()) {
					t.Errorf("Delete exited_at %v != Wait exited_at %v", d.ExitedAt.AsTime(), w.ExitedAt.AsTime())
				}
				_, err := s.state("")
				wantCode(t, "State after Delete", err, codes.NotFound)
				s.shutdownShim(t)
			})
		}

		// stdin from a FIFO reaches cat; CloseIO(stdin) gives it EOF and
		// it exits 0.
		t.Run("stdin-closeio", func(t *testing.T) {
			b := e.newBundle(t, newID("cat"), withArgs("/bin/cat"))
			io := e.newStdio(t, true, true, true)
			s := e.startShim(t, b)
			s.run(t, io)
			io.write(t, "line one\n")
			io.waitOut(t, "line one\n")
			io.write(t, "line two\n")
			io.waitOut(t, "line one\nline two\n")
			// As containerd's client does: close our end of the FIFO,
			// then CloseIO. The shim keeps the FIFO open until CloseIO
			// (so a client can reattach), so cat must not see EOF yet.
			io.closeStdin()
			time.Sleep(300 * time.Millisecond)
			if st := s.mustState(t, ""); st.Status != task.Status_RUNNING {
				t.Fatalf("cat is %v before CloseIO, want RUNNING", st.Status)
			}
			ctx, cancel := s.ctx()
			_, err := s.task.CloseIO(ctx, &taskapi.CloseIORequest{ID: b.ID, Stdin: true})
			cancel()
			if err != nil {
				t.Fatalf("CloseIO: %v", err)
			}
			if w := s.mustWait(t, ""); w.ExitStatus != 0 {
				t.Errorf("cat exit status %d after CloseIO, want 0", w.ExitStatus)
			}
			if out := io.out.String(); out != "line one\nline two\n" {
				t.Errorf("stdout %q", out)
			}
			s.mustDelete(t, "")
			s.shutdownShim(t)
		})
	})
}

// TestWaitBeforeStart: a Wait sent after Create and before Start gets the
// exit of a process that exits at once (/bin/true), 50 times in a row,
// never hanging. The exit event never precedes the start event.
func TestWaitBeforeStart(t *testing.T) {
	const rounds = 50
	const workers = 5
	forEach(t, func(t *testing.T, e *env) {
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < rounds/workers && !t.Failed(); i++ {
					waitBeforeStartOnce(t, e)
				}
			}()
		}
		wg.Wait()
	})
}

func waitBeforeStartOnce(t *testing.T, e *env) {
	b := e.newBundle(t, newID("true"), withArgs("/bin/true"))
	s, err := e.tryStartShim(t, b, e.opts())
	if err != nil {
		t.Error(err)
		return
	}
	r, err := s.tryCreate(s.createReq(nil, false))
	if err != nil {
		t.Errorf("Create: %v", err)
		return
	}
	type result struct {
		w   *taskapi.WaitResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		w, err := s.wait("", exitTimeout)
		ch <- result{w, err}
	}()
	// Let the Wait reach the shim before Start.
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := s.ctx()
	_, err = s.task.Start(ctx, &taskapi.StartRequest{ID: b.ID})
	cancel()
	if err != nil {
		t.Errorf("Start: %v", err)
		return
	}
	res := <-ch
	if res.err != nil {
		t.Errorf("Wait sent before Start (pid %d): %v", r.Pid, res.err)
		return
	}
	if res.w.ExitStatus != 0 {
		t.Errorf("Wait: exit status %d, want 0", res.w.ExitStatus)
	}
	if _, err := s.deleteTask(""); err != nil {
		t.Errorf("Delete: %v", err)
	}
	evs, _ := e.events.WaitFor(5*time.Second, func(evs []recordedEvent) bool {
		return len(eventsFor(evs, b.ID)) >= 4
	})
	got := strings.Join(topics(eventsFor(evs, b.ID)), " ")
	if got != strings.Join([]string{topicCreate, topicStart, topicExit, topicDelete}, " ") {
		t.Errorf("events of %s: %s", b.ID, got)
	}
	s.shutdownShim(t)
}
