package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/runc/options"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/xstack/xstack/pkg/ocicli"
	"github.com/xstack/xstack/pkg/shim/metrics"
	"github.com/xstack/xstack/pkg/shim/oom"
	"github.com/xstack/xstack/pkg/shim/reaper"
	"github.com/xstack/xstack/pkg/version"
)

// namespaceKey is the ttrpc metadata key containerd puts the namespace in.
const namespaceKey = "containerd-namespace-ttrpc"

// Service implements containerd's task v2 API for the containers of one
// shim.
type Service struct {
	log       *slog.Logger
	reaper    *reaper.Reaper
	events    *publisher
	namespace string // when a request carries none
	shutdown  func()

	exitMu  sync.Mutex
	running map[int]*process
	starts  map[*startWatch]struct{}

	mu         sync.Mutex
	containers map[string]*container
}

var _ taskapi.TTRPCTaskService = (*Service)(nil)

// Config is what a Service needs from its process.
type Config struct {
	// Namespace applies to requests without containerd's namespace
	// metadata.
	Namespace string
	// EventsAddress is the daemon's ttrpc Events socket ($TTRPC_ADDRESS);
	// empty publishes nothing.
	EventsAddress string
	Log           *slog.Logger
	Reaper        *reaper.Reaper
	// Shutdown ends the server; called once the last container is gone
	// and the client asked to shut down.
	Shutdown func()
}

// NewService starts routing the reaper's exits to containers.
func NewService(cfg Config) *Service {
	s := &Service{
		log:        cfg.Log,
		reaper:     cfg.Reaper,
		events:     newPublisher(cfg.EventsAddress, cfg.Log),
		namespace:  cfg.Namespace,
		shutdown:   cfg.Shutdown,
		running:    map[int]*process{},
		starts:     map[*startWatch]struct{}{},
		containers: map[string]*container{},
	}
	go s.processExits(cfg.Reaper.Subscribe())
	return s
}

// Close waits briefly for queued events to go out.
func (s *Service) Close() { s.events.close(2 * time.Second) }

// requestNamespace is the namespace of a request.
func (s *Service) requestNamespace(ctx context.Context) (string, error) {
	if md, ok := ttrpc.GetMetadata(ctx); ok {
		if v, ok := md.Get(namespaceKey); ok && len(v) > 0 && v[0] != "" {
			return v[0], nil
		}
	}
	if s.namespace != "" {
		return s.namespace, nil
	}
	return "", classf(errdefs.ErrFailedPrecondition, "namespace is required")
}

func (s *Service) container(id string) (*container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[id]
	if !ok || c == nil { // nil: still being created
		return nil, classf(errdefs.ErrNotFound, "container %s does not exist", id)
	}
	return c, nil
}

func (s *Service) lookup(id, execID string) (*container, *process, error) {
	c, err := s.container(id)
	if err != nil {
		return nil, nil, err
	}
	p, err := c.process(execID)
	if err != nil {
		return nil, nil, err
	}
	return c, p, nil
}

