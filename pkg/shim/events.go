package shim

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	eventsapi "github.com/containerd/containerd/api/services/ttrpc/events/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Event topics, as containerd names them.
const (
	TopicCreate      = "/tasks/create"
	TopicStart       = "/tasks/start"
	TopicExit        = "/tasks/exit"
	TopicDelete      = "/tasks/delete"
	TopicExecAdded   = "/tasks/exec-added"
	TopicExecStarted = "/tasks/exec-started"
	TopicPaused      = "/tasks/paused"
	TopicResumed     = "/tasks/resumed"
	TopicOOM         = "/tasks/oom"
)

// publisher forwards events to the daemon's ttrpc Events service
// ($TTRPC_ADDRESS) from one goroutine, in order. Publish never blocks the
// task service. An event the daemon cannot take is retried with backoff;
// events are best effort (the daemon re-reads State and Wait when it
// reconnects), so after maxAttempts, or when too many queue up while the
// daemon is away, the oldest are dropped. The connection is closed once it
// has been idle for a while: events come in bursts (create and start, an
// exec, the exit) and a daemon with a thousand containers should not hold
// a thousand idle connections, each with its goroutines and buffers.
type publisher struct {
	address string
	log     *slog.Logger
	idle    time.Duration

	mu     sync.Mutex
	queue  []*types.Envelope
	closed bool
	// queued wakes an idle sender for a new event; retry also cuts a
	// backoff short (the daemon is back, or the publisher is closing). A
	// new event must not: with the daemon away, every Publish would cost
	// the head event an attempt.
	queued, retry chan struct{}

	client *ttrpc.Client
	events eventsapi.TTRPCEventsService
}

const (
	maxQueuedEvents = 1024
	maxAttempts     = 8
	firstBackoff    = 200 * time.Millisecond
	maxBackoff      = 5 * time.Second
	// idleDisconnect is how long the connection outlives the last event.
	idleDisconnect = time.Second
)

func newPublisher(address string, log *slog.Logger) *publisher {
	return startPublisher(address, log, idleDisconnect)
}

func startPublisher(address string, log *slog.Logger, idle time.Duration) *publisher {
	p := &publisher{
		address: strings.TrimPrefix(address, "unix://"), log: log, idle: idle,
		queued: make(chan struct{}, 1), retry: make(chan struct{}, 1),
	}
	go p.run()
	return p
}

// Publish queues an event for namespace ns.
func (p *publisher) Publish(ns, topic string, event any) {
	if p == nil || p.address == "" {
		return
	}
	any, err := typeurl.MarshalAnyToProto(event)
	if err != nil {
		p.log.Error("encode event", "topic", topic, "err", err)
		return
	}
	env := &types.Envelope{Timestamp: timestamppb.Now(), Namespace: ns, Topic: topic, Event: any}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if len(p.queue) >= maxQueuedEvents {
		p.log.Warn("event queue full, dropping the oldest", "topic", p.queue[0].Topic)
		p.queue = p.queue[1:]
	}
	p.queue = append(p.queue, env)
	p.mu.Unlock()
	wakeUp(p.queued)
}

// kick makes the sender retry now (the daemon reconnected).
func (p *publisher) kick() { wakeUp(p.retry) }

func wakeUp(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (p *publisher) run() {
	attempts, backoff := 0, firstBackoff
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			p.disconnect()
			return
		}
		var env *types.Envelope
		if len(p.queue) > 0 {
			env = p.queue[0]
		}
		p.mu.Unlock()
		if env == nil {
			p.waitIdle()
			continue
		}
		if err := p.send(env); err != nil {
			attempts++
			if attempts >= maxAttempts {
				p.log.Warn("dropping event the daemon did not take", "topic", env.Topic, "err", err)
				p.pop(env)
				attempts, backoff = 0, firstBackoff
				continue
			}
			timer := time.NewTimer(backoff)
			select {
			case <-p.retry:
			case <-timer.C:
			}
			timer.Stop()
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		p.pop(env)
		attempts, backoff = 0, firstBackoff
	}
}

// waitIdle waits for the next event, closing the connection if none comes
// within p.idle.
func (p *publisher) waitIdle() {
	wait := func() {
		select {
		case <-p.queued:
		case <-p.retry:
		}
	}
	if p.client == nil {
		wait()
		return
	}
	timer := time.NewTimer(p.idle)
	defer timer.Stop()
	select {
	case <-p.queued:
	case <-p.retry:
	case <-timer.C:
		p.disconnect()
		wait()
	}
}

func (p *publisher) disconnect() {
	if p.client != nil {
		p.client.Close()
	}
	p.client, p.events = nil, nil
}

// pop removes env, which was the head when it was sent, unless Publish
// has dropped it from a full queue meanwhile: then the head is an event
// not sent yet.
func (p *publisher) pop(env *types.Envelope) {
	p.mu.Lock()
	if len(p.queue) > 0 && p.queue[0] == env {
		p.queue[0] = nil
		p.queue = p.queue[1:]
	}
	p.mu.Unlock()
}

func (p *publisher) send(env *types.Envelope) error {
	if p.events == nil {
		conn, err := net.DialTimeout("unix", p.address, 2*time.Second)
		if err != nil {
			return err
		}
		p.client = ttrpc.NewClient(conn)
		p.events = eventsapi.NewTTRPCEventsClient(p.client)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.events.Forward(ctx, &eventsapi.ForwardRequest{Envelope: env}); err != nil {
		// Reconnect next time: the daemon may have restarted.
		p.disconnect()
		return err
	}
	return nil
}

// pending reports how many events wait to be sent.
func (p *publisher) pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// close stops the sender after a short drain.
func (p *publisher) close(drain time.Duration) {
	if p == nil {
		return
	}
	deadline := time.Now().Add(drain)
	for p.pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.kick()
}
