package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	_ "github.com/containerd/cgroups/v3/cgroup1/stats" // metrics types the shims send
	_ "github.com/containerd/cgroups/v3/cgroup2/stats"
	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/xstack/xstack/pkg/atomicfile"
	"github.com/xstack/xstack/pkg/events"
	"github.com/xstack/xstack/pkg/metadata"
	"github.com/xstack/xstack/pkg/specgen"
	"github.com/xstack/xstack/pkg/taskio"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// runtimeOptions are the runc options xd sends its shims: the OCI runtime
// binary and a runtime root under xd's state dir.
func (s *Server) runtimeOptions(c *xdv1.Container) *options.Options {
	binary := c.RuntimeBinary
	if binary == "" {
		binary = s.cfg.Runtimes[c.Runtime].Binary
	}
	return &options.Options{BinaryName: binary, Root: filepath.Join(s.cfg.State, "runtime")}
}

// CreateTask starts a shim for the container and creates its init
// process, for a client: a restart its policy had pending is dropped.
func (s *Server) CreateTask(ctx context.Context, id string) (*xdv1.Task, error) {
	s.cancelRestart(namespace(ctx), id)
	return s.createTask(ctx, id, 0)
}

// createTask makes the container's task; restarts counts the restarts of
// its policy.
func (s *Server) createTask(ctx context.Context, id string, restarts uint32) (_ *xdv1.Task, err error) {
	ns := namespace(ctx)
	c, err := s.db.GetContainer(ns, id)
	if err != nil {
		return nil, err
	}
	policy, err := parseRestartPolicy(c.GetOptions().GetRestart())
	if err != nil {
		return nil, err
	}
	rt, ok := s.runtimes[c.Runtime]
	if !ok {
		return nil, fmt.Errorf("runtime %q of container %q is not available on this xd: %w", c.Runtime, id, errdefs.ErrFailedPrecondition)
	}
	if s.getTask(ns, id) != nil {
		return nil, fmt.Errorf("container %q already has a task: %w", id, errdefs.ErrAlreadyExists)
	}
	s.mu.Lock()
	if _, busy := s.tasks[taskKey(ns, id)]; busy {
		s.mu.Unlock()
		return nil, fmt.Errorf("container %q already has a task: %w", id, errdefs.ErrAlreadyExists)
	}
	// Reserve the name while the shim starts.
	placeholder := &task{}
	s.tasks[taskKey(ns, id)] = placeholder
	s.mu.Unlock()
	defer func() {
		if err != nil {
			s.mu.Lock()
			if s.tasks[taskKey(ns, id)] == placeholder {
				delete(s.tasks, taskKey(ns, id))
			}
			s.mu.Unlock()
			s.db.PutTask(ns, &xdv1.Task{ContainerId: id, Status: xdv1.Status_STOPPED, Error: err.Error(), Runtime: c.Runtime, ExitedAt: timestamppb.Now(), ExitStatus: 128})
		}
	}()

	bundle := s.bundleDir(ns, id)
	if _, err := os.Stat(bundle); err == nil {
		// A leftover of a crash: clean it as a dead shim's.
		s.shims.Cleanup(ctx, ns, id, bundle)
		os.RemoveAll(bundle)
	}
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(bundle)
		}
	}()
	if err := atomicfile.WriteFile(filepath.Join(bundle, "config.json"), c.Spec, 0o600, false); err != nil {
		return nil, fmt.Errorf("bundle config.json: %w", err)
	}
	if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o711); err != nil {
		return nil, fmt.Errorf("bundle rootfs: %w", err)
	}
	mounts, err := s.snaps.Mounts(ctx, c.SnapshotKey)
	if err != nil {
		return nil, fmt.Errorf("container %q snapshot: %w", id, err)
	}
	tty, stdin := c.Options.GetTty(), c.Options.GetStdin()
	if err := os.MkdirAll(filepath.Dir(s.logPath(ns, id)), 0o700); err != nil {
		return nil, err
	}
	// The log goes on across the container's runs, as docker's; it goes
	// with the container.
	log := s.log.With("ns", ns, "id", id)
	pio, err := taskio.Create(taskio.Config{Dir: filepath.Join(bundle, "io"), Name: "init", Stdin: stdin, Terminal: tty,
		LogPath: s.logPath(ns, id), LogRotation: s.logRotation(), Log: log})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			pio.Close()
		}
	}()
	opts := s.runtimeOptions(c)
	began := time.Now()
	shim, err := s.shims.Start(ctx, ns, id, bundle, rt, opts)
	if err != nil {
		return nil, fmt.Errorf("start shim %s: %w", rt.Shim, err)
	}
	shimStarted := time.Now()
	t := &task{
		s: s, ns: ns, id: id, bundle: bundle, shim: shim,
		log:     log,
		restart: &policy,
		procs:   map[string]*process{},
		gone:    make(chan struct{}),
		record: &xdv1.Task{
			ContainerId: id, Status: xdv1.Status_CREATED, Tty: tty, Stdin: stdin,
			ShimAddress: shim.Address(), Runtime: c.Runtime, ShimPid: uint32(shim.Pid()),
			RestartCount: restarts,
		},
	}
	anyOpts, err := typeurl.MarshalAnyToProto(opts)
	if err != nil {
		return nil, err
	}
	paths := pio.Paths()
	resp, err := shim.Task().Create(ctx, &taskapi.CreateTaskRequest{
		ID: id, Bundle: bundle, Rootfs: mounts, Terminal: tty,
		Stdin: paths.Stdin, Stdout: paths.Stdout, Stderr: paths.Stderr,
		Options: anyOpts,
	})
	if err != nil {
		err = errgrpc.ToNative(err)
		s.teardownShim(ns, id, bundle, shim, true)
		return nil, fmt.Errorf("create task %q: %w", id, err)
	}
	pio.Started()
	t.log.Debug("task created", "pid", resp.Pid, "shim_start", shimStarted.Sub(began), "create", time.Since(shimStarted))
	p := &process{io: pio, tty: tty, exited: make(chan struct{}), pid: resp.Pid}
	t.procs[""] = p
	t.record.Pid = resp.Pid
	s.mu.Lock()
	s.tasks[taskKey(ns, id)] = t
	s.mu.Unlock()
	t.persist()
	go t.watch(p)
	return t.snapshotRecord(), nil
}