// State reports a process's live status.
func (s *Service) State(ctx context.Context, r *taskapi.StateRequest) (*taskapi.StateResponse, error) {
	c, p, err := s.lookup(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	pid, state, status, exitedAt := p.snapshot()
	c.mu.Lock()
	if state != taskStopped && state != taskCreated {
		switch {
		case c.pausing:
			state = tasktypes.Status_PAUSING
		case c.paused:
			state = taskPaused
		}
	}
	c.mu.Unlock()
	resp := &taskapi.StateResponse{
		ID:         r.ID,
		ExecID:     r.ExecID,
		Bundle:     c.bundle,
		Pid:        uint32(pid),
		Status:     state,
		Stdin:      p.stdio.Stdin,
		Stdout:     p.stdio.Stdout,
		Stderr:     p.stdio.Stderr,
		Terminal:   p.stdio.Terminal,
		ExitStatus: uint32(status),
	}
	if !exitedAt.IsZero() {
		resp.ExitedAt = timestamppb.New(exitedAt)
	}
	return resp, nil
}

// Create makes a container whose init waits for Start.
func (s *Service) Create(ctx context.Context, r *taskapi.CreateTaskRequest) (*taskapi.CreateTaskResponse, error) {
	ns, err := s.requestNamespace(ctx)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	s.mu.Lock()
	if _, ok := s.containers[r.ID]; ok {
		s.mu.Unlock()
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrAlreadyExists, "container %s already exists", r.ID))
	}
	// Reserve the id while creating.
	s.containers[r.ID] = nil
	s.mu.Unlock()
	c, err := s.create(ctx, ns, r)
	s.mu.Lock()
	if err != nil {
		delete(s.containers, r.ID)
		s.mu.Unlock()
		return nil, errgrpc.ToGRPC(err)
	}
	s.containers[r.ID] = c
	s.mu.Unlock()
	pid, _, _, _ := c.init.snapshot()
	s.events.Publish(ns, TopicCreate, &eventstypes.TaskCreate{
		ContainerID: r.ID,
		Bundle:      r.Bundle,
		Rootfs:      r.Rootfs,
		IO:          &eventstypes.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
		Checkpoint:  r.Checkpoint,
		Pid:         uint32(pid),
	})
	s.finishStart(c.init)
	return &taskapi.CreateTaskResponse{Pid: uint32(pid)}, nil
}

