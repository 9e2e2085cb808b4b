package daemon

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/xstack/xstack/pkg/events"
	"github.com/xstack/xstack/pkg/taskio"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// Recover rebuilds xd's view after a start: it re-attaches to every live
// shim, learns the exits that happened while xd was down, cleans up after
// dead shims and half-made bundles, and collects garbage. It runs before xd
// serves, so clients never see a half-recovered state.
func (s *Server) Recover(ctx context.Context) error {
	nss, err := s.db.Namespaces()
	if err != nil {
		return err
	}
	type job struct {
		ns string
		c  *xdv1.Container
	}
	var jobs []job
	known := map[string]bool{}
	for _, ns := range nss {
		cs, err := s.db.ListContainers(ns)
		if err != nil {
			return err
		}
		for _, c := range cs {
			jobs = append(jobs, job{ns, c})
			known[taskKey(ns, c.Id)] = true
		}
	}
	// Shims answer in a few milliseconds each; a dead one costs a dial
	// timeout, so they are visited in parallel.
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.recoverTask(ctx, j.ns, j.c.Id)
		}()
	}
	wg.Wait()
	s.removeOrphanBundles(ctx, known)
	s.collectGarbage(ctx)
	return nil
}

func (s *Server) recoverTask(ctx context.Context, ns, id string) {
	log := s.log.With("ns", ns, "id", id)
	bundle := s.bundleDir(ns, id)
	rec, recErr := s.db.GetTask(ns, id)
	if recErr != nil {
		rec = &xdv1.Task{ContainerId: id}
	}
	if _, err := os.Stat(bundle); err != nil {
		if recErr == nil && rec.Status != xdv1.Status_STOPPED {
			// The bundle is on tmpfs: the host rebooted, or someone removed it.
			log.Warn("task lost: no bundle")
			s.recordLost(ns, rec, 255, "task lost: its bundle is gone (host reboot?)")
		}
		return
	}
	if _, err := os.Stat(filepath.Join(bundle, "address")); err != nil {
		// xd died while creating the task.
		log.Warn("half-created task; cleaning up")
		s.shims.Cleanup(ctx, ns, id, bundle)
		os.RemoveAll(bundle)
		if rec.Status != xdv1.Status_STOPPED {
			s.recordLost(ns, rec, 255, "task creation interrupted by an xd restart")
		}
		return
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	shim, err := s.shims.Load(dctx, ns, id, bundle)
	cancel()
	if err != nil {
		log.Warn("shim is gone; cleaning up", "error", err)
		status, at := uint32(137), time.Now()
		if resp, err := s.shims.Cleanup(ctx, ns, id, bundle); err == nil {
			status, at = resp.ExitStatus, resp.ExitedAt.AsTime()
		} else {
			log.Error("shim delete", "error", err)
		}
		os.RemoveAll(bundle)
		if rec.Status != xdv1.Status_STOPPED {
			rec.ExitedAt = timestamppb.New(at)
			s.recordLost(ns, rec, status, "shim died")
		}
		return
	}
	st, err := shim.Task().State(ctx, &taskapi.StateRequest{ID: id})
	if err != nil {
		// A shim without its container: xd died between starting the shim
		// and creating the task.
		log.Warn("shim has no task; cleaning up", "error", err)
		s.teardownShim(ns, id, bundle, shim)
		os.RemoveAll(bundle)
		if rec.Status != xdv1.Status_STOPPED {
			s.recordLost(ns, rec, 255, "task creation interrupted by an xd restart")
		}
		return
	}
	t := &task{
		s: s, ns: ns, id: id, bundle: bundle, shim: shim, log: log,
		procs: map[string]*process{}, gone: make(chan struct{}), record: rec,
	}
	rec.ShimAddress = shim.Address()
	p := &process{tty: rec.Tty, exited: make(chan struct{}), pid: rec.Pid}
	p.pid, rec.Pid = st.Pid, st.Pid
	if rec.Status != xdv1.Status_STOPPED && st.Status != 0 {
		rec.Status = xdv1.Status(st.Status)
	}
	if rec.Status == xdv1.Status_STOPPED && rec.ExitedAt != nil {
		// Its exit was recorded before xd went down: not news.
		p.exit = &xdv1.ExitStatus{ExitStatus: rec.ExitStatus, ExitedAt: rec.ExitedAt, Pid: p.pid}
		close(p.exited)
	}
	if p.io, err = taskio.Reopen(taskio.Config{Dir: filepath.Join(bundle, "io"), Name: "init", Stdin: rec.Stdin, Terminal: rec.Tty, LogPath: s.logPath(ns, id)}); err != nil {
		log.Warn("reopen stdio", "error", err)
		p.io = nil
	}
	t.procs[""] = p
	s.mu.Lock()
	s.tasks[taskKey(ns, id)] = t
	s.mu.Unlock()
	t.persist()
	if p.exit == nil {
		go t.watch(p)
	}
	log.Info("re-attached to shim", "pid", p.pid, "status", rec.Status.String())
}

// recordLost marks a task exited without a shim to ask, and says so.
func (s *Server) recordLost(ns string, rec *xdv1.Task, status uint32, why string) {
	rec.Status = xdv1.Status_STOPPED
	rec.ExitStatus = status
	if rec.ExitedAt == nil {
		rec.ExitedAt = timestamppb.Now()
	}
	rec.Error = why
	if err := s.db.PutTask(ns, rec); err != nil {
		s.log.Error("persist task", "ns", ns, "id", rec.ContainerId, "error", err)
	}
	s.publish(ns, events.TopicTaskExit, rec.ContainerId, func(ev *xdv1.Event) {
		ev.Pid, ev.ExitStatus, ev.ExitedAt = rec.Pid, status, rec.ExitedAt
	})
}

// removeOrphanBundles cleans bundles whose container record is gone (xd
// died while deleting it).
func (s *Server) removeOrphanBundles(ctx context.Context, known map[string]bool) {
	root := filepath.Join(s.cfg.State, "bundles")
	nsDirs, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, nsDir := range nsDirs {
		ids, _ := os.ReadDir(filepath.Join(root, nsDir.Name()))
		for _, id := range ids {
			if known[taskKey(nsDir.Name(), id.Name())] {
				continue
			}
			bundle := filepath.Join(root, nsDir.Name(), id.Name())
			s.log.Warn("orphan bundle; cleaning up", "bundle", bundle)
			s.shims.Cleanup(ctx, nsDir.Name(), id.Name(), bundle)
			if err := os.RemoveAll(bundle); err != nil {
				s.log.Error("remove orphan bundle", "bundle", bundle, "error", err)
			}
		}
	}
}
