package daemon

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// restartPolicy is what xd does when a container's init exits, as
// docker's --restart.
type restartPolicy struct {
	mode       string // "no", "always", "unless-stopped" or "on-failure"
	maxRetries uint32 // on-failure:N; 0: no limit
}

func parseRestartPolicy(s string) (restartPolicy, error) {
	mode, max, hasMax := strings.Cut(s, ":")
	switch {
	case s == "" || s == "no":
		return restartPolicy{mode: "no"}, nil
	case (mode == "always" || mode == "unless-stopped") && !hasMax:
		return restartPolicy{mode: mode}, nil
	case mode == "on-failure" && !hasMax:
		return restartPolicy{mode: mode}, nil
	case mode == "on-failure":
		n, err := strconv.ParseUint(max, 10, 32)
		if err != nil || n == 0 {
			return restartPolicy{}, fmt.Errorf("restart policy %q: the most restarts must be a number above 0: %w", s, errdefs.ErrInvalidArgument)
		}
		return restartPolicy{mode: mode, maxRetries: uint32(n)}, nil
	}
	return restartPolicy{}, fmt.Errorf("restart policy %q: want no, always, unless-stopped, on-failure or on-failure:N: %w", s, errdefs.ErrInvalidArgument)
}

// wants reports whether an init that exited with status after restarts
// restarts is started again. A client's stop holds, except that xd's own
// start brings back the containers that always restart, as docker's does.
func (p restartPolicy) wants(status, restarts uint32, stoppedByUser, daemonStart bool) bool {
	switch p.mode {
	case "always":
		return !stoppedByUser || daemonStart
	case "unless-stopped":
		return !stoppedByUser
	case "on-failure":
		return !stoppedByUser && status != 0 && (p.maxRetries == 0 || restarts < p.maxRetries)
	}
	return false
}

// restartDelay is how long xd waits before it restarts a container, as
// docker does: 100 ms, doubled at each restart up to a minute, and 100 ms
// again after a run of 10 s or more.
func restartDelay(restarts uint32, ran time.Duration) time.Duration {
	if ran >= 10*time.Second {
		return 100 * time.Millisecond
	}
	return min(100*time.Millisecond<<min(restarts, 10), time.Minute)
}

// endsProcess reports whether a client's signal is one that stops a
// container for its restart policy (a SIGHUP to reload does not).
func endsProcess(signal uint32) bool {
	switch syscall.Signal(signal) {
	case syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT:
		return true
	}
	return false
}

// pendingRestart is a restart waiting for its delay.
type pendingRestart struct{ timer *time.Timer }

// afterInitExit applies the container's restart policy to its init's exit.
// (A container being removed is marked stopped by its remover.)
func (s *Server) afterInitExit(t *task, status uint32) {
	policy := t.restart
	if policy == nil {
		c, err := s.db.GetContainer(t.ns, t.id)
		if err != nil {
			return
		}
		p, err := parseRestartPolicy(c.GetOptions().GetRestart())
		if err != nil {
			return
		}
		policy = &p
	}
	if policy.mode == "no" {
		return
	}
	t.mu.Lock()
	restarts, stopped := t.record.RestartCount, t.record.StoppedByUser
	ran := time.Duration(0)
	if t.record.StartedAt != nil && t.record.ExitedAt != nil {
		ran = t.record.ExitedAt.AsTime().Sub(t.record.StartedAt.AsTime())
	}
	t.mu.Unlock()
	if policy.wants(status, restarts, stopped, false) {
		s.scheduleRestart(t.ns, t.id, restartDelay(restarts, ran), restarts+1)
	}
}