// teardownShim ends a shim: Shutdown, then `shim delete` when the task
// failed half-way (force) or the shim did not go cleanly. After a clean
// Delete and Shutdown there is nothing left to clean, as in containerd.
func (s *Server) teardownShim(ns, id, bundle string, shim interface {
	Shutdown(context.Context) error
}, force bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shim.Shutdown(ctx); err != nil {
		s.log.Warn("shim shutdown; cleaning up", "ns", ns, "id", id, "error", err)
	} else if !force {
		return
	}
	if _, err := s.shims.Cleanup(ctx, ns, id, bundle); err != nil {
		s.log.Warn("shim cleanup", "ns", ns, "id", id, "error", err)
	}
}

// StartProcess starts the init or an exec.
func (s *Server) StartProcess(ctx context.Context, id, execID string) (uint32, error) {
	t, err := s.requireTask(ctx, id)
	if err != nil {
		return 0, err
	}
	p, err := t.proc(execID)
	if err != nil {
		return 0, err
	}
	resp, err := t.shim.Task().Start(ctx, &taskapi.StartRequest{ID: id, ExecID: execID})
	if err != nil {
		err = errgrpc.ToNative(err)
		if execID == "" {
			t.mu.Lock()
			t.record.Error = err.Error()
			t.mu.Unlock()
			t.persist()
		}
		return 0, fmt.Errorf("start %s: %w", procName(id, execID), err)
	}
	if p.io != nil {
		p.io.Started()
	}
	t.mu.Lock()
	p.pid = resp.Pid
	if execID == "" && t.record.Status == xdv1.Status_CREATED {
		t.record.Status = xdv1.Status_RUNNING
		t.record.Pid = resp.Pid
		t.record.StartedAt = timestamppb.Now()
	}
	t.mu.Unlock()
	if execID == "" {
		t.persist()
	}
	return resp.Pid, nil
}

func procName(id, execID string) string {
	if execID == "" {
		return fmt.Sprintf("container %q", id)
	}
	return fmt.Sprintf("exec %q of container %q", execID, id)
}

