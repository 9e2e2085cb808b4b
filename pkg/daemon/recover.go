package daemon

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/xstack/xstack/pkg/events"
	"github.com/xstack/xstack/pkg/runtime/proc"
	"github.com/xstack/xstack/pkg/shimmgr"
	"github.com/xstack/xstack/pkg/taskio"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// Recover rebuilds xd's view after a start: it re-attaches to every live
// shim, learns the exits that happened while xd was down, cleans up after
// dead shims and half-made bundles, and collects garbage.
//
// A container whose init is alive and still its shim's child (the kernel
// says so in /proc, at no cost to the shim) runs as recorded: it is listed
// as soon as xd serves, and its shim is re-attached in the background;
// calls that need that shim wait for it. Every other container (exited
// meanwhile, shim gone, half-created) is settled before xd serves, so
// clients never see a stale state.
func (s *Server) Recover(ctx context.Context) error {
	start := time.Now()
	nss, err := s.db.Namespaces()
	if err != nil {
		return err
	}
	var now, later []recoveryJob
	known := map[string]bool{}
	for _, ns := range nss {
		ids, err := s.db.ContainerIDs(ns)
		if err != nil {
			return err
		}
		recs, err := s.db.ListTasks(ns)
		if err != nil {
			return err
		}
		byID := make(map[string]*xdv1.Task, len(recs))
		for _, rec := range recs {
			byID[rec.ContainerId] = rec
		}
		for _, id := range ids {
			j := recoveryJob{ns, id}
			known[taskKey(ns, id)] = true
			if rec := byID[id]; rec != nil && s.stillRunning(ns, rec) {
				s.recovering[taskKey(ns, id)] = &recovering{rec: rec, done: make(chan struct{})}
				later = append(later, j)
			} else {
				now = append(now, j)
			}
		}
	}
	s.recoverAll(ctx, now, 32)
	s.log.Info("recovered", "settled", len(now), "running", len(later), "took", time.Since(start))
	go func() {
		// Listings need no shim: clients polling a freshly restarted xd
		// get their answer before the shims' answers compete with them
		// for the CPU; a call that needs a shim starts the re-attaching at
		// once. Then few at a time, for the same reason.
		select {
		case <-time.After(reattachDelay):
		case <-s.reattachNow:
		case <-ctx.Done():
		}
		s.recoverAll(ctx, later, 2)
		s.removeOrphanBundles(ctx, known)
		s.restartAtStart()
		s.log.Info("re-attached to running containers", "containers", len(later), "took", time.Since(start))
		// Garbage (of a crash during an import or a delete) can wait.
		s.collectGarbage(context.WithoutCancel(ctx))
	}()
	return nil
}

// reattachDelay is how long a restarted xd serves before it re-attaches
// the running containers' shims, unless a call needs one sooner.
const reattachDelay = 150 * time.Millisecond

type recoveryJob struct{ ns, id string }

// recovering is a running container whose shim is being re-attached.
type recovering struct {
	rec  *xdv1.Task // as recorded, verified running
	done chan struct{}
}

// stillRunning tells from the record and /proc alone whether a container
// runs as recorded: its init is alive and the child of the recorded shim
// (so not a recycled pid).
func (s *Server) stillRunning(ns string, rec *xdv1.Task) bool {
	if rec.Pid == 0 || rec.ShimPid == 0 {
		return false
	}
	switch rec.Status {
	case xdv1.Status_CREATED, xdv1.Status_RUNNING, xdv1.Status_PAUSED:
	default:
		return false
	}
	if _, err := os.Stat(filepath.Join(s.bundleDir(ns, rec.ContainerId), "address")); err != nil {
		return false
	}
	st, err := proc.ReadStat(int(rec.Pid))
	return err == nil && !st.Exited() && st.PPid == int(rec.ShimPid)
}

// recoverAll re-attaches jobs, parallel at a time: shims answer in a few
// milliseconds each, a dead one costs a timeout. The live tasks' records
// are written in one transaction per namespace, and their watches start
// once every shim was visited (their Waits would compete with the State
// calls for the shims' CPU).
func (s *Server) recoverAll(ctx context.Context, jobs []recoveryJob, parallel int) {
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	live := map[string][]*xdv1.Task{}
	var watches []func()
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rec, watch := s.recoverTask(ctx, j.ns, j.id)
			mu.Lock()
			if rec != nil {
				live[j.ns] = append(live[j.ns], rec)
			}
			if watch != nil {
				watches = append(watches, watch)
			}
			mu.Unlock()
			s.mu.Lock()
			if r := s.recovering[taskKey(j.ns, j.id)]; r != nil {
				delete(s.recovering, taskKey(j.ns, j.id))
				close(r.done)
			}
			s.mu.Unlock()
		}()
	}
	wg.Wait()
	for ns, recs := range live {
		if err := s.db.PutTasks(ns, recs); err != nil {
			s.log.Error("persist recovered tasks", "ns", ns, "error", err)
		}
	}
	for _, watch := range watches {
		watch()
	}
}

