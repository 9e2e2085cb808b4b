package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/xstack/xstack/pkg/events"
	"github.com/xstack/xstack/pkg/shimmgr"
	"github.com/xstack/xstack/pkg/taskio"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// task is a container's running (or exited, not yet deleted) task: its
// shim and its processes.
type task struct {
	s      *Server
	ns, id string
	bundle string
	shim   *shimmgr.Shim
	log    *slog.Logger

	mu     sync.Mutex
	record *xdv1.Task // what is persisted
	procs  map[string]*process
	// persistMu orders the writes of record: each write holds it from
	// taking its copy until the commit, so the last state taken is the
	// last one written. Taken before mu, never while holding it.
	persistMu sync.Mutex
	// gone is closed when the shim is lost for good (deleted or dead).
	gone     chan struct{}
	goneOnce sync.Once
	// restart is the container's restart policy, known when xd created
	// the task; nil for a task re-attached after a restart (read from the
	// container when its init exits).
	restart *restartPolicy
}

// process is the init (execID "") or an exec.
type process struct {
	execID string
	io     *taskio.IO
	tty    bool
	stdin  bool // an exec's: it asked for a stdin stream
	// exited is closed once exit is set.
	exited chan struct{}
	exit   *xdv1.ExitStatus
	pid    uint32
}

func taskKey(ns, id string) string { return ns + "/" + id }

// getTask returns a container's live task, waiting for one whose shim is
// being re-attached after a restart.
func (s *Server) getTask(ns, id string) *task {
	s.mu.Lock()
	r := s.recovering[taskKey(ns, id)]
	s.mu.Unlock()
	if r != nil {
		s.reattachOnce.Do(func() { close(s.reattachNow) })
		<-r.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tasks[taskKey(ns, id)]
}

// peekTask is getTask for listings, which must not wait: a task being
// re-attached is reported as recorded (and verified running).
func (s *Server) peekTask(ns, id string) (*task, *xdv1.Task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.recovering[taskKey(ns, id)]; r != nil {
		return nil, proto.Clone(r.rec).(*xdv1.Task)
	}
	if t := s.tasks[taskKey(ns, id)]; t != nil && t.shim != nil {
		return t, nil
	}
	return nil, nil
}

func (s *Server) bundleDir(ns, id string) string {
	return filepath.Join(s.cfg.State, "bundles", ns, id)
}

func (s *Server) logPath(ns, id string) string {
	return filepath.Join(s.cfg.Root, "logs", ns, id+".log")
}

func (s *Server) logRotation() taskio.Rotation {
	return taskio.Rotation{MaxSize: int64(s.cfg.LogMaxSize), MaxFiles: s.cfg.LogMaxFiles}
}

func (t *task) snapshotRecord() *xdv1.Task {
	t.mu.Lock()
	defer t.mu.Unlock()
	return cloneTask(t.record)
}

func cloneTask(r *xdv1.Task) *xdv1.Task {
	return proto.Clone(r).(*xdv1.Task)
}

// persist writes the task record; a failure is logged: the shim remains the
// source of truth for a live task.
func (t *task) persist() {
	t.persistMu.Lock()
	defer t.persistMu.Unlock()
	t.writeRecord(t.snapshotRecord())
}

// writeRecord commits a copy of the record; the caller holds persistMu.
func (t *task) writeRecord(rec *xdv1.Task) {
	if err := t.s.db.PutTask(t.ns, rec); err != nil {
		t.log.Error("persist task", "error", err)
	}
}

// persistExec records an exec process, with its exit once it has one
// (set by the caller, who also closes exited only afterwards).
func (t *task) persistExec(p *process) {
	rec := &xdv1.Task{ContainerId: t.id, ExecId: p.execID, Pid: p.pid, Tty: p.tty, Stdin: p.stdin, Status: xdv1.Status_CREATED}
	if p.exit != nil {
		rec.Status, rec.ExitStatus, rec.ExitedAt = xdv1.Status_STOPPED, p.exit.ExitStatus, p.exit.ExitedAt
	}
	if err := t.s.db.PutExec(t.ns, rec); err != nil {
		t.log.Error("persist exec", "exec", p.execID, "error", err)
	}
}

func (t *task) markOOM() {
	t.mu.Lock()
	t.record.OomKilled = true
	t.mu.Unlock()
	t.persist()
}

// processes returns the task's processes, init included.
func (t *task) processes() []*process {
	t.mu.Lock()
	defer t.mu.Unlock()
	procs := make([]*process, 0, len(t.procs))
	for _, p := range t.procs {
		procs = append(procs, p)
	}
	return procs
}

func (t *task) proc(execID string) (*process, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.procs[execID]
	if !ok {
		if execID == "" {
			return nil, notFound("task %q has no init process", t.id)
		}
		return nil, notFound("exec %q not found in container %q", execID, t.id)
	}
	return p, nil
}

// watch waits on the shim for a process's exit, records it and publishes
// /tasks/exit once. If the shim dies first, the exit comes from `shim delete`.
func (t *task) watch(p *process) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-t.shim.Done():
			cancel()
		case <-p.exited:
		}
	}()
	resp, err := t.shim.Task().Wait(ctx, &taskapi.WaitRequest{ID: t.id, ExecID: p.execID})
	if err == nil {
		t.exited(p, resp.ExitStatus, resp.ExitedAt.AsTime(), "")
		return
	}
	select {
	case <-t.gone:
		// xd let go of the shim (it shuts down, or the task was deleted).
		return
	default:
	}
	select {
	case <-t.shim.Done():
	default:
		if !errors.Is(err, context.Canceled) {
			t.log.Warn("wait on shim failed", "exec", p.execID, "error", err)
		}
		return
	}
	if p.execID != "" {
		t.exited(p, 255, time.Now(), "shim died")
		return
	}
	t.shimDied()
}

