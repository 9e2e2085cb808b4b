package shim

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/typeurl/v2"
)

// shortEvent describes an event for failure messages and order checks.
func shortEvent(v any) string {
	switch e := v.(type) {
	case *eventstypes.TaskCreate:
		return fmt.Sprintf("create(%s pid=%d)", e.ContainerID, e.Pid)
	case *eventstypes.TaskStart:
		return fmt.Sprintf("start(%s pid=%d)", e.ContainerID, e.Pid)
	case *eventstypes.TaskExit:
		return fmt.Sprintf("exit(%s/%s pid=%d status=%d)", e.ContainerID, e.ID, e.Pid, e.ExitStatus)
	case *eventstypes.TaskExecAdded:
		return fmt.Sprintf("exec-added(%s/%s)", e.ContainerID, e.ExecID)
	case *eventstypes.TaskExecStarted:
		return fmt.Sprintf("exec-started(%s/%s pid=%d)", e.ContainerID, e.ExecID, e.Pid)
	case *eventstypes.TaskDelete:
		return fmt.Sprintf("delete(%s pid=%d)", e.ContainerID, e.Pid)
	case *eventstypes.TaskPaused:
		return fmt.Sprintf("paused(%s)", e.ContainerID)
	case *eventstypes.TaskResumed:
		return fmt.Sprintf("resumed(%s)", e.ContainerID)
	case *eventstypes.TaskOOM:
		return fmt.Sprintf("oom(%s)", e.ContainerID)
	}
	return fmt.Sprintf("%T", v)
}

func decodeEvent(t *testing.T, env *types.Envelope) any {
	t.Helper()
	v, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		t.Fatalf("event %s of type %q does not decode: %v", env.Topic, env.Event.GetTypeUrl(), err)
	}
	return v
}

// oomSeq returns the sequence number a test put in a TaskOOM's container id.
func oomSeq(t *testing.T, env *types.Envelope) int {
	t.Helper()
	e, ok := decodeEvent(t, env).(*eventstypes.TaskOOM)
	if !ok {
		t.Fatalf("event %s is not a TaskOOM", env.Topic)
	}
	n, err := strconv.Atoi(e.ContainerID)
	if err != nil {
		t.Fatalf("container id %q", e.ContainerID)
	}
	return n
}

func newTestPublisher(t *testing.T, address string) *publisher {
	t.Helper()
	p := newPublisher(address, discardLog())
	t.Cleanup(func() { p.close(0) })
	return p
}

func TestPublisherDelivers(t *testing.T) {
	t.Parallel()
	es := newEventServer(t)
	p := newTestPublisher(t, es.address())
	before := time.Now()
	sent := []struct {
		ns, topic string
		event     any
		typeURL   string
	}{
		{"default", TopicCreate, &eventstypes.TaskCreate{ContainerID: "c1", Bundle: "/b", Pid: 10}, "containerd.events.TaskCreate"},
		{"default", TopicStart, &eventstypes.TaskStart{ContainerID: "c1", Pid: 10}, "containerd.events.TaskStart"},
		{"k8s.io", TopicExecAdded, &eventstypes.TaskExecAdded{ContainerID: "c1", ExecID: "e1"}, "containerd.events.TaskExecAdded"},
		{"k8s.io", TopicExecStarted, &eventstypes.TaskExecStarted{ContainerID: "c1", ExecID: "e1", Pid: 11}, "containerd.events.TaskExecStarted"},
		{"default", TopicExit, &eventstypes.TaskExit{ContainerID: "c1", ID: "c1", Pid: 10, ExitStatus: 3}, "containerd.events.TaskExit"},
		{"default", TopicPaused, &eventstypes.TaskPaused{ContainerID: "c1"}, "containerd.events.TaskPaused"},
		{"default", TopicResumed, &eventstypes.TaskResumed{ContainerID: "c1"}, "containerd.events.TaskResumed"},
		{"default", TopicOOM, &eventstypes.TaskOOM{ContainerID: "c1"}, "containerd.events.TaskOOM"},
		{"default", TopicDelete, &eventstypes.TaskDelete{ContainerID: "c1", Pid: 10, ExitStatus: 3}, "containerd.events.TaskDelete"},
	}
	for _, s := range sent {
		p.Publish(s.ns, s.topic, s.event)
	}
	envs := es.sink.waitN(t, len(sent))
	after := time.Now()
	if len(envs) != len(sent) {
		t.Fatalf("got %d events, want %d", len(envs), len(sent))
	}
	var last time.Time
	for i, env := range envs {
		s := sent[i]
		if env.Namespace != s.ns || env.Topic != s.topic {
			t.Errorf("event %d: (%s, %s), want (%s, %s)", i, env.Namespace, env.Topic, s.ns, s.topic)
		}
		if env.Event.GetTypeUrl() != s.typeURL {
			t.Errorf("event %d: type URL %q, want the bare %q", i, env.Event.GetTypeUrl(), s.typeURL)
		}
		if got := decodeEvent(t, env); shortEvent(got) != shortEvent(s.event) {
			t.Errorf("event %d: %s, want %s", i, shortEvent(got), shortEvent(s.event))
		}
		if env.Timestamp == nil {
			t.Errorf("event %d has no timestamp", i)
			continue
		}
		ts := env.Timestamp.AsTime()
		if ts.Before(before.Add(-time.Second)) || ts.After(after.Add(time.Second)) {
			t.Errorf("event %d: timestamp %v not between %v and %v", i, ts, before, after)
		}
		if ts.Before(last) {
			t.Errorf("event %d: timestamp %v before the previous one %v", i, ts, last)
		}
		last = ts
	}
	waitFor(t, "an empty queue", func() bool { return p.pending() == 0 })
}