// Start starts the init (`runtime start`) or an exec (`runtime exec`).
func (s *Service) Start(ctx context.Context, r *taskapi.StartRequest) (*taskapi.StartResponse, error) {
	c, p, err := s.lookup(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if p.isInit() {
		err = s.startInit(ctx, c)
	} else {
		err = s.startExec(ctx, c, p)
	}
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	pid, _, _, _ := p.snapshot()
	return &taskapi.StartResponse{Pid: uint32(pid)}, nil
}

func (s *Service) startInit(ctx context.Context, c *container) error {
	p := c.init
	p.mu.Lock()
	if p.state != taskCreated || p.starting {
		state := p.state
		p.mu.Unlock()
		return classf(errdefs.ErrFailedPrecondition, "cannot start container %s: it is %s", c.id, stateName(state))
	}
	// Hold back an exit until the start event is out.
	p.starting = true
	p.mu.Unlock()
	if err := c.runtime.Start(ctx, c.id); err != nil {
		s.finishStart(p)
		return runtimeError("start", err)
	}
	p.mu.Lock()
	if p.state == taskCreated {
		p.state = taskRunning
	}
	pid := p.pid
	p.mu.Unlock()
	if c.cgroup != nil {
		stop, err := oom.Watch(c.cgroup, func() {
			s.events.Publish(c.namespace, TopicOOM, &eventstypes.TaskOOM{ContainerID: c.id})
		})
		if err != nil {
			s.log.Warn("no OOM events for the container", "id", c.id, "err", err)
		} else {
			c.stopOOM = stop
		}
	}
	s.events.Publish(c.namespace, TopicStart, &eventstypes.TaskStart{ContainerID: c.id, Pid: uint32(pid)})
	s.finishStart(p)
	return nil
}

func (s *Service) startExec(ctx context.Context, c *container, p *process) (err error) {
	p.mu.Lock()
	if p.state != taskCreated || p.starting || p.pid != 0 {
		state := p.state
		p.mu.Unlock()
		return classf(errdefs.ErrFailedPrecondition, "cannot start exec %s: it is %s", p.id, stateName(state))
	}
	p.starting = true // until started() takes over
	p.mu.Unlock()
	// Counted before the runtime runs it: an init exit from now on waits
	// for this exec's exit (or for its failure to start).
	counted := s.countExec(c)
	running := false
	defer func() {
		if err != nil {
			p.mu.Lock()
			p.starting = false
			p.mu.Unlock()
			if counted && !running {
				s.execEnded(c)
			}
		}
	}()
	if !counted {
		return classf(errdefs.ErrFailedPrecondition, "cannot start exec %s: container %s has stopped", p.id, c.id)
	}

	if p.io, err = openIO(p.stdio, c.namespace, c.id, s.reaper); err != nil {
		return classf(errdefs.ErrInvalidArgument, "stdio of exec %s: %w", p.id, err)
	}
	var console *consoleSocket
	if p.stdio.Terminal {
		if console, err = newConsoleSocket(); err != nil {
			return err
		}
		defer console.close()
	}
	opts := ocicli.ExecOpts{
		PidFile: filepath.Join(c.bundle, p.id+".pid"),
		IO:      p.io.container,
		Detach:  true,
	}
	if console != nil {
		opts.ConsoleSocket = console.path
	}
	w := s.watchStart()
	if err := c.runtime.Exec(ctx, c.id, p.spec, opts); err != nil {
		s.cancelStart(w)
		p.io.close()
		return runtimeError("exec", err)
	}
	p.io.containerFilesHandedOver()
	pid, err := readPidFile(opts.PidFile)
	if err != nil {
		s.cancelStart(w)
		p.io.close()
		return fmt.Errorf("runtime exec: %w", err)
	}
	s.started(w, p, pid)
	running = true // its exit, wherever it comes from, uncounts it
	if console != nil {
		master, err := console.receive()
		if err == nil {
			err = p.io.attachConsole(master, p.stdio)
		}
		if err != nil {
			// The process runs; without its terminal it is of no use.
			_ = unix.Kill(pid, unix.SIGKILL)
			s.finishStart(p)
			return err
		}
	}
	s.events.Publish(c.namespace, TopicExecStarted, &eventstypes.TaskExecStarted{ContainerID: c.id, ExecID: p.id, Pid: uint32(pid)})
	s.finishStart(p)
	return nil
}

// Delete removes a stopped (or never started) process; for the init, the
// whole container.
func (s *Service) Delete(ctx context.Context, r *taskapi.DeleteRequest) (*taskapi.DeleteResponse, error) {
	c, p, err := s.lookup(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	p.mu.Lock()
	if p.deleted {
		p.mu.Unlock()
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrNotFound, "process %s of container %s is being deleted", p.id, c.id))
	}
	if p.state == taskRunning || p.starting {
		p.mu.Unlock()
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrFailedPrecondition, "cannot delete a running process"))
	}
	p.deleted = true
	pid, status, exitedAt := p.pid, p.status, p.exitedAt
	p.mu.Unlock()

	if p.isInit() {
		if err := s.deleteContainer(ctx, c); err != nil {
			p.mu.Lock()
			p.deleted = false
			p.mu.Unlock()
			return nil, errgrpc.ToGRPC(err)
		}
		s.events.Publish(c.namespace, TopicDelete, &eventstypes.TaskDelete{
			ContainerID: c.id, Pid: uint32(pid), ExitStatus: uint32(status), ExitedAt: timestamppb.New(exitedAt),
		})
	} else {
		s.forget(p)
		p.closePidfd()
		if p.io != nil {
			p.io.close()
		}
		_ = os.Remove(filepath.Join(c.bundle, p.id+".pid"))
		c.mu.Lock()
		delete(c.execs, p.id)
		c.mu.Unlock()
	}
	return &taskapi.DeleteResponse{Pid: uint32(pid), ExitStatus: uint32(status), ExitedAt: timestamppb.New(exitedAt)}, nil
}

func (s *Service) deleteContainer(ctx context.Context, c *container) error {
	// A created container's init still waits: the runtime ends it.
	s.forget(c.init)
	if err := c.runtime.Delete(ctx, c.id, false); err != nil && !ocicli.IsNotFound(err) {
		return runtimeError("delete", err)
	}
	s.release(c, false)
	s.mu.Lock()
	delete(s.containers, c.id)
	s.mu.Unlock()
	return nil
}

