package shim_test

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	eventsapi "github.com/containerd/containerd/api/events"
)

// TestEvents: for one container the shim forwards, in this order,
// /tasks/create, /tasks/start, /tasks/exec-added, /tasks/exec-started,
// the exec's /tasks/exit, the init's /tasks/exit (after the exec's, though
// the exec was running when the init was killed) and /tasks/delete; every
// envelope carries the namespace and a decodable event with a bare type
// URL; the exit events match Wait. Events go over ttrpc only: the
// -publish-binary is never run.
func TestEvents(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		b := e.newBundle(t, newID("ev"), withArgs("/bin/sleep", "3600"))
		s := e.startShim(t, b)
		initPid := s.run(t, nil)
		s.exec(t, "long", nil, false, "/bin/sleep", "3600")
		execPid := s.startTask(t, "long")
		if err := s.kill("", syscall.SIGKILL, false); err != nil {
			t.Fatalf("Kill init: %v", err)
		}
		wExec := s.mustWait(t, "long")
		wInit := s.mustWait(t, "")
		if wExec.ExitStatus != 137 || wInit.ExitStatus != 137 {
			t.Errorf("exits: exec %d init %d, want 137 137", wExec.ExitStatus, wInit.ExitStatus)
		}
		s.mustDelete(t, "long")
		s.mustDelete(t, "")

		want := []string{topicCreate, topicStart, topicExecAdded, topicExecStarted, topicExit, topicExit, topicDelete}
		evs, ok := e.events.WaitFor(exitTimeout, func(evs []recordedEvent) bool {
			return len(eventsFor(evs, b.ID)) >= len(want)
		})
		mine := eventsFor(evs, b.ID)
		for _, ev := range mine {
			t.Logf("event: %s", ev)
		}
		if got := topics(mine); !ok || strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("topics %q, want %q", got, want)
		}
		for _, ev := range evs {
			if ev.Namespace != e.ns {
				t.Errorf("%s: namespace %q, want %q", ev.Topic, ev.Namespace, e.ns)
			}
			if ev.DecodeErr != nil || strings.Contains(ev.TypeURL, "/") {
				t.Errorf("%s: type URL %q (decode error %v), want a bare containerd.events.* name", ev.Topic, ev.TypeURL, ev.DecodeErr)
			}
			if ev.Timestamp.IsZero() {
				t.Errorf("%s: no timestamp", ev.Topic)
			}
		}
		for i := 1; i < len(mine); i++ {
			if mine[i].Timestamp.Before(mine[i-1].Timestamp) {
				t.Errorf("event %d (%s) has an earlier timestamp than event %d (%s)", i, mine[i].Topic, i-1, mine[i-1].Topic)
			}
		}

		if c, ok := mine[0].Event.(*eventsapi.TaskCreate); !ok {
			t.Errorf("create event is %T", mine[0].Event)
		} else if c.Pid != initPid || c.Bundle != b.Dir {
			t.Errorf("TaskCreate pid %d bundle %q, want %d %q", c.Pid, c.Bundle, initPid, b.Dir)
		}
		if st, ok := mine[1].Event.(*eventsapi.TaskStart); !ok || st.Pid != initPid {
			t.Errorf("TaskStart %v, want pid %d", mine[1].Event, initPid)
		}
		if a, ok := mine[2].Event.(*eventsapi.TaskExecAdded); !ok || a.ExecID != "long" {
			t.Errorf("TaskExecAdded %v, want exec_id long", mine[2].Event)
		}
		if st, ok := mine[3].Event.(*eventsapi.TaskExecStarted); !ok || st.ExecID != "long" || st.Pid != execPid {
			t.Errorf("TaskExecStarted %v, want exec_id long pid %d", mine[3].Event, execPid)
		}
		checkExit := func(ev recordedEvent, id string, pid uint32, w interface {
			GetExitStatus() uint32
		}) {
			t.Helper()
			x, ok := ev.Event.(*eventsapi.TaskExit)
			if !ok {
				t.Errorf("exit event is %T", ev.Event)
				return
			}
			if x.ID != id || x.Pid != pid || x.ExitStatus != w.GetExitStatus() {
				t.Errorf("TaskExit id %q pid %d status %d, want %q %d %d (Wait's)", x.ID, x.Pid, x.ExitStatus, id, pid, w.GetExitStatus())
			}
		}
		checkExit(mine[4], "long", execPid, wExec)
		checkExit(mine[5], b.ID, initPid, wInit)
		if x, ok := mine[5].Event.(*eventsapi.TaskExit); ok && !x.ExitedAt.AsTime().Equal(wInit.ExitedAt.AsTime()) {
			t.Errorf("init TaskExit exited_at %v, Wait's %v", x.ExitedAt.AsTime(), wInit.ExitedAt.AsTime())
		}
		if d, ok := mine[6].Event.(*eventsapi.TaskDelete); !ok || d.Pid != initPid || d.ExitStatus != 137 {
			t.Errorf("TaskDelete %v, want pid %d status 137", mine[6].Event, initPid)
		}
		// Nothing else arrives for the container (one TaskDelete, for
		// the init only).
		time.Sleep(200 * time.Millisecond)
		if n := len(eventsFor(e.events.Events(), b.ID)); n != len(want) {
			t.Errorf("%d events for the container, want %d: %q", n, len(want), topics(eventsFor(e.events.Events(), b.ID)))
		}
		if l, err := os.ReadFile(e.publishLog); err == nil {
			t.Errorf("the -publish-binary was run: %s", l)
		}
	})
}
