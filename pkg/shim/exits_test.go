package shim

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"

	"github.com/xstack/xstack/pkg/shim/reaper"
)

// Exit routing and event order, driven by hand: a Service built as a
// struct literal, processes made with newProcess, synthetic reaper.Exit
// values (pids above pid_max, so no real process is ever involved), and
// the events checked as a real daemon's Events service receives them.
//
// deliver does what processExits does with one exit from the reaper;
// processExits itself, on a real reaper, is covered by TestReaperChild.

type exitTest struct {
	t  *testing.T
	s  *Service
	es *eventServer
	ns string
	// marks counts the markers published so far (see settle).
	marks int
}

func newExitTest(t *testing.T) *exitTest {
	t.Helper()
	es := newEventServer(t)
	s := &Service{
		log:        discardLog(),
		events:     newTestPublisher(t, es.address()),
		running:    map[int]*process{},
		starts:     map[*startWatch]struct{}{},
		containers: map[string]*container{},
	}
	return &exitTest{t: t, s: s, es: es, ns: "testns"}
}

// fakePid is a pid no process can have (pid_max is at most 2^22).
func fakePid(n int) int { return 1<<22 + 1000 + n }

func (x *exitTest) container(id string) *container {
	c := &container{id: id, namespace: x.ns, bundle: "/nonexistent/" + id, execs: map[string]*process{}, stopOOM: func() {}}
	c.init = newProcess(c, "", stdioPaths{})
	x.s.mu.Lock()
	x.s.containers[id] = c
	x.s.mu.Unlock()
	return c
}

// deliver hands one exit to the Service as processExits does.
func (x *exitTest) deliver(pid, status int) reaper.Exit {
	e := reaper.Exit{Pid: pid, Status: status, At: time.Unix(1700000000, int64(pid)).UTC()}
	s := x.s
	s.exitMu.Lock()
	for w := range s.starts {
		w.exits = append(w.exits, e)
	}
	p := s.running[e.Pid]
	delete(s.running, e.Pid)
	s.exitMu.Unlock()
	if p == nil {
		return e
	}
	p.mu.Lock()
	if p.starting {
		p.pendingExit = &e
		p.mu.Unlock()
		return e
	}
	p.mu.Unlock()
	s.handleExit(p, e)
	return e
}

// create does what Service.Create does around `runtime create`; during
// runs while the runtime would.
func (x *exitTest) create(c *container, pid int, during func()) {
	w := x.s.watchStart()
	if during != nil {
		during()
	}
	x.s.started(w, c.init, pid)
	x.s.events.Publish(c.namespace, TopicCreate, &eventstypes.TaskCreate{ContainerID: c.id, Pid: uint32(pid)})
	x.s.finishStart(c.init)
}

// start does what Service.startInit does around `runtime start`.
func (x *exitTest) start(c *container, during func()) {
	p := c.init
	p.mu.Lock()
	p.starting = true
	p.mu.Unlock()
	if during != nil {
		during()
	}
	p.mu.Lock()
	if p.state == taskCreated {
		p.state = taskRunning
	}
	pid := p.pid
	p.mu.Unlock()
	x.s.events.Publish(c.namespace, TopicStart, &eventstypes.TaskStart{ContainerID: c.id, Pid: uint32(pid)})
	x.s.finishStart(p)
}

// exec does what Service.Exec and startExec do around `runtime exec`.
func (x *exitTest) exec(c *container, id string, pid int, during func()) *process {
	p := newProcess(c, id, stdioPaths{})
	c.mu.Lock()
	c.execs[id] = p
	c.mu.Unlock()
	p.mu.Lock()
	p.starting = true
	p.mu.Unlock()
	if !x.s.countExec(c) {
		x.t.Fatalf("exec %s: the init has exited", id)
	}
	w := x.s.watchStart()
	if during != nil {
		during()
	}
	x.s.started(w, p, pid)
	x.s.events.Publish(c.namespace, TopicExecStarted, &eventstypes.TaskExecStarted{ContainerID: c.id, ExecID: id, Pid: uint32(pid)})
	x.s.finishStart(p)
	return p
}

