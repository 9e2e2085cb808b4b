// Package flowctl keeps either end of a ttrpc stream from flooding the
// other. ttrpc has no flow control of its own: a receiver that holds 64
// unread messages for a second loses the stream (ErrStreamFull), which is
// what a client piped into a pager, or a container slow to read its
// stdin, does. So the sender stops once Window messages are not
// acknowledged, and the receiver acknowledges every AckEvery messages it
// has consumed (written out, not merely received), which also passes the
// consumer's pace back to the producer.
package flowctl

import (
	"context"
	"errors"
	"sync"
)

const (
	// Window is how many messages may be unacknowledged: well below
	// ttrpc's 64, with room for the few control messages that share the
	// stream.
	Window = 32
	// AckEvery is how often the receiver acknowledges.
	AckEvery = 8
)

// ErrReceiverGone is Wait's error once the receiver can acknowledge no
// more (its side of the stream closed).
var ErrReceiverGone = errors.New("flow control: the receiver is gone")

// Sender counts the messages sent against those acknowledged.
type Sender struct {
	mu      sync.Mutex
	sent    uint64
	acked   uint64
	gone    bool
	changed chan struct{} // closed, and replaced, at each acknowledgement
}

func NewSender() *Sender { return &Sender{changed: make(chan struct{})} }

// Wait returns once one more message may be sent, and counts it as sent.
func (s *Sender) Wait(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.gone {
			s.mu.Unlock()
			return ErrReceiverGone
		}
		if s.sent-s.acked < Window {
			s.sent++
			s.mu.Unlock()
			return nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Acked records that the receiver consumed n messages in all.
func (s *Sender) Acked(n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > s.acked && n <= s.sent {
		s.acked = n
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// ReceiverGone wakes the waiters for good: no acknowledgement will come.
func (s *Sender) ReceiverGone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.gone {
		s.gone = true
		close(s.changed)
	}
}

// Receiver counts the messages consumed.
type Receiver struct{ consumed uint64 }

// Consumed counts one more message consumed; due says that the count
// (the total so far) is to be acknowledged now.
func (r *Receiver) Consumed() (count uint64, due bool) {
	r.consumed++
	return r.consumed, r.consumed%AckEvery == 0
}