func TestPublisherNoAddress(t *testing.T) {
	t.Parallel()
	p := newTestPublisher(t, "")
	p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: "c1"})
	if n := p.pending(); n != 0 {
		t.Errorf("a publisher without an address queued %d events", n)
	}
	var nilp *publisher
	nilp.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: "c1"}) // must not panic
	nilp.close(time.Second)
}

func TestPublisherBareUnixPath(t *testing.T) {
	t.Parallel()
	es := newEventServer(t)
	p := newTestPublisher(t, es.path) // without unix://
	p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: "c1"})
	es.sink.waitN(t, 1)
}

// TestPublisherDaemonDown: events published while the daemon is away are
// kept, and go out in order once it is back and kick()ed (as Connect
// does).
func TestPublisherDaemonDown(t *testing.T) {
	t.Parallel()
	es := newEventServerDown(t)
	p := newTestPublisher(t, es.address())
	const n = 3
	for i := range n {
		p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: strconv.Itoa(i)})
	}
	// Let the sender fail at least once.
	time.Sleep(50 * time.Millisecond)
	if got := p.pending(); got != n {
		t.Fatalf("%d events pending while the daemon is down, want %d", got, n)
	}
	es.start(t)
	p.kick()
	envs := es.sink.waitN(t, n)
	for i, env := range envs {
		if got := oomSeq(t, env); got != i {
			t.Errorf("event %d is #%d: out of order", i, got)
		}
	}
	waitFor(t, "an empty queue", func() bool { return p.pending() == 0 })
}

// TestPublisherManyEventsWhileDown: a burst of events while the daemon
// restarts must survive a short outage. Each Publish kicks the sender,
// and every kick is a retry that counts towards maxAttempts: after 8
// events (in milliseconds, not the ~16 s the backoff schedule implies)
// the oldest is dropped, then one more per 8 publishes.
func TestPublisherManyEventsWhileDown(t *testing.T) {
	t.Parallel()
	es := newEventServerDown(t)
	p := newTestPublisher(t, es.address())
	const n = 20
	for i := range n {
		p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: strconv.Itoa(i)})
		time.Sleep(20 * time.Millisecond) // a dial to a missing socket fails at once
	}
	es.start(t)
	p.kick()
	envs := es.sink.waitN(t, 1)
	waitFor(t, "an empty queue", func() bool { return p.pending() == 0 })
	envs = es.sink.received()
	if len(envs) != n || oomSeq(t, envs[0]) != 0 {
		first := -1
		if len(envs) > 0 {
			first = oomSeq(t, envs[0])
		}
		t.Fatalf("after a %v outage, %d of %d events arrived, the first being #%d", time.Duration(n)*20*time.Millisecond, len(envs), n, first)
	}
}