// settle publishes a marker and waits for it: every event published
// before it has then arrived (one sender, in order). It returns the
// events before the marker, markers left out.
func (x *exitTest) settle() []string {
	x.t.Helper()
	x.marks++
	marker := fmt.Sprintf("marker-%d", x.marks)
	x.s.events.Publish(x.ns, TopicOOM, &eventstypes.TaskOOM{ContainerID: marker})
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got []string
		done := false
		for _, env := range x.es.sink.received() {
			v := decodeEvent(x.t, env)
			if o, ok := v.(*eventstypes.TaskOOM); ok && len(o.ContainerID) > 7 && o.ContainerID[:7] == "marker-" {
				if o.ContainerID == marker {
					done = true
				}
				continue
			}
			got = append(got, shortEvent(v))
		}
		if done {
			return got
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("timed out waiting for %s; events so far: %v", marker, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (x *exitTest) expect(want ...string) {
	x.t.Helper()
	got := x.settle()
	if len(want) == 0 {
		want = nil
	}
	if !reflect.DeepEqual(got, want) {
		x.t.Fatalf("events\n got %q\nwant %q", got, want)
	}
}

// expectEventually is expect for events published asynchronously (by
// processExits): it waits until as many as wanted have arrived.
func (x *exitTest) expectEventually(want ...string) {
	x.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := x.settle()
		if len(got) >= len(want) || time.Now().After(deadline) {
			if !reflect.DeepEqual(got, want) {
				x.t.Fatalf("events\n got %q\nwant %q", got, want)
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func exited(p *process) bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func TestExitOfRunningInit(t *testing.T) {
	t.Parallel()
	x := newExitTest(t)
	c := x.container("c1")
	pid := fakePid(1)
	x.create(c, pid, nil)
	x.start(c, nil)
	x.s.exitMu.Lock()
	registered := x.s.running[pid] == c.init
	x.s.exitMu.Unlock()
	if !registered {
		t.Fatal("the init is not routed by its pid after create")
	}
	if exited(c.init) {
		t.Fatal("Wait's channel closed before the exit")
	}
	e := x.deliver(pid, 3)
	x.expect("create(c1 pid="+fmt.Sprint(pid)+")", "start(c1 pid="+fmt.Sprint(pid)+")",
		fmt.Sprintf("exit(c1/c1 pid=%d status=3)", pid))
	if !exited(c.init) {
		t.Fatal("Wait's channel still open after the exit")
	}
	gotPid, state, status, at := c.init.snapshot()
	if gotPid != pid || state != taskStopped || status != 3 || !at.Equal(e.At) {
		t.Errorf("snapshot (%d, %v, %d, %v), want (%d, STOPPED, 3, %v)", gotPid, state, status, at, pid, e.At)
	}
	// The exit event carries the reaper's time.
	envs := x.es.sink.received()
	for _, env := range envs {
		if te, ok := decodeEvent(t, env).(*eventstypes.TaskExit); ok && !te.ExitedAt.AsTime().Equal(e.At) {
			t.Errorf("exited_at %v, want %v", te.ExitedAt.AsTime(), e.At)
		}
	}
	x.s.exitMu.Lock()
	defer x.s.exitMu.Unlock()
	if _, ok := x.s.running[pid]; ok {
		t.Error("the pid is still routed after its exit")
	}
}

// TestExitDuringStart: the init exits while `runtime start` runs; the exit
// is held until the start event is out.
func TestExitDuringStart(t *testing.T) {
	t.Parallel()
	x := newExitTest(t)
	c := x.container("c1")
	pid := fakePid(2)
	x.create(c, pid, nil)
	x.start(c, func() {
		x.deliver(pid, 0)
		x.expect(fmt.Sprintf("create(c1 pid=%d)", pid)) // no exit yet
		if exited(c.init) {
			t.Error("Wait's channel closed before the start event")
		}
	})
	x.expect(fmt.Sprintf("create(c1 pid=%d)", pid), fmt.Sprintf("start(c1 pid=%d)", pid), fmt.Sprintf("exit(c1/c1 pid=%d status=0)", pid))
	if !exited(c.init) {
		t.Error("Wait's channel still open")
	}
}

// TestExitDuringCreate: the init exits while `runtime create` runs, before
// its pid is known: the start watch collects it, started() finds it, and
// it is published after the create event.
func TestExitDuringCreate(t *testing.T) {
	t.Parallel()
	x := newExitTest(t)
	c := x.container("c1")
	pid := fakePid(3)
	x.create(c, pid, func() {
		x.deliver(fakePid(99), 1) // some other child: a runtime command
		x.deliver(pid, 137)
		x.expect()
	})
	x.expect(fmt.Sprintf("create(c1 pid=%d)", pid), fmt.Sprintf("exit(c1/c1 pid=%d status=137)", pid))
	if _, state, status, _ := c.init.snapshot(); state != taskStopped || status != 137 {
		t.Errorf("init state %v status %d", state, status)
	}
	x.s.exitMu.Lock()
	defer x.s.exitMu.Unlock()
	if len(x.s.starts) != 0 {
		t.Errorf("%d start watches left", len(x.s.starts))
	}
	if _, ok := x.s.running[pid]; ok {
		t.Error("an exited pid is routed")
	}
}

// TestExitHeldUntilCreateEvent: the init exits after started() but before
// Create published its event.
func TestExitHeldUntilCreateEvent(t *testing.T) {
	t.Parallel()
	x := newExitTest(t)
	c := x.container("c1")
	pid := fakePid(4)
	w := x.s.watchStart()
	x.s.started(w, c.init, pid)
	x.deliver(pid, 2)
	x.expect()
	if exited(c.init) {
		t.Error("exit recorded before the create event")
	}
	x.s.events.Publish(c.namespace, TopicCreate, &eventstypes.TaskCreate{ContainerID: c.id, Pid: uint32(pid)})
	x.s.finishStart(c.init)
	x.expect(fmt.Sprintf("create(c1 pid=%d)", pid), fmt.Sprintf("exit(c1/c1 pid=%d status=2)", pid))
}

func TestCancelStart(t *testing.T) {
	t.Parallel()
	x := newExitTest(t)
	w := x.s.watchStart()
	x.s.cancelStart(w)
	x.deliver(fakePid(5), 0)
	if len(w.exits) != 0 {
		t.Errorf("a cancelled watch collected %d exits", len(w.exits))
	}
	x.s.exitMu.Lock()
	defer x.s.exitMu.Unlock()
	if len(x.s.starts) != 0 {
		t.Errorf("%d watches left", len(x.s.starts))
	}
}

// TestConcurrentStartWatches: two starts at once each find their own exit.
func TestConcurrentStartWatches(t *testing.T) {
	t.Parallel()
	x := newExitTest(t)
	c1, c2 := x.container("c1"), x.container("c2")
	p1, p2 := fakePid(6), fakePid(7)
	w1 := x.s.watchStart()
	w2 := x.s.watchStart()
	x.deliver(p2, 22)
	x.deliver(p1, 11)
	x.s.started(w1, c1.init, p1)
	x.s.started(w2, c2.init, p2)
	x.s.finishStart(c2.init)
	x.s.finishStart(c1.init)
	x.expect(fmt.Sprintf("exit(c2/c2 pid=%d status=22)", p2), fmt.Sprintf("exit(c1/c1 pid=%d status=11)", p1))
}

// TestExecExitDuringStart: an exec that exits before `runtime exec`
// returns: exec-started, then its exit.
func TestExecExitDuringStart(t *testing.T) {
	t.Parallel()
	x := newExitTest(t)
	c := x.container("c1")
	initPid, execPid := fakePid(10), fakePid(11)
	x.create(c, initPid, nil)
	x.start(c, nil)
	e1 := x.exec(c, "e1", execPid, func() { x.deliver(execPid, 5) })
	x.expect(fmt.Sprintf("create(c1 pid=%d)", initPid), fmt.Sprintf("start(c1 pid=%d)", initPid),
		fmt.Sprintf("exec-started(c1/e1 pid=%d)", execPid), fmt.Sprintf("exit(c1/e1 pid=%d status=5)", execPid))
	if !exited(e1) {
		t.Error("the exec's Wait channel is open")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runningExecs != 0 {
		t.Errorf("runningExecs = %d after the exec exited", c.runningExecs)
	}
}

// TestInitExitWaitsForExecs: the init's exit is published only after the
// exits of its running execs, right after the last one.
func TestInitExitWaitsForExecs(t *testing.T) {
	t.Parallel()
	x := newExitTest(t)
	c := x.container("c1")
	initPid, p1, p2 := fakePid(20), fakePid(21), fakePid(22)
	x.create(c, initPid, nil)
	x.start(c, nil)
	e1 := x.exec(c, "e1", p1, nil)
	e2 := x.exec(c, "e2", p2, nil)
	prefix := []string{
		fmt.Sprintf("create(c1 pid=%d)", initPid), fmt.Sprintf("start(c1 pid=%d)", initPid),
		fmt.Sprintf("exec-started(c1/e1 pid=%d)", p1), fmt.Sprintf("exec-started(c1/e2 pid=%d)", p2),
	}
	x.expect(prefix...)
	c.mu.Lock()
	n := c.runningExecs
	c.mu.Unlock()
	if n != 2 {
		t.Fatalf("runningExecs = %d, want 2", n)
	}

	x.deliver(initPid, 0)
	x.expect(prefix...)
	if exited(c.init) {
		t.Error("the init's Wait returned before its execs exited")
	}
	c.mu.Lock()
	initExited, pending := c.initExited, c.pendingInitExit != nil
	c.mu.Unlock()
	if !initExited || !pending {
		t.Errorf("initExited %v, pending init exit %v; want both", initExited, pending)
	}

	x.deliver(p2, 137)
	x.expect(append(prefix, fmt.Sprintf("exit(c1/e2 pid=%d status=137)", p2))...)
	if !exited(e2) || exited(e1) || exited(c.init) {
		t.Errorf("exited: e1 %v e2 %v init %v; want only e2", exited(e1), exited(e2), exited(c.init))
	}

	x.deliver(p1, 137)
	x.expect(append(prefix,
		fmt.Sprintf("exit(c1/e2 pid=%d status=137)", p2),
		fmt.Sprintf("exit(c1/e1 pid=%d status=137)", p1),
		fmt.Sprintf("exit(c1/c1 pid=%d status=0)", initPid))...)
	if !exited(c.init) {
		t.Error("the init's Wait channel is still open")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runningExecs != 0 || c.pendingInitExit != nil {
		t.Errorf("runningExecs %d, pending init exit %v", c.runningExecs, c.pendingInitExit)
	}
}

// TestInitExitWithoutExecs: execs that were only added (never started) do
// not hold the init's exit.
func TestInitExitWithoutExecs(t *testing.T) {
	t.Parallel()
	x := newExitTest(t)
	c := x.container("c1")
	pid := fakePid(30)
	x.create(c, pid, nil)
	x.start(c, nil)
	c.mu.Lock()
	c.execs["added"] = newProcess(c, "added", stdioPaths{})
	c.mu.Unlock()
	x.deliver(pid, 1)
	x.expect(fmt.Sprintf("create(c1 pid=%d)", pid), fmt.Sprintf("start(c1 pid=%d)", pid), fmt.Sprintf("exit(c1/c1 pid=%d status=1)", pid))
}

// TestInitExitDuringExecStart: the init exits while `runtime exec` runs
// (after startExec checked initExited). The exec's start succeeded, so
// its exit must still come before the init's.
func TestInitExitDuringExecStart(t *testing.T) {
	t.Parallel()
	x := newExitTest(t)
	c := x.container("c1")
	initPid, execPid := fakePid(40), fakePid(41)
	x.create(c, initPid, nil)
	x.start(c, nil)
	x.exec(c, "e1", execPid, func() {
		x.deliver(initPid, 137)
		x.deliver(execPid, 137) // killed with the pid namespace
	})
	x.expect(fmt.Sprintf("create(c1 pid=%d)", initPid), fmt.Sprintf("start(c1 pid=%d)", initPid),
		fmt.Sprintf("exec-started(c1/e1 pid=%d)", execPid),
		fmt.Sprintf("exit(c1/e1 pid=%d status=137)", execPid),
		fmt.Sprintf("exit(c1/c1 pid=%d status=137)", initPid))
}

// TestDeletedProcessPublishesNothing: a process deleted meanwhile records
// its exit (Wait returns) but sends no event.
func TestDeletedProcessPublishesNothing(t *testing.T) {
	t.Parallel()
	x := newExitTest(t)
	c := x.container("c1")
	initPid, execPid := fakePid(50), fakePid(51)
	x.create(c, initPid, nil)
	x.start(c, nil)
	e1 := x.exec(c, "e1", execPid, nil)
	prefix := []string{fmt.Sprintf("create(c1 pid=%d)", initPid), fmt.Sprintf("start(c1 pid=%d)", initPid), fmt.Sprintf("exec-started(c1/e1 pid=%d)", execPid)}
	x.expect(prefix...)
	e1.mu.Lock()
	e1.deleted = true
	e1.mu.Unlock()
	c.init.mu.Lock()
	c.init.deleted = true
	c.init.mu.Unlock()
	x.deliver(initPid, 0)
	x.deliver(execPid, 0)
	x.expect(prefix...)
	if !exited(e1) || !exited(c.init) {
		t.Errorf("Wait channels: exec closed %v, init closed %v; want both", exited(e1), exited(c.init))
	}
}

// TestForget: a forgotten process gets no exit; forget leaves a pid that
// now belongs to another process alone.
func TestForget(t *testing.T) {
	t.Parallel()
	x := newExitTest(t)
	c := x.container("c1")
	pid := fakePid(60)
	x.create(c, pid, nil)
	x.start(c, nil)
	x.s.forget(c.init)
	x.s.exitMu.Lock()
	_, routed := x.s.running[pid]
	x.s.exitMu.Unlock()
	if routed {
		t.Fatal("forget left the pid routed")
	}
	x.deliver(pid, 9)
	x.expect(fmt.Sprintf("create(c1 pid=%d)", pid), fmt.Sprintf("start(c1 pid=%d)", pid))
	if exited(c.init) {
		t.Error("a forgotten process recorded an exit")
	}

	// Another process with the same pid (reused) stays routed when the old
	// one is forgotten.
	c2 := x.container("c2")
	x.create(c2, pid, nil)
	x.s.forget(c.init)
	x.s.exitMu.Lock()
	owner := x.s.running[pid]
	x.s.exitMu.Unlock()
	if owner != c2.init {
		t.Errorf("forget of the old process unrouted the pid's new owner")
	}
	// Forgetting a process that never got a pid is harmless.
	x.s.forget(newProcess(c, "never", stdioPaths{}))
}

// TestSetExitedOnce: a second exit for a process changes nothing.
func TestSetExitedOnce(t *testing.T) {
	t.Parallel()
	p := newProcess(&container{id: "c1"}, "", stdioPaths{})
	at := time.Unix(1, 0)
	p.setExited(reaper.Exit{Pid: 1, Status: 3, At: at})
	p.setExited(reaper.Exit{Pid: 1, Status: 4, At: at.Add(time.Hour)}) // must not panic on the closed channel
	if _, state, status, exitedAt := p.snapshot(); state != taskStopped || status != 3 || !exitedAt.Equal(at) {
		t.Errorf("snapshot %v %d %v", state, status, exitedAt)
	}
	if !p.isStopped() {
		t.Error("isStopped = false")
	}
}

// TestInitExitDuringFailedExecStart: the init exits while the runtime
// starts an exec that then fails to start: the held init exit goes out
// when the failure uncounts the exec (startExec's error path), and an exec
// asked for afterwards is refused.
func TestInitExitDuringFailedExecStart(t *testing.T) {
	t.Parallel()
	x := newExitTest(t)
	c := x.container("c1")
	initPid := fakePid(50)
	x.create(c, initPid, nil)
	x.start(c, nil)
	if !x.s.countExec(c) {
		t.Fatal("countExec refused an exec of a running container")
	}
	x.deliver(initPid, 3)
	prefix := []string{fmt.Sprintf("create(c1 pid=%d)", initPid), fmt.Sprintf("start(c1 pid=%d)", initPid)}
	x.expect(prefix...)
	if exited(c.init) {
		t.Fatal("the init's exit went out while an exec was being started")
	}
	x.s.execEnded(c) // the runtime exec failed
	x.expect(append(prefix, fmt.Sprintf("exit(c1/c1 pid=%d status=3)", initPid))...)
	if !exited(c.init) {
		t.Error("the init's Wait channel is still open")
	}
	if x.s.countExec(c) {
		t.Error("countExec counted an exec after the init exited")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runningExecs != 0 || c.pendingInitExit != nil {
		t.Errorf("runningExecs %d, pending init exit %v", c.runningExecs, c.pendingInitExit)
	}
}
