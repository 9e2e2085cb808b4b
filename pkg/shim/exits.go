package shim

import (
	"context"

	eventstypes "github.com/containerd/containerd/api/events"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/xstack/xstack/pkg/shim/reaper"
)

// Exit routing.
//
// Every child exit comes from the reaper, in order, on one subscription.
// A process is matched by pid through s.running. A process being started
// is not in s.running yet (its pid is unknown until the runtime returns),
// so every start registers a startWatch that collects the exits seen
// meanwhile; when the pid is known the start looks for it there.
//
// Events keep containerd's order: a process's start event is published
// before its exit event (process.starting holds an exit back), and the
// init's exit is published only after the exits of all its execs (it is
// held in container.pendingInitExit while execs still run). An exec counts
// as running from the moment startExec checked that the init still runs,
// under the same lock, so an init exit that arrives while the runtime is
// still starting the exec waits for it too.

// startWatch collects exits while a runtime create, start or exec runs.
type startWatch struct {
	exits []reaper.Exit
}

// watchStart begins collecting exits for a process about to be started.
func (s *Service) watchStart() *startWatch {
	w := &startWatch{}
	s.exitMu.Lock()
	s.starts[w] = struct{}{}
	s.exitMu.Unlock()
	return w
}

// cancelStart forgets a watch whose start failed.
func (s *Service) cancelStart(w *startWatch) {
	s.exitMu.Lock()
	delete(s.starts, w)
	s.exitMu.Unlock()
}

// started records p's pid once the runtime reported it and marks p as
// starting: its exit, if already seen or arriving before finishStart, is
// held back until the start event is out.
func (s *Service) started(w *startWatch, p *process, pid int) {
	s.exitMu.Lock()
	defer s.exitMu.Unlock()
	delete(s.starts, w)
	p.mu.Lock()
	p.pid, p.starting = pid, true
	if p.state == taskCreated && !p.isInit() {
		p.state = taskRunning
	}
	for i := range w.exits {
		if w.exits[i].Pid == pid {
			e := w.exits[i]
			p.pendingExit = &e
			break
		}
	}
	if p.pendingExit == nil && !p.isInit() {
		// Not reaped yet (its exit would be in w.exits or on its way
		// under exitMu), so the pid is still its own.
		if fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK); err == nil {
			p.pidfd = fd
		}
	}
	p.mu.Unlock()
	if p.pendingExit == nil {
		s.running[pid] = p
	}
}

// finishStart releases an exit held back during the start.
func (s *Service) finishStart(p *process) {
	p.mu.Lock()
	p.starting = false
	e := p.pendingExit
	p.pendingExit = nil
	p.mu.Unlock()
	if e != nil {
		s.handleExit(p, *e)
	}
}

// forget stops routing exits to p (it is being deleted).
func (s *Service) forget(p *process) {
	s.exitMu.Lock()
	defer s.exitMu.Unlock()
	if pid, _, _, _ := p.snapshot(); pid > 0 && s.running[pid] == p {
		delete(s.running, pid)
	}
}

// processExits is the one consumer of the reaper's exits for containers.
func (s *Service) processExits(sub *reaper.Subscription) {
	for {
		e, err := sub.Next(context.Background())
		if err != nil {
			return
		}
		s.exitMu.Lock()
		for w := range s.starts {
			w.exits = append(w.exits, e)
		}
		p := s.running[e.Pid]
		delete(s.running, e.Pid)
		s.exitMu.Unlock()
		if p == nil {
			continue // a runtime command, or an orphan reparented to us
		}
		p.mu.Lock()
		if p.starting {
			p.pendingExit = &e
			p.mu.Unlock()
			continue
		}
		p.mu.Unlock()
		s.handleExit(p, e)
	}
}

// handleExit records an exit and publishes it, in containerd's order.
func (s *Service) handleExit(p *process, e reaper.Exit) {
	c := p.c
	if p.isInit() {
		if c.killAllOnInitExit {
			// Without a pid namespace of its own, the container's other
			// processes do not die with the init: end them as the kernel
			// would have.
			if err := c.runtime.Kill(context.Background(), c.id, 9, true); err != nil {
				s.log.Warn("kill the container's remaining processes", "id", c.id, "err", err)
			}
		}
		c.mu.Lock()
		c.initExited = true
		if c.runningExecs > 0 {
			c.pendingInitExit = &e
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		s.publishExit(p, e)
		return
	}
	s.publishExit(p, e)
	s.execEnded(c)
}

// countExec counts an exec as running, unless the init has exited
// (false): from then on the init's exit waits for the exec's.
func (s *Service) countExec(c *container) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.initExited {
		return false
	}
	c.runningExecs++
	return true
}

// execEnded uncounts an exec that exited or never ran (see startExec),
// publishing the init's exit if it was waiting for the last one.
func (s *Service) execEnded(c *container) {
	c.mu.Lock()
	c.runningExecs--
	var initExit *reaper.Exit
	if c.runningExecs == 0 && c.pendingInitExit != nil {
		initExit, c.pendingInitExit = c.pendingInitExit, nil
	}
	c.mu.Unlock()
	if initExit != nil {
		s.publishExit(c.init, *initExit)
	}
}

// publishExit marks p exited (waking Wait) and sends the exit event.
func (s *Service) publishExit(p *process, e reaper.Exit) {
	p.setExited(e)
	if p.io != nil {
		// Let the terminal copy finish; the FIFOs stay until Delete.
		p.io.closeStdin()
	}
	p.mu.Lock()
	deleted := p.deleted
	p.mu.Unlock()
	if deleted {
		return
	}
	id := p.id
	if p.isInit() {
		id = p.c.id
	}
	s.events.Publish(p.c.namespace, TopicExit, &eventstypes.TaskExit{
		ContainerID: p.c.id,
		ID:          id,
		Pid:         uint32(e.Pid),
		ExitStatus:  uint32(e.Status),
		ExitedAt:    timestamppb.New(e.At),
	})
}
