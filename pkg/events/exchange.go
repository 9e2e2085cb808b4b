package events

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"google.golang.org/protobuf/types/known/timestamppb"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// SubscriberBuffer is how many events a subscriber may fall behind before
// it is dropped.
const SubscriberBuffer = 256

// Exchange is xd's in-process pub/sub. Publish never blocks: a subscriber
// whose buffer is full is dropped (its channel is closed and the drop is
// logged), so one stuck API client can never hold up the daemon. A
// subscriber that sees its channel closed while its context is still live
// knows it lost events and should resynchronise (e.g. re-list tasks).
//
// Events are shared between subscribers: receivers must not modify them.
// The zero Exchange is not usable; call NewExchange.
type Exchange struct {
	log *slog.Logger

	mu   sync.Mutex
	subs map[*subscriber]struct{} // guarded by mu
}

// subscriber is one Subscribe call.
type subscriber struct {
	ch   chan *xdv1.Event // closed exactly once, by remove, under Exchange.mu
	keep func(*xdv1.Event) bool
	gone chan struct{} // closed with ch: stops the ctx watcher
}

// Option configures an Exchange.
type Option func(*Exchange)

// WithLogger sets the logger drops are reported to (slog.Default otherwise).
func WithLogger(l *slog.Logger) Option {
	return func(e *Exchange) { e.log = l }
}

// NewExchange returns an Exchange with no subscribers.
func NewExchange(opts ...Option) *Exchange {
	e := &Exchange{log: slog.Default(), subs: map[*subscriber]struct{}{}}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Publish hands ev to every subscriber whose filter keeps it, setting
// ev.Timestamp to now if it is nil. It never blocks.
func (e *Exchange) Publish(ev *xdv1.Event) {
	if ev == nil {
		return
	}
	if ev.Timestamp == nil {
		ev.Timestamp = timestamppb.Now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.subs {
		if s.keep != nil && !s.keep(ev) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			e.remove(s)
			e.log.Warn("event subscriber too slow: dropped",
				"buffer", cap(s.ch), "topic", ev.Topic, "ns", ev.Namespace, "id", ev.ContainerId)
		}
	}
}

// Subscribe returns a channel of the events published from now on that
// keep (nil keeps all) accepts, in publish order. keep runs inside Publish
// and must be fast and must not call the Exchange. The channel is closed
// when ctx is done or when the subscriber is dropped for falling
// SubscriberBuffer events behind.
func (e *Exchange) Subscribe(ctx context.Context, keep func(*xdv1.Event) bool) <-chan *xdv1.Event {
	s := &subscriber{
		ch:   make(chan *xdv1.Event, SubscriberBuffer),
		keep: keep,
		gone: make(chan struct{}),
	}
	e.mu.Lock()
	e.subs[s] = struct{}{}
	e.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			e.mu.Lock()
			e.remove(s)
			e.mu.Unlock()
		case <-s.gone:
		}
	}()
	return s.ch
}

// remove forgets s and closes its channel, once. Preconditions: e.mu held.
func (e *Exchange) remove(s *subscriber) {
	if _, ok := e.subs[s]; !ok {
		return
	}
	delete(e.subs, s)
	close(s.ch)
	close(s.gone)
}

// subscribers is the number of live subscribers (for tests).
func (e *Exchange) subscribers() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs)
}

// TopicFilter returns a keep function for Subscribe that accepts events
// whose topic starts with one of prefixes (all events when there are none)
// and, when namespace is not empty, that belong to it.
func TopicFilter(namespace string, prefixes ...string) func(*xdv1.Event) bool {
	return func(ev *xdv1.Event) bool {
		if namespace != "" && ev.Namespace != namespace {
			return false
		}
		if len(prefixes) == 0 {
			return true
		}
		for _, p := range prefixes {
			if strings.HasPrefix(ev.Topic, p) {
				return true
			}
		}
		return false
	}
}
