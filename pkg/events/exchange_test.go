package events

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// recv reads one event or fails after a second.
func recv(t *testing.T, ch <-chan *xdv1.Event) *xdv1.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return ev
	case <-time.After(time.Second):
		t.Fatal("no event within 1s")
	}
	return nil
}

// noEvent fails if ch delivers anything within a short while.
func noEvent(t *testing.T, ch <-chan *xdv1.Event) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		t.Fatalf("unexpected event %v (open %v)", ev, ok)
	case <-time.After(50 * time.Millisecond):
	}
}

// closedWithin drains ch and reports whether it was closed within d.
func closedWithin(ch <-chan *xdv1.Event, d time.Duration) bool {
	timeout := time.After(d)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// waitClosed waits for ch to be closed, draining it.
func waitClosed(t *testing.T, ch <-chan *xdv1.Event) int {
	t.Helper()
	n := 0
	timeout := time.After(2 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return n
			}
			n++
		case <-timeout:
			t.Fatal("channel not closed within 2s")
		}
	}
}

func TestExchangeFanOut(t *testing.T) {
	x := NewExchange()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := x.Subscribe(ctx, nil)
	b := x.Subscribe(ctx, nil)
	for i := range 10 {
		x.Publish(&xdv1.Event{Namespace: "ns", Topic: TopicTaskStart, ContainerId: fmt.Sprint(i)})
	}
	for _, ch := range []<-chan *xdv1.Event{a, b} {
		for i := range 10 {
			ev := recv(t, ch)
			if ev.ContainerId != fmt.Sprint(i) {
				t.Fatalf("event %d: container %q, want %d (order)", i, ev.ContainerId, i)
			}
			if ev.Timestamp == nil {
				t.Errorf("event %d: no timestamp", i)
			}
		}
	}
}

func TestExchangeKeepsTimestamp(t *testing.T) {
	x := NewExchange()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := x.Subscribe(ctx, nil)
	ts := timestamppb.New(time.Unix(1000, 5))
	x.Publish(&xdv1.Event{Topic: TopicTaskExit, Timestamp: ts})
	if got := recv(t, ch).Timestamp; !got.AsTime().Equal(ts.AsTime()) {
		t.Errorf("timestamp %v, want %v", got.AsTime(), ts.AsTime())
	}
	x.Publish(nil) // ignored
	noEvent(t, ch)
}

func TestExchangeFilter(t *testing.T) {
	evs := []*xdv1.Event{
		{Namespace: "a", Topic: TopicTaskCreate},
		{Namespace: "b", Topic: TopicTaskExit},
		{Namespace: "a", Topic: TopicImageCreate},
		{Namespace: "a", Topic: TopicTaskExit},
	}
	for _, ev := range evs { // shared by parallel subtests: Publish must not write them
		ev.Timestamp = timestamppb.Now()
	}
	tests := []struct {
		name string
		keep func(*xdv1.Event) bool
		want []int // indexes into evs
	}{
		{"all", nil, []int{0, 1, 2, 3}},
		{"namespace", TopicFilter("a"), []int{0, 2, 3}},
		{"tasks", TopicFilter("", "/tasks/"), []int{0, 1, 3}},
		{"exit in a", TopicFilter("a", TopicTaskExit), []int{3}},
		{"two prefixes", TopicFilter("", "/images/", TopicTaskCreate), []int{0, 2}},
		{"none", TopicFilter("c"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			x := NewExchange()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch := x.Subscribe(ctx, tc.keep)
			for _, ev := range evs {
				x.Publish(ev)
			}
			for _, i := range tc.want {
				if got := recv(t, ch); got != evs[i] {
					t.Fatalf("got %v, want %v", got, evs[i])
				}
			}
			noEvent(t, ch)
		})
	}
}

func TestExchangeSlowSubscriberDropped(t *testing.T) {
	x := NewExchange()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow := x.Subscribe(ctx, nil) // never read until the end
	fast := x.Subscribe(ctx, nil)
	var got int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range fast {
			got++
		}
	}()
	n := SubscriberBuffer * 4
	published := make(chan struct{})
	go func() {
		defer close(published)
		for range n {
			x.Publish(&xdv1.Event{Topic: TopicTaskStart})
			// let the fast reader keep up: it must never be dropped
			for len(fast) > SubscriberBuffer/2 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	select {
	case <-published:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a slow subscriber")
	}
	if k := waitClosed(t, slow); k != SubscriberBuffer {
		t.Errorf("slow subscriber got %d events before the drop, want %d", k, SubscriberBuffer)
	}
	if x.subscribers() != 1 {
		t.Errorf("%d subscribers left, want 1", x.subscribers())
	}
	cancel()
	<-done
	if got != n {
		t.Errorf("fast subscriber got %d events, want %d", got, n)
	}
}

func TestExchangeCancel(t *testing.T) {
	x := NewExchange()
	ctx, cancel := context.WithCancel(context.Background())
	ch := x.Subscribe(ctx, nil)
	other := x.Subscribe(context.Background(), nil)
	cancel()
	waitClosed(t, ch)
	x.Publish(&xdv1.Event{Topic: TopicTaskOOM}) // no panic on a closed channel
	if ev := recv(t, other); ev.Topic != TopicTaskOOM {
		t.Errorf("other subscriber got %v", ev)
	}
	if x.subscribers() != 1 {
		t.Errorf("%d subscribers left, want 1", x.subscribers())
	}
}

// TestExchangeConcurrent races publishers, subscribers and cancels (run
// with -race).
func TestExchangeConcurrent(t *testing.T) {
	x := NewExchange()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				x.Publish(&xdv1.Event{Topic: TopicTaskStart})
			}
		}()
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				ctx, cancel := context.WithCancel(context.Background())
				ch := x.Subscribe(ctx, TopicFilter("", "/tasks/"))
				select {
				case <-ch:
				case <-time.After(time.Millisecond):
				}
				cancel()
				if !closedWithin(ch, 2*time.Second) {
					t.Error("channel not closed after cancel")
				}
			}
		}()
	}
	wg.Wait()
	if n := x.subscribers(); n != 0 {
		t.Errorf("%d subscribers left", n)
	}
}
