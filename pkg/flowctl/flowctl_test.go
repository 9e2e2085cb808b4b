package flowctl

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	s := NewSender()
	ctx := context.Background()
	for i := 0; i < Window; i++ {
		if err := s.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The window is full: the next send waits for an acknowledgement.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := s.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with a full window: %v, want it to block", err)
	}
	var sent atomic.Int32
	done := make(chan error)
	go func() {
		for i := 0; i < AckEvery; i++ {
			if err := s.Wait(ctx); err != nil {
				done <- err
				return
			}
			sent.Add(1)
		}
		done <- nil
	}()
	time.Sleep(10 * time.Millisecond)
	if n := sent.Load(); n != 0 {
		t.Fatalf("%d sent before any acknowledgement", n)
	}
	s.Acked(AckEvery)
	if err := <-done; err != nil || sent.Load() != AckEvery {
		t.Fatalf("after acknowledging %d: %d sent, %v", AckEvery, sent.Load(), err)
	}
	// Stale or impossible acknowledgements change nothing.
	s.Acked(1)
	s.Acked(1 << 40)
	short2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if err := s.Wait(short2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait after bogus acknowledgements: %v, want it to block", err)
	}
	// A receiver that goes away releases the sender.
	go s.ReceiverGone()
	if err := s.Wait(ctx); !errors.Is(err, ErrReceiverGone) {
		t.Fatalf("wait after the receiver left: %v", err)
	}
}

func TestReceiverAcksEvery(t *testing.T) {
	var r Receiver
	var acks []uint64
	for i := 0; i < 3*AckEvery+1; i++ {
		if n, due := r.Consumed(); due {
			acks = append(acks, n)
		}
	}
	if len(acks) != 3 || acks[0] != AckEvery || acks[2] != 3*AckEvery {
		t.Fatalf("acknowledged %v, want every %d", acks, AckEvery)
	}
}