// shimDied handles a shim that went away with its container's exit unknown.
func (t *task) shimDied() {
	t.log.Warn("shim died; cleaning up")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, at := uint32(137), time.Now()
	if resp, err := t.s.shims.Cleanup(ctx, t.ns, t.id, t.bundle); err == nil {
		status, at = resp.ExitStatus, resp.ExitedAt.AsTime()
	} else {
		t.log.Error("shim delete", "error", err)
	}
	for _, p := range t.processes() {
		if p.execID != "" {
			t.exited(p, 255, at, "shim died")
		}
	}
	if p, err := t.proc(""); err == nil {
		t.exited(p, status, at, "shim died")
	}
	t.s.forgetTask(t, true)
}

// exited records a process's exit (first report wins). The init's record
// is written after its exit is visible (a Wait returns without waiting for
// the disk), but under persistMu, taken before: whoever saw the exit and
// deletes the task or the container writes after it, so a stale "stopped"
// record cannot land after the record is gone.
func (t *task) exited(p *process, status uint32, at time.Time, why string) {
	if p.execID == "" {
		t.persistMu.Lock()
	}
	t.mu.Lock()
	if p.exit != nil {
		t.mu.Unlock()
		if p.execID == "" {
			t.persistMu.Unlock()
		}
		return
	}
	p.exit = &xdv1.ExitStatus{ExitStatus: status, ExitedAt: timestamppb.New(at), Pid: p.pid}
	if p.execID != "" {
		t.mu.Unlock()
		// Recorded before anyone can see the exit (and delete the exec),
		// so that a restarted xd knows it is not news.
		t.persistExec(p)
		t.mu.Lock()
	} else {
		t.record.Status = xdv1.Status_STOPPED
		t.record.ExitStatus = status
		t.record.ExitedAt = timestamppb.New(at)
		if why != "" && t.record.Error == "" {
			t.record.Error = why
		}
	}
	close(p.exited)
	var rec *xdv1.Task
	if p.execID == "" {
		rec = cloneTask(t.record)
	}
	t.mu.Unlock()
	if rec != nil {
		t.writeRecord(rec)
		t.persistMu.Unlock()
	}
	t.s.publish(t.ns, events.TopicTaskExit, t.id, func(ev *xdv1.Event) {
		ev.ExecId, ev.Pid, ev.ExitStatus, ev.ExitedAt = p.execID, p.pid, status, timestamppb.New(at)
	})
	if p.execID == "" {
		t.s.afterInitExit(t, status)
	}
}

// detach lets go of the shim without touching it: xd is exiting and the
// container must live on.
func (t *task) detach() {
	if t.shim == nil {
		return // a task still being created: its creator cleans up
	}
	t.goneOnce.Do(func() { close(t.gone) })
	for _, p := range t.processes() {
		if p.io != nil {
			p.io.Close()
		}
	}
	t.shim.Close()
}

// forgetTask drops a task whose shim is gone; with removeBundle its bundle
// too (the shim's delete already unmounted the rootfs).
func (s *Server) forgetTask(t *task, removeBundle bool) {
	t.goneOnce.Do(func() { close(t.gone) })
	s.mu.Lock()
	if s.tasks[taskKey(t.ns, t.id)] == t {
		delete(s.tasks, taskKey(t.ns, t.id))
	}
	s.mu.Unlock()
	for _, p := range t.processes() {
		if p.io != nil {
			// The output may still be draining into the log.
			drainOrClose(p.io)
		}
	}
	t.shim.Close()
	if removeBundle {
		if err := os.RemoveAll(t.bundle); err != nil {
			t.log.Warn("remove bundle", "error", err)
		}
	}
	// The last record, and the execs went with the shim: one commit.
	t.persistMu.Lock()
	defer t.persistMu.Unlock()
	if err := s.db.EndTask(t.ns, t.snapshotRecord()); err != nil {
		t.log.Error("persist task", "error", err)
	}
}

// drainOrClose gives the output a moment to reach EOF (the shim closed its
// ends), then cuts it.
func drainOrClose(io *taskio.IO) {
	select {
	case <-io.Done():
	case <-time.After(2 * time.Second):
	}
	io.Close()
}

// requireTask returns a container's live task or NotFound.
func (s *Server) requireTask(ctx context.Context, id string) (*task, error) {
	ns := namespace(ctx)
	if t := s.getTask(ns, id); t != nil {
		return t, nil
	}
	if _, err := s.db.GetContainer(ns, id); err != nil {
		return nil, err
	}
	return nil, notFound("container %q has no running task", id)
}

// errNotRunning is what Kill and friends say for a stopped container.
func errNotRunning(id string) error {
	return fmt.Errorf("container %q is not running: %w", id, errdefs.ErrFailedPrecondition)
}