// Pids lists the container's processes, naming the execs among them.
func (s *Service) Pids(ctx context.Context, r *taskapi.PidsRequest) (*taskapi.PidsResponse, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	pids, err := c.runtime.Ps(ctx, c.id)
	if err != nil {
		return nil, errgrpc.ToGRPC(runtimeError("ps", err))
	}
	execOf := map[int]string{}
	c.mu.Lock()
	for id, e := range c.execs {
		if pid, _, _, _ := e.snapshot(); pid > 0 {
			execOf[pid] = id
		}
	}
	c.mu.Unlock()
	resp := &taskapi.PidsResponse{}
	for _, pid := range pids {
		info := &tasktypes.ProcessInfo{Pid: uint32(pid)}
		if id, ok := execOf[pid]; ok {
			a, err := typeurl.MarshalAnyToProto(&options.ProcessDetails{ExecID: id})
			if err != nil {
				return nil, errgrpc.ToGRPC(err)
			}
			info.Info = a
		}
		resp.Processes = append(resp.Processes, info)
	}
	return resp, nil
}

// Pause freezes the container.
func (s *Service) Pause(ctx context.Context, r *taskapi.PauseRequest) (*emptypb.Empty, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	c.mu.Lock()
	c.pausing = true
	c.mu.Unlock()
	err = c.runtime.Pause(ctx, c.id)
	c.mu.Lock()
	c.pausing = false
	if err == nil {
		c.paused = true
	}
	c.mu.Unlock()
	if err != nil {
		return nil, errgrpc.ToGRPC(runtimeError("pause", err))
	}
	s.events.Publish(c.namespace, TopicPaused, &eventstypes.TaskPaused{ContainerID: c.id})
	return &emptypb.Empty{}, nil
}

// Resume thaws the container.
func (s *Service) Resume(ctx context.Context, r *taskapi.ResumeRequest) (*emptypb.Empty, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if err := c.runtime.Resume(ctx, c.id); err != nil {
		return nil, errgrpc.ToGRPC(runtimeError("resume", err))
	}
	c.mu.Lock()
	c.paused = false
	c.mu.Unlock()
	s.events.Publish(c.namespace, TopicResumed, &eventstypes.TaskResumed{ContainerID: c.id})
	return &emptypb.Empty{}, nil
}

// Checkpoint is not implemented yet.
func (s *Service) Checkpoint(ctx context.Context, r *taskapi.CheckpointTaskRequest) (*emptypb.Empty, error) {
	return nil, errgrpc.ToGRPC(classf(errdefs.ErrNotImplemented, "checkpoint is not implemented"))
}

// Kill signals the init (through the runtime, so --all reaches every
// process of the container) or an exec (directly).
func (s *Service) Kill(ctx context.Context, r *taskapi.KillRequest) (*emptypb.Empty, error) {
	c, p, err := s.lookup(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if p.isInit() {
		if err := c.runtime.Kill(ctx, c.id, int(r.Signal), r.All); err != nil {
			return nil, errgrpc.ToGRPC(runtimeError("kill", err))
		}
		return &emptypb.Empty{}, nil
	}
	if pid, _, _, _ := p.snapshot(); pid <= 0 {
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrFailedPrecondition, "exec %s is not started", p.id))
	}
	if err := p.signal(unix.Signal(r.Signal)); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, errgrpc.ToGRPC(classf(errdefs.ErrNotFound, "process already finished"))
		}
		return nil, errgrpc.ToGRPC(fmt.Errorf("signal exec %s: %w", p.id, err))
	}
	return &emptypb.Empty{}, nil
}

// Exec records a process to run in the container; Start runs it.
func (s *Service) Exec(ctx context.Context, r *taskapi.ExecProcessRequest) (*emptypb.Empty, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if r.ExecID == "" {
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrInvalidArgument, "exec id is required"))
	}
	if r.Spec == nil {
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrInvalidArgument, "exec %s: no process spec", r.ExecID))
	}
	var spec specs.Process
	if err := json.Unmarshal(r.Spec.Value, &spec); err != nil {
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrInvalidArgument, "exec %s: process spec: %w", r.ExecID, err))
	}
	if len(spec.Args) == 0 {
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrInvalidArgument, "exec %s: process spec has no args", r.ExecID))
	}
	spec.Terminal = r.Terminal
	c.mu.Lock()
	if _, ok := c.execs[r.ExecID]; ok {
		c.mu.Unlock()
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrAlreadyExists, "exec %s already exists in container %s", r.ExecID, c.id))
	}
	if c.initExited {
		c.mu.Unlock()
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrFailedPrecondition, "container %s has stopped", c.id))
	}
	p := newProcess(c, r.ExecID, stdioPaths{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal})
	p.spec = &spec
	c.execs[r.ExecID] = p
	c.mu.Unlock()
	s.events.Publish(c.namespace, TopicExecAdded, &eventstypes.TaskExecAdded{ContainerID: c.id, ExecID: r.ExecID})
	return &emptypb.Empty{}, nil
}