// recoverTask re-attaches one container's task; it returns the record of a
// live task, for the caller to persist, and for a running one the start of
// its watch (started once every shim was visited: the Waits would compete
// with the State calls for the shims' CPU).
func (s *Server) recoverTask(ctx context.Context, ns, id string) (*xdv1.Task, func()) {
	log := s.log.With("ns", ns, "id", id)
	if ctx.Err() != nil {
		// xd is stopping: whatever is left is the next xd's to recover.
		return nil, nil
	}
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
		s.dropExecs(ns, id)
		return nil, nil
	}
	if _, err := os.Stat(filepath.Join(bundle, "address")); err != nil {
		// xd died while creating the task.
		log.Warn("half-created task; cleaning up")
		s.shims.Cleanup(ctx, ns, id, bundle)
		os.RemoveAll(bundle)
		if rec.Status != xdv1.Status_STOPPED {
			s.recordLost(ns, rec, 255, "task creation interrupted by an xd restart")
		}
		s.dropExecs(ns, id)
		return nil, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	shim, err := s.shims.Load(dctx, ns, id, bundle, shimmgr.WithoutConnect())
	var st *taskapi.StateResponse
	if err == nil {
		// The liveness check: a shim that does not answer in time is dead.
		if st, err = shim.Task().State(dctx, &taskapi.StateRequest{ID: id}); err != nil {
			if errdefs.IsNotFound(errgrpc.ToNative(err)) {
				// A shim without its container: xd died between starting
				// the shim and creating the task.
				log.Warn("shim has no task; cleaning up", "error", err)
				cancel()
				s.teardownShim(ns, id, bundle, shim, true)
				os.RemoveAll(bundle)
				if rec.Status != xdv1.Status_STOPPED {
					s.recordLost(ns, rec, 255, "task creation interrupted by an xd restart")
				}
				s.dropExecs(ns, id)
				return nil, nil
			}
			shim.Close()
		}
	}
	cancel()
	if err != nil && ctx.Err() != nil {
		// Not the shim's fault: xd is stopping. Never clean up then.
		log.Info("recovery interrupted; left for the next xd", "error", err)
		return nil, nil
	}
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
		s.dropExecs(ns, id)
		return nil, nil
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
	if p.io, err = taskio.Reopen(taskio.Config{Dir: filepath.Join(bundle, "io"), Name: "init", Stdin: rec.Stdin, Terminal: rec.Tty, LogPath: s.logPath(ns, id), LogRotation: s.logRotation(), Log: log}); err != nil {
		log.Warn("reopen stdio", "error", err)
		p.io = nil
	}
	t.procs[""] = p
	execs := t.adoptExecs(ctx)
	s.mu.Lock()
	s.tasks[taskKey(ns, id)] = t
	s.mu.Unlock()
	log.Debug("re-attached to shim", "pid", p.pid, "status", rec.Status.String())
	if p.exit == nil && st.Status == tasktypes.Status_STOPPED {
		// It exited while xd was down: State has its status.
		t.exited(p, st.ExitStatus, st.ExitedAt.AsTime(), "")
	}
	var watch []*process
	if p.exit == nil {
		watch = append(watch, p)
	}
	for _, e := range execs {
		if e.exit == nil {
			watch = append(watch, e)
		}
	}
	if len(watch) == 0 {
		return t.snapshotRecord(), nil
	}
	return t.snapshotRecord(), func() {
		for _, p := range watch {
			go t.watch(p)
		}
	}
}

// adoptExecs re-attaches the exec processes recorded for a task whose shim
// answered: those the shim still holds, running or exited, are the task's
// again (an exit not yet recorded is learned by the watch); the records of
// the others are dropped.
func (t *task) adoptExecs(ctx context.Context) []*process {
	recs, err := t.s.db.ListExecs(t.ns, t.id)
	if err != nil {
		t.log.Error("list execs", "error", err)
		return nil
	}
	var procs []*process
	for _, rec := range recs {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := t.shim.Task().State(dctx, &taskapi.StateRequest{ID: t.id, ExecID: rec.ExecId})
		cancel()
		if err != nil {
			if errdefs.IsNotFound(errgrpc.ToNative(err)) {
				if err := t.s.db.DeleteExec(t.ns, t.id, rec.ExecId); err != nil {
					t.log.Error("forget exec", "exec", rec.ExecId, "error", err)
				}
			} else {
				t.log.Warn("exec state", "exec", rec.ExecId, "error", err)
			}
			continue
		}
		p := &process{execID: rec.ExecId, tty: rec.Tty, stdin: rec.Stdin, exited: make(chan struct{}), pid: st.Pid}
		if rec.ExitedAt != nil {
			// Its exit was recorded before xd went down: not news.
			p.exit = &xdv1.ExitStatus{ExitStatus: rec.ExitStatus, ExitedAt: rec.ExitedAt, Pid: p.pid}
			close(p.exited)
		} else if p.io, err = taskio.Reopen(taskio.Config{Dir: filepath.Join(t.bundle, "io"), Name: "exec-" + rec.ExecId, Stdin: rec.Stdin, Terminal: rec.Tty}); err != nil {
			// Its output has no reader until then: it could block.
			t.log.Warn("reopen exec stdio", "exec", rec.ExecId, "error", err)
			p.io = nil
		}
		t.procs[rec.ExecId] = p
		procs = append(procs, p)
	}
	return procs
}

// dropExecs forgets the exec records of a task that is gone.
func (s *Server) dropExecs(ns, id string) {
	if err := s.db.DeleteExecs(ns, id); err != nil {
		s.log.Error("forget execs", "ns", ns, "id", id, "error", err)
	}
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
			// Unknown when xd started; but clients have been served since,
			// so it may be a container made meanwhile.
			if _, err := s.db.GetContainer(nsDir.Name(), id.Name()); err == nil {
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
