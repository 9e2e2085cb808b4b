// Package reaper is the shim's only collector of child exits. The shim is a
// child subreaper, so the container's init, its exec'd processes and any
// orphan below them become its children; and it starts runtime commands
// (xrunc create, start, ...) itself. One wait4(-1) loop reaps all of them
// and hands every exit, in order, to every subscriber, through an
// unbounded queue so that no exit is ever dropped or blocks the loop.
//
// Nothing else in the process may wait for children: os/exec's Wait would
// race with the loop. Commands are run with Run, which subscribes before
// starting the command and picks its exit out of the stream.
//
// Internal to xstack; no API stability.
package reaper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is one reaped child.
type Exit struct {
	Pid int
	// Status is the exit code, or 128+signal for a killed process, as a
	// shell reports it.
	Status int
	At     time.Time
}

// Reaper owns SIGCHLD and every child's exit.
type Reaper struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// New makes the calling process a child subreaper and starts the loop.
// Call it once, before starting any child.
func New() (*Reaper, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("become child subreaper: %w", err)
	}
	r := &Reaper{subs: make(map[*Subscription]struct{})}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGCHLD)
	go func() {
		for range sigs {
			r.reap()
		}
	}()
	// Children that exited before Notify was in place.
	r.reap()
	return r, nil
}

// reap collects every child that has exited. SIGCHLD does not queue, so
// one signal may stand for several exits.
func (r *Reaper) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		r.publish(Exit{Pid: pid, Status: exitStatus(ws), At: time.Now()})
	}
}

func exitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

func (r *Reaper) publish(e Exit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.subs {
		s.push(e)
	}
}

// Subscribe returns a subscription that receives every exit from now on.
func (r *Reaper) Subscribe() *Subscription {
	s := &Subscription{r: r, ready: make(chan struct{}, 1)}
	r.mu.Lock()
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	return s
}

// Subscription is an unbounded, ordered queue of exits.
type Subscription struct {
	r     *Reaper
	mu    sync.Mutex
	queue []Exit
	ready chan struct{} // has a token while queue is non-empty
}

func (s *Subscription) push(e Exit) {
	s.mu.Lock()
	s.queue = append(s.queue, e)
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Next returns the oldest exit not yet returned, waiting for one if needed.
func (s *Subscription) Next(ctx context.Context) (Exit, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			e := s.queue[0]
			s.queue[0] = Exit{}
			s.queue = s.queue[1:]
			if len(s.queue) > 0 {
				// Keep the token for the next caller.
				select {
				case s.ready <- struct{}{}:
				default:
				}
			}
			s.mu.Unlock()
			return e, nil
		}
		s.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			return Exit{}, ctx.Err()
		}
	}
}

// Ready is readable when an exit may be queued (use it in a select, then
// call Next).
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Close stops the subscription.
func (s *Subscription) Close() {
	s.r.mu.Lock()
	delete(s.r.subs, s)
	s.r.mu.Unlock()
}

// ErrNotStarted is returned by Run when the command could not start.
var ErrNotStarted = errors.New("command did not start")

// Run starts cmd and returns its exit status once the loop has reaped it.
// cmd's stdio must be *os.File or nil (os/exec must not need Wait to copy
// data), and cmd is never waited for through os/exec.
func (r *Reaper) Run(cmd *exec.Cmd) (int, error) {
	wait, err := r.Start(cmd)
	if err != nil {
		return -1, err
	}
	return wait()
}

// Start starts cmd and returns a function that waits for its exit status.
// The wait function must be called (until then every exit is queued for
// it).
func (r *Reaper) Start(cmd *exec.Cmd) (wait func() (int, error), err error) {
	sub := r.Subscribe()
	if err := cmd.Start(); err != nil {
		sub.Close()
		return nil, fmt.Errorf("%w: %v", ErrNotStarted, err)
	}
	pid := cmd.Process.Pid
	return func() (int, error) {
		defer sub.Close()
		// The reaper collects the process; only the handle is released.
		defer cmd.Process.Release()
		for {
			e, err := sub.Next(context.Background())
			if err != nil {
				return -1, err
			}
			if e.Pid == pid {
				return e.Status, nil
			}
		}
	}, nil
}
