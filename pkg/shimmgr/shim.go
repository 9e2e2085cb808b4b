package shimmgr

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	task "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"
)

// Shim is a connection to one container's shim.
type Shim struct {
	m                       *Manager
	ns, id, bundle, address string
	pid                     int // the shim's pid, from Connect
	client                  *ttrpc.Client
	task                    task.TTRPCTaskService
	log                     *logReader // the reader this Shim started

	done     chan struct{} // closed by the client's on-close callback
	doneOnce sync.Once
}

// ID is the container id.
func (s *Shim) ID() string { return s.id }

// Namespace is the container's namespace.
func (s *Shim) Namespace() string { return s.ns }

// Bundle is the container's bundle directory.
func (s *Shim) Bundle() string { return s.bundle }

// Address is the shim's ttrpc address ("unix:///...").
func (s *Shim) Address() string { return s.address }

// Pid is the shim server's pid as its Connect reported it.
func (s *Shim) Pid() int { return s.pid }

// Task is the shim's task API. Every call carries the namespace header.
func (s *Shim) Task() task.TTRPCTaskService { return s.task }

// Done is closed when the ttrpc connection closes: the shim exited or
// closed it, or Close or Shutdown was called.
func (s *Shim) Done() <-chan struct{} { return s.done }

// connect calls Connect and records the shim's pid.
func (s *Shim) connect(ctx context.Context) (*task.ConnectResponse, error) {
	r, err := s.task.Connect(ctx, &task.ConnectRequest{ID: s.id})
	if err != nil {
		return nil, err
	}
	s.pid = int(r.ShimPid)
	return r, nil
}

// Shutdown asks the shim to exit (it does once it serves no container),
// waits briefly for it to close the connection, then closes the client and
// stops reading the shim's log. A connection that closes before the answer
// (ttrpc.ErrClosed) is success; a socket the shim left behind is removed.
// As in containerd, a shim that exited this way needs no Cleanup (its
// Delete already ran the runtime's delete); one that did not exit in time
// is an error, and the caller runs Cleanup.
func (s *Shim) Shutdown(ctx context.Context) error {
	_, err := s.task.Shutdown(ctx, &task.ShutdownRequest{ID: s.id})
	if err != nil && !isClosed(err) {
		s.Close()
		return fmt.Errorf("shutdown shim of %s/%s: %w", s.ns, s.id, err)
	}
	t := time.NewTimer(shutdownWait)
	defer t.Stop()
	exited := false
	select {
	case <-s.done:
		exited = true
	case <-t.C:
	case <-ctx.Done():
	}
	if err := s.Close(); err != nil {
		return err
	}
	if !exited {
		return fmt.Errorf("shutdown shim of %s/%s: still serving after %v", s.ns, s.id, shutdownWait)
	}
	removeDeadSocket(s.bundle, s.m.logger().With("ns", s.ns, "id", s.id))
	return nil
}

// Close closes the connection only and stops reading the shim's log: the
// shim and its container live on (xd is exiting or letting go). It is
// idempotent.
func (s *Shim) Close() error {
	err := s.client.Close()
	s.m.stopLog(s.ns, s.id, s.log)
	if err != nil && !errors.Is(err, ttrpc.ErrClosed) {
		return fmt.Errorf("close shim connection of %s/%s: %w", s.ns, s.id, err)
	}
	return nil
}

// abort gets rid of a shim whose start failed half-way: Shutdown, and
// SIGKILL if it is still there after killWait.
func (s *Shim) abort(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, killWait)
	s.task.Shutdown(sctx, &task.ShutdownRequest{ID: s.id})
	cancel()
	select {
	case <-s.done:
	case <-time.After(killWait):
	}
	s.client.Close()
	if s.pid <= 0 {
		// Connect never answered: find the server by its command line,
		// which names our address, namespace and id.
		s.pid = findShim(s.m.Address, s.ns, s.id)
	}
	if s.pid > 0 && !exited(s.pid, killWait) {
		s.m.logger().Warn("shim did not exit after a failed start: killing it", "ns", s.ns, "id", s.id, "pid", s.pid)
		if fd, err := unix.PidfdOpen(s.pid, 0); err == nil {
			unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			unix.Close(fd)
		}
	}
}

// exited waits up to d for pid to be gone or a zombie.
func exited(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !alive(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