// restartAtStart brings back, once xd has recovered, the containers whose
// policy restarts them and that stopped (or were lost with the host) while
// xd was down.
func (s *Server) restartAtStart() {
	nss, err := s.db.Namespaces()
	if err != nil {
		s.log.Error("restart policies", "error", err)
		return
	}
	for _, ns := range nss {
		ctrs, err := s.db.ListContainers(ns)
		if err != nil {
			s.log.Error("restart policies", "ns", ns, "error", err)
			continue
		}
		for _, c := range ctrs {
			policy, err := parseRestartPolicy(c.GetOptions().GetRestart())
			if err != nil || policy.mode == "no" {
				continue
			}
			rec, err := s.db.GetTask(ns, c.Id)
			if err != nil || rec.Status != xdv1.Status_STOPPED {
				continue // never started, or running
			}
			if t := s.getTask(ns, c.Id); t != nil && t.shim != nil {
				continue // its exit was seen since xd started: the policy ran then
			}
			if policy.wants(rec.ExitStatus, rec.RestartCount, rec.StoppedByUser, true) {
				s.scheduleRestart(ns, c.Id, 0, rec.RestartCount+1)
			}
		}
	}
}

// scheduleRestart starts the container again after delay, unless a
// client acts on it first (cancelRestart).
func (s *Server) scheduleRestart(ns, id string, delay time.Duration, restarts uint32) {
	key := taskKey(ns, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.restarts[key] != nil || s.closing {
		return
	}
	pending := &pendingRestart{}
	pending.timer = time.AfterFunc(delay, func() {
		s.mu.Lock()
		ours := s.restarts[key] == pending
		if ours {
			delete(s.restarts, key)
		}
		s.mu.Unlock()
		if ours {
			s.restartNow(ns, id, restarts)
		}
	})
	s.restarts[key] = pending
}

// cancelRestart drops a pending restart: a client stopped, started or
// removed the container.
func (s *Server) cancelRestart(ns, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pending := s.restarts[taskKey(ns, id)]; pending != nil {
		pending.timer.Stop()
		delete(s.restarts, taskKey(ns, id))
	}
}

// restartNow replaces the container's exited task by a new one.
func (s *Server) restartNow(ns, id string, restarts uint32) {
	ctx := withNamespace(context.Background(), ns)
	log := s.log.With("ns", ns, "id", id)
	if t := s.getTask(ns, id); t != nil {
		p, err := t.proc("")
		if err != nil {
			return
		}
		select {
		case <-p.exited:
		default:
			return // a client started it meanwhile
		}
		if _, err := s.DeleteProcess(ctx, id, "", false); err != nil {
			log.Error("restart policy: delete the exited task", "error", err)
			return
		}
	}
	if _, err := s.createTask(ctx, id, restarts); err != nil {
		log.Error("restart policy: create task", "error", err)
		return
	}
	if _, err := s.StartProcess(ctx, id, ""); err != nil {
		log.Error("restart policy: start", "error", err)
		return
	}
	log.Info("restarted by its policy", "restarts", restarts)
}

// stoppedByClient records that a client stops the container, before the
// signal goes: its exit does not restart it (nor, for unless-stopped,
// does xd's next start).
func (s *Server) stoppedByClient(ctx context.Context, id string) {
	ns := namespace(ctx)
	s.cancelRestart(ns, id)
	if c, err := s.db.GetContainer(ns, id); err != nil || c.GetOptions().GetRestart() == "" || c.GetOptions().GetRestart() == "no" {
		return // nothing to hold back: no record to write
	}
	if t := s.getTask(ns, id); t != nil && t.shim != nil {
		t.mu.Lock()
		t.record.StoppedByUser = true
		t.mu.Unlock()
		t.persist()
		return
	}
	// Its task already gone (lost with the host, waiting for its policy).
	if rec, err := s.db.GetTask(ns, id); err == nil && rec.Status == xdv1.Status_STOPPED && !rec.StoppedByUser {
		rec.StoppedByUser = true
		if err := s.db.PutTask(ns, rec); err != nil {
			s.log.Error("record stop", "ns", ns, "id", id, "error", err)
		}
	}
}