// ResizePty sets a process's terminal size.
func (s *Service) ResizePty(ctx context.Context, r *taskapi.ResizePtyRequest) (*emptypb.Empty, error) {
	_, p, err := s.lookup(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if p.io == nil {
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrFailedPrecondition, "process is not started"))
	}
	if err := p.io.resize(r.Width, r.Height); err != nil {
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrFailedPrecondition, "resize: %w", err))
	}
	return &emptypb.Empty{}, nil
}

// CloseIO closes a process's stdin.
func (s *Service) CloseIO(ctx context.Context, r *taskapi.CloseIORequest) (*emptypb.Empty, error) {
	_, p, err := s.lookup(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if r.Stdin && p.io != nil {
		p.io.closeStdin()
	}
	return &emptypb.Empty{}, nil
}

// Update changes the container's resources (`runtime update`).
func (s *Service) Update(ctx context.Context, r *taskapi.UpdateTaskRequest) (*emptypb.Empty, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if r.Resources == nil {
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrInvalidArgument, "update: no resources"))
	}
	var res specs.LinuxResources
	if err := json.Unmarshal(r.Resources.Value, &res); err != nil {
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrInvalidArgument, "update: resources: %w", err))
	}
	if err := c.runtime.Update(ctx, c.id, &res); err != nil {
		return nil, errgrpc.ToGRPC(runtimeError("update", err))
	}
	return &emptypb.Empty{}, nil
}

// Wait blocks until the process has exited.
func (s *Service) Wait(ctx context.Context, r *taskapi.WaitRequest) (*taskapi.WaitResponse, error) {
	_, p, err := s.lookup(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	select {
	case <-p.exited:
	case <-ctx.Done():
		return nil, errgrpc.ToGRPC(ctx.Err())
	}
	_, _, status, exitedAt := p.snapshot()
	return &taskapi.WaitResponse{ExitStatus: uint32(status), ExitedAt: timestamppb.New(exitedAt)}, nil
}

// Stats reports the container's cgroup metrics.
func (s *Service) Stats(ctx context.Context, r *taskapi.StatsRequest) (*taskapi.StatsResponse, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if c.cgroup == nil {
		return nil, errgrpc.ToGRPC(classf(errdefs.ErrNotFound, "container %s has no cgroup", c.id))
	}
	m, err := metrics.Metrics(c.cgroup)
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("stats of %s: %w", c.id, err))
	}
	a, err := typeurl.MarshalAnyToProto(m)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return &taskapi.StatsResponse{Stats: a}, nil
}

// Connect reports the shim's and the task's pids.
func (s *Service) Connect(ctx context.Context, r *taskapi.ConnectRequest) (*taskapi.ConnectResponse, error) {
	// The daemon is back: send what queued up while it was away.
	s.events.kick()
	resp := &taskapi.ConnectResponse{ShimPid: uint32(os.Getpid()), Version: version.Version}
	if c, err := s.container(r.ID); err == nil {
		pid, _, _, _ := c.init.snapshot()
		resp.TaskPid = uint32(pid)
	}
	return resp, nil
}

// Shutdown ends the shim once it serves no container.
func (s *Service) Shutdown(ctx context.Context, r *taskapi.ShutdownRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	n := len(s.containers)
	s.mu.Unlock()
	if n > 0 {
		return &emptypb.Empty{}, nil
	}
	if s.shutdown != nil {
		s.shutdown()
	}
	return &emptypb.Empty{}, nil
}

func stateName(s tasktypes.Status) string {
	switch s {
	case taskCreated:
		return "created"
	case taskRunning:
		return "running"
	case taskStopped:
		return "stopped"
	case taskPaused:
		return "paused"
	}
	return "unknown"
}