// TestPublisherNeverBlocks: with the daemon taking no event (its Forward
// hangs), Publish still returns at once, and the queue is bounded.
func TestPublisherNeverBlocks(t *testing.T) {
	t.Parallel()
	es := newEventServer(t)
	release := make(chan struct{})
	arrivals := make(chan *types.Envelope, 1)
	es.sink.mu.Lock()
	es.sink.block, es.sink.arrivals = release, arrivals
	es.sink.mu.Unlock()
	p := newTestPublisher(t, es.address())
	p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: "0"})
	select {
	case <-arrivals:
	case <-time.After(20 * time.Second):
		t.Fatal("the first event never reached the daemon")
	}
	start := time.Now()
	const n = 3 * maxQueuedEvents
	for i := 1; i <= n; i++ {
		p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: strconv.Itoa(i)})
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("%d Publish calls took %v with a stuck daemon", n, d)
	}
	if got := p.pending(); got > maxQueuedEvents {
		t.Errorf("%d events queued, more than maxQueuedEvents (%d)", got, maxQueuedEvents)
	}
	close(release)
	// The newest event gets through in the end.
	waitFor(t, "the last event", func() bool {
		envs := es.sink.received()
		return len(envs) > 0 && oomSeq(t, envs[len(envs)-1]) == n
	})
}

// TestPublisherQueueCap: the queue keeps the newest maxQueuedEvents and
// drops the oldest. The sender is not running, so this is the queue alone.
func TestPublisherQueueCap(t *testing.T) {
	t.Parallel()
	es := newEventServer(t)
	p := &publisher{address: es.path, log: discardLog(), queued: make(chan struct{}, 1), retry: make(chan struct{}, 1)}
	const extra = 76
	for i := range maxQueuedEvents + extra {
		p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: strconv.Itoa(i)})
	}
	if got := p.pending(); got != maxQueuedEvents {
		t.Fatalf("%d events queued, want maxQueuedEvents (%d)", got, maxQueuedEvents)
	}
	p.mu.Lock()
	first, last := p.queue[0], p.queue[len(p.queue)-1]
	p.mu.Unlock()
	if oomSeq(t, first) != extra || oomSeq(t, last) != maxQueuedEvents+extra-1 {
		t.Errorf("queue holds #%d..#%d, want #%d..#%d", oomSeq(t, first), oomSeq(t, last), extra, maxQueuedEvents+extra-1)
	}
	// Now send them: all of them, in order.
	go p.run()
	defer p.close(0)
	envs := es.sink.waitN(t, maxQueuedEvents)
	for i, env := range envs {
		if got := oomSeq(t, env); got != extra+i {
			t.Fatalf("event %d is #%d, want #%d", i, got, extra+i)
		}
	}
}

// TestPublisherDropWhileSending: the queue is full while the head event is
// being sent; the oldest is dropped to make room. When the send then
// succeeds, pop() removes the new head, an event that was never sent.
func TestPublisherDropWhileSending(t *testing.T) {
	t.Parallel()
	es := newEventServer(t)
	release := make(chan struct{})
	arrivals := make(chan *types.Envelope, 1)
	es.sink.mu.Lock()
	es.sink.block, es.sink.arrivals = release, arrivals
	es.sink.mu.Unlock()
	p := newTestPublisher(t, es.address())
	p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: "0"})
	select {
	case <-arrivals:
	case <-time.After(20 * time.Second):
		t.Fatal("the first event never reached the daemon")
	}
	// #0 is in flight and still queued; fill the queue and one more, which
	// drops #0 from the queue.
	for i := 1; i <= maxQueuedEvents; i++ {
		p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: strconv.Itoa(i)})
	}
	es.sink.mu.Lock()
	es.sink.block = nil
	es.sink.mu.Unlock()
	close(release)
	waitFor(t, "the last event", func() bool {
		envs := es.sink.received()
		return len(envs) > 0 && oomSeq(t, envs[len(envs)-1]) == maxQueuedEvents
	})
	seen := map[int]bool{}
	for _, env := range es.sink.received() {
		seen[oomSeq(t, env)] = true
	}
	for i := 1; i <= maxQueuedEvents; i++ {
		if !seen[i] {
			t.Errorf("event #%d, never dropped by the cap, was not delivered", i)
		}
	}
}