// WaitProcess waits for a process's exit. For a container whose task is
// gone it returns the recorded exit.
func (s *Server) WaitProcess(ctx context.Context, id, execID string) (*xdv1.ExitStatus, error) {
	ns := namespace(ctx)
	t := s.getTask(ns, id)
	if t == nil || t.shim == nil {
		if execID == "" {
			if rec, err := s.db.GetTask(ns, id); err == nil && rec.Status == xdv1.Status_STOPPED {
				return &xdv1.ExitStatus{ExitStatus: rec.ExitStatus, ExitedAt: rec.ExitedAt, Pid: rec.Pid}, nil
			}
		}
		_, err := s.requireTask(ctx, id)
		if err == nil {
			err = notFound("container %q has no task", id)
		}
		return nil, err
	}
	p, err := t.proc(execID)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.exited:
		t.mu.Lock()
		defer t.mu.Unlock()
		return p.exit, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Kill signals a process (or, with all, every process of the container).
func (s *Server) Kill(ctx context.Context, id, execID string, signal uint32, all bool) error {
	t, err := s.requireTask(ctx, id)
	if errors.Is(err, errdefs.ErrNotFound) && execID == "" {
		if _, cerr := s.db.GetContainer(namespace(ctx), id); cerr == nil {
			return errNotRunning(id)
		}
	}
	if err != nil {
		return err
	}
	p, err := t.proc(execID)
	if err != nil {
		return err
	}
	select {
	case <-p.exited:
		return errNotRunning(id)
	default:
	}
	if _, err := t.shim.Task().Kill(ctx, &taskapi.KillRequest{ID: id, ExecID: execID, Signal: signal, All: all}); err != nil {
		err = errgrpc.ToNative(err)
		if errors.Is(err, errdefs.ErrNotFound) {
			return errNotRunning(id)
		}
		return fmt.Errorf("kill %s: %w", procName(id, execID), err)
	}
	return nil
}

// Stop sends SIGTERM, waits up to timeout, then SIGKILL.
func (s *Server) Stop(ctx context.Context, id string, timeout time.Duration) (*xdv1.ExitStatus, error) {
	t, err := s.requireTask(ctx, id)
	if err != nil {
		if st, werr := s.WaitProcess(ctx, id, ""); werr == nil {
			return st, nil
		}
		return nil, err
	}
	p, err := t.proc("")
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = s.cfg.StopTimeout.Duration
	}
	if err := s.Kill(ctx, id, "", uint32(syscall.SIGTERM), false); err != nil && !errors.Is(err, errdefs.ErrFailedPrecondition) {
		return nil, err
	}
	select {
	case <-p.exited:
	case <-time.After(timeout):
		if err := s.Kill(ctx, id, "", uint32(syscall.SIGKILL), true); err != nil && !errors.Is(err, errdefs.ErrFailedPrecondition) {
			return nil, err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.WaitProcess(ctx, id, "")
}

// DeleteProcess removes an exited exec, or the task with its shim and bundle.
func (s *Server) DeleteProcess(ctx context.Context, id, execID string, force bool) (*xdv1.ExitStatus, error) {
	t, err := s.requireTask(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := t.proc(execID)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.exited:
	default:
		if !force {
			return nil, fmt.Errorf("%s is running; stop it first or force: %w", procName(id, execID), errdefs.ErrFailedPrecondition)
		}
		if err := s.Kill(ctx, id, execID, uint32(syscall.SIGKILL), execID == ""); err != nil && !errors.Is(err, errdefs.ErrFailedPrecondition) {
			return nil, err
		}
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("%s did not exit after SIGKILL: %w", procName(id, execID), errdefs.ErrUnavailable)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if execID != "" {
		if _, err := t.shim.Task().Delete(ctx, &taskapi.DeleteRequest{ID: id, ExecID: execID}); err != nil {
			if err = errgrpc.ToNative(err); !errors.Is(err, errdefs.ErrNotFound) {
				return nil, fmt.Errorf("delete %s: %w", procName(id, execID), err)
			}
		}
		t.mu.Lock()
		delete(t.procs, execID)
		t.mu.Unlock()
		if err := s.db.DeleteExec(t.ns, id, execID); err != nil {
			t.log.Error("forget exec", "exec", execID, "error", err)
		}
		if p.io != nil {
			drainOrClose(p.io)
			p.io.Remove()
		}
		return p.exit, nil
	}
	if _, err := t.shim.Task().Delete(ctx, &taskapi.DeleteRequest{ID: id}); err != nil {
		err = errgrpc.ToNative(err)
		if !errors.Is(err, errdefs.ErrNotFound) {
			return nil, fmt.Errorf("delete task %q: %w", id, err)
		}
	}
	s.publish(t.ns, events.TopicTaskDelete, id, func(ev *xdv1.Event) { ev.Pid, ev.ExitStatus, ev.ExitedAt = p.pid, p.exit.ExitStatus, p.exit.ExitedAt })
	t.goneOnce.Do(func() { close(t.gone) })
	s.teardownShim(t.ns, id, t.bundle, t.shim, false)
	s.forgetTask(t, true)
	return p.exit, nil
}

// Exec adds a process to a running container.
func (s *Server) Exec(ctx context.Context, req *xdv1.ExecRequest) (err error) {
	if err := metadata.ValidateName("exec id", req.ExecId); err != nil {
		return err
	}
	t, err := s.requireTask(ctx, req.ContainerId)
	if err != nil {
		return err
	}
	c, err := s.db.GetContainer(t.ns, t.id)
	if err != nil {
		return err
	}
	var spec specs.Spec
	if err := json.Unmarshal(c.Spec, &spec); err != nil {
		return fmt.Errorf("container %q spec: %w", t.id, err)
	}
	proc, err := specgen.ExecProcess(&spec, filepath.Join(t.bundle, "rootfs"), req)
	if err != nil {
		return fmt.Errorf("exec %q: %w: %w", req.ExecId, err, errdefs.ErrInvalidArgument)
	}
	t.mu.Lock()
	if _, dup := t.procs[req.ExecId]; dup {
		t.mu.Unlock()
		return fmt.Errorf("exec %q already exists in container %q: %w", req.ExecId, t.id, errdefs.ErrAlreadyExists)
	}
	p := &process{execID: req.ExecId, tty: req.Tty, stdin: req.Stdin, exited: make(chan struct{})}
	t.procs[req.ExecId] = p
	t.mu.Unlock()
	defer func() {
		if err != nil {
			t.mu.Lock()
			delete(t.procs, req.ExecId)
			t.mu.Unlock()
			if derr := s.db.DeleteExec(t.ns, t.id, req.ExecId); derr != nil {
				t.log.Error("forget exec", "exec", req.ExecId, "error", derr)
			}
			if p.io != nil {
				p.io.Close()
				p.io.Remove()
			}
		}
	}()
	// Recorded before the shim has it: a restarted xd then finds every
	// exec a shim may hold (and drops the records of those it does not).
	t.persistExec(p)
	if p.io, err = taskio.Create(taskio.Config{Dir: filepath.Join(t.bundle, "io"), Name: "exec-" + req.ExecId, Stdin: req.Stdin, Terminal: req.Tty}); err != nil {
		return err
	}
	procJSON, err := json.Marshal(proc)
	if err != nil {
		return err
	}
	// The type URL containerd gives a runtime-spec Process: what shims
	// (containerd-shim-runc-v2 with typeurl) decode it by.
	anySpec := &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/" + strconv.Itoa(specs.VersionMajor) + "/Process", Value: procJSON}
	paths := p.io.Paths()
	if _, err := t.shim.Task().Exec(ctx, &taskapi.ExecProcessRequest{
		ID: t.id, ExecID: req.ExecId, Terminal: req.Tty,
		Stdin: paths.Stdin, Stdout: paths.Stdout, Stderr: paths.Stderr, Spec: anySpec,
	}); err != nil {
		return fmt.Errorf("exec %q: %w", req.ExecId, errgrpc.ToNative(err))
	}
	go t.watch(p)
	return nil
}

// listTasks returns the namespace's tasks: live ones from memory, the rest
// from their records.
func (s *Server) listTasks(ctx context.Context) ([]*xdv1.Task, error) {
	ns := namespace(ctx)
	recs, err := s.db.ListTasks(ns)
	if err != nil {
		return nil, err
	}
	for i, rec := range recs {
		if t, recovering := s.peekTask(ns, rec.ContainerId); t != nil {
			recs[i] = t.snapshotRecord()
		} else if recovering != nil {
			recs[i] = recovering
		}
	}
	return recs, nil
}

func (s *Server) getTaskRecord(ctx context.Context, id string) (*xdv1.Task, error) {
	ns := namespace(ctx)
	if t, recovering := s.peekTask(ns, id); t != nil {
		return t.snapshotRecord(), nil
	} else if recovering != nil {
		return recovering, nil
	}
	rec, err := s.db.GetTask(ns, id)
	if err != nil {
		if _, cerr := s.db.GetContainer(ns, id); cerr != nil {
			return nil, cerr
		}
		return nil, notFound("container %q has no task", id)
	}
	return rec, nil
}

func (s *Server) setPaused(ctx context.Context, id string, pause bool) error {
	t, err := s.requireTask(ctx, id)
	if err != nil {
		return err
	}
	if pause {
		_, err = t.shim.Task().Pause(ctx, &taskapi.PauseRequest{ID: id})
	} else {
		_, err = t.shim.Task().Resume(ctx, &taskapi.ResumeRequest{ID: id})
	}
	if err != nil {
		return errgrpc.ToNative(err)
	}
	t.mu.Lock()
	if pause {
		t.record.Status = xdv1.Status_PAUSED
	} else if t.record.Status == xdv1.Status_PAUSED {
		t.record.Status = xdv1.Status_RUNNING
	}
	t.mu.Unlock()
	t.persist()
	return nil
}

func (s *Server) metrics(ctx context.Context, id string) (*xdv1.MetricsResponse, error) {
	t, err := s.requireTask(ctx, id)
	if err != nil {
		return nil, err
	}
	resp, err := t.shim.Task().Stats(ctx, &taskapi.StatsRequest{ID: id})
	if err != nil {
		return nil, errgrpc.ToNative(err)
	}
	out := &xdv1.MetricsResponse{TypeUrl: resp.Stats.GetTypeUrl()}
	v, err := typeurl.UnmarshalAny(resp.Stats)
	if err != nil {
		return nil, fmt.Errorf("decode metrics %s: %w", resp.Stats.GetTypeUrl(), err)
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("metrics %s are not a protobuf message", resp.Stats.GetTypeUrl())
	}
	if out.Json, err = protojson.Marshal(m); err != nil {
		return nil, err
	}
	return out, nil
}