// TestPublisherCloseDrains: close waits for the queue to empty (within its
// bound), and nothing is queued after it.
func TestPublisherCloseDrains(t *testing.T) {
	t.Parallel()
	es := newEventServer(t)
	p := newPublisher(es.address(), discardLog())
	const n = 50
	for i := range n {
		p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: strconv.Itoa(i)})
	}
	p.close(20 * time.Second)
	if got := p.pending(); got != 0 {
		t.Fatalf("%d events pending after close", got)
	}
	envs := es.sink.received()
	if len(envs) != n {
		t.Fatalf("%d events delivered by close, want %d", len(envs), n)
	}
	for i, env := range envs {
		if oomSeq(t, env) != i {
			t.Fatalf("event %d out of order", i)
		}
	}
	p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: "late"})
	if got := p.pending(); got != 0 {
		t.Errorf("Publish after close queued an event")
	}
	es.sink.quiet(t, n, 100*time.Millisecond)
}

// TestPublisherCloseDaemonDown: close gives up after its drain time.
func TestPublisherCloseDaemonDown(t *testing.T) {
	t.Parallel()
	es := newEventServerDown(t)
	p := newPublisher(es.address(), discardLog())
	p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: "0"})
	start := time.Now()
	p.close(200 * time.Millisecond)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("close took %v with a drain bound of 200ms", d)
	}
}

// TestPublisherReconnects: the daemon restarts (a new server on the same
// path); later events reach the new one.
func TestPublisherReconnects(t *testing.T) {
	t.Parallel()
	es := newEventServer(t)
	p := newTestPublisher(t, es.address())
	p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: "0"})
	es.sink.waitN(t, 1)
	// Sent and acknowledged (else it is sent again: at least once).
	waitFor(t, "an empty queue", func() bool { return p.pending() == 0 })
	// The old daemon takes nothing more, even on a connection that
	// outlives its server for a moment.
	es.sink.mu.Lock()
	es.sink.refuse = true
	es.sink.mu.Unlock()
	es.stop()
	old := es.sink
	es.sink = &eventSink{changed: make(chan struct{})}
	es.start(t)
	p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: "1"})
	p.kick()
	envs := es.sink.waitN(t, 1)
	if oomSeq(t, envs[0]) != 1 {
		t.Errorf("the new daemon got #%d first", oomSeq(t, envs[0]))
	}
	if len(old.received()) != 1 {
		t.Errorf("the old daemon got %d events", len(old.received()))
	}
}

// TestPublisherIdleDisconnect: the connection is closed once idle, and the
// next event opens a new one.
func TestPublisherIdleDisconnect(t *testing.T) {
	t.Parallel()
	es := newEventServer(t)
	p := startPublisher(es.address(), discardLog(), 50*time.Millisecond)
	t.Cleanup(func() { p.close(0) })
	for round := range 3 {
		p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: strconv.Itoa(round)})
		envs := es.sink.waitN(t, round+1)
		if got := oomSeq(t, envs[round]); got != round {
			t.Fatalf("round %d: the daemon got #%d", round, got)
		}
		waitFor(t, "the idle connection closed", func() bool { return es.conns.Load() == 0 })
	}
}

// TestPublisherStaysConnectedWhileBusy: events closer together than the
// idle time share one connection.
func TestPublisherStaysConnectedWhileBusy(t *testing.T) {
	t.Parallel()
	es := newEventServer(t)
	p := startPublisher(es.address(), discardLog(), time.Minute)
	t.Cleanup(func() { p.close(0) })
	for i := range 5 {
		p.Publish("default", TopicOOM, &eventstypes.TaskOOM{ContainerID: strconv.Itoa(i)})
		es.sink.waitN(t, i+1)
		if n := es.conns.Load(); n != 1 {
			t.Fatalf("after event %d: %d connections open, want 1", i, n)
		}
	}
}
