package daemon

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/xstack/xstack/pkg/events"
	"github.com/xstack/xstack/pkg/flowctl"
	"github.com/xstack/xstack/pkg/taskio"
	"github.com/xstack/xstack/pkg/version"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// The ttrpc services: thin adapters over Server.

var empty = &emptypb.Empty{}

type versionService struct{ s *Server }

func (v *versionService) Version(ctx context.Context, _ *emptypb.Empty) (*xdv1.VersionResponse, error) {
	return &xdv1.VersionResponse{Version: version.Version, Commit: version.Commit}, nil
}

func (v *versionService) Info(ctx context.Context, _ *emptypb.Empty) (*xdv1.InfoResponse, error) {
	s := v.s
	rts := map[string]string{}
	for name, rt := range s.runtimes {
		rts[name] = rt.Shim
	}
	return &xdv1.InfoResponse{
		Version: version.Version, Pid: uint32(os.Getpid()), Root: s.cfg.Root, State: s.cfg.State,
		Address: s.cfg.Address, Runtimes: rts, DefaultRuntime: s.cfg.DefaultRuntime,
		UptimeSeconds: int64(time.Since(s.started).Seconds()),
		Goroutines:    uint32(runtime.NumGoroutine()), OpenFds: openFds(),
	}, nil
}

// openFds counts this process's open file descriptors (0 if unknown).
func openFds() uint32 {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return uint32(len(entries) - 1) // less the one reading the directory
}

type tasksService struct{ s *Server }

func (a *tasksService) Create(ctx context.Context, r *xdv1.CreateTaskRequest) (*xdv1.Task, error) {
	return a.s.CreateTask(ctx, r.ContainerId)
}

func (a *tasksService) Start(ctx context.Context, r *xdv1.StartRequest) (*xdv1.StartResponse, error) {
	pid, err := a.s.StartProcess(ctx, r.ContainerId, r.ExecId)
	if err != nil {
		return nil, err
	}
	return &xdv1.StartResponse{Pid: pid}, nil
}

func (a *tasksService) Wait(ctx context.Context, r *xdv1.WaitRequest) (*xdv1.ExitStatus, error) {
	return a.s.WaitProcess(ctx, r.ContainerId, r.ExecId)
}

func (a *tasksService) Kill(ctx context.Context, r *xdv1.KillRequest) (*emptypb.Empty, error) {
	if r.Signal == 0 {
		return nil, fmt.Errorf("kill: no signal: %w", errdefs.ErrInvalidArgument)
	}
	if r.ExecId == "" && endsProcess(r.Signal) {
		a.s.stoppedByClient(ctx, r.ContainerId)
	}
	return empty, a.s.Kill(ctx, r.ContainerId, r.ExecId, r.Signal, r.All)
}

func (a *tasksService) Stop(ctx context.Context, r *xdv1.StopRequest) (*xdv1.ExitStatus, error) {
	a.s.stoppedByClient(ctx, r.ContainerId)
	return a.s.Stop(ctx, r.ContainerId, time.Duration(r.TimeoutSeconds)*time.Second)
}

func (a *tasksService) Delete(ctx context.Context, r *xdv1.DeleteTaskRequest) (*xdv1.ExitStatus, error) {
	if r.ExecId == "" {
		// The client takes it from here (xctl start deletes, then creates).
		a.s.cancelRestart(namespace(ctx), r.ContainerId)
	}
	return a.s.DeleteProcess(ctx, r.ContainerId, r.ExecId, r.Force)
}

func (a *tasksService) Exec(ctx context.Context, r *xdv1.ExecRequest) (*emptypb.Empty, error) {
	return empty, a.s.Exec(ctx, r)
}

func (a *tasksService) Pause(ctx context.Context, r *xdv1.ContainerRequest) (*emptypb.Empty, error) {
	return empty, a.s.setPaused(ctx, r.ContainerId, true)
}

func (a *tasksService) Resume(ctx context.Context, r *xdv1.ContainerRequest) (*emptypb.Empty, error) {
	return empty, a.s.setPaused(ctx, r.ContainerId, false)
}

func (a *tasksService) Pids(ctx context.Context, r *xdv1.ContainerRequest) (*xdv1.PidsResponse, error) {
	return a.s.pids(ctx, r.ContainerId)
}

func (a *tasksService) Metrics(ctx context.Context, r *xdv1.ContainerRequest) (*xdv1.MetricsResponse, error) {
	return a.s.metrics(ctx, r.ContainerId)
}

func (a *tasksService) ResizePty(ctx context.Context, r *xdv1.ResizePtyRequest) (*emptypb.Empty, error) {
	return empty, a.s.resizePty(ctx, r)
}

func (a *tasksService) CloseIO(ctx context.Context, r *xdv1.CloseIORequest) (*emptypb.Empty, error) {
	return empty, a.s.closeIO(ctx, r.ContainerId, r.ExecId)
}

func (a *tasksService) Get(ctx context.Context, r *xdv1.ContainerRequest) (*xdv1.Task, error) {
	return a.s.getTaskRecord(ctx, r.ContainerId)
}

func (a *tasksService) List(ctx context.Context, _ *xdv1.ListTasksRequest) (*xdv1.ListTasksResponse, error) {
	tasks, err := a.s.listTasks(ctx)
	if err != nil {
		return nil, err
	}
	return &xdv1.ListTasksResponse{Tasks: tasks}, nil
}

func (a *tasksService) Attach(ctx context.Context, stream xdv1.Tasks_AttachServer) error {
	return errgrpc.ToGRPC(a.s.attach(ctx, stream))
}

func (a *tasksService) Logs(ctx context.Context, stream xdv1.Tasks_LogsServer) error {
	r, err := stream.Recv()
	if err != nil {
		return errgrpc.ToGRPC(fmt.Errorf("logs: no request: %w", errdefs.ErrInvalidArgument))
	}
	if ctx, err = streamNamespace(ctx, r.Namespace); err != nil {
		return err
	}
	return errgrpc.ToGRPC(a.s.logs(ctx, r, stream))
}

func (s *Server) logs(ctx context.Context, r *xdv1.LogsRequest, stream xdv1.Tasks_LogsServer) error {
	ns := namespace(ctx)
	if _, err := s.db.GetContainer(ns, r.ContainerId); err != nil {
		return err
	}
	// ended is closed when no more output can come: at once for a
	// stopped container or without follow.
	ended := make(chan struct{})
	live := false
	if t := s.getTask(ns, r.ContainerId); r.Follow && t != nil && t.shim != nil {
		if p, err := t.proc(""); err == nil && p.io != nil {
			live = true
			go func() {
				select {
				case <-p.io.Done():
				case <-t.gone:
				case <-ctx.Done():
				}
				close(ended)
			}()
		}
	}
	if !live {
		close(ended)
	}
	opts := taskio.ReadOptions{Follow: r.Follow, Tail: taskio.EveryLine}
	if r.Tail != nil {
		opts.Tail = int(*r.Tail)
	}
	if r.Since != nil {
		opts.Since = r.Since.AsTime()
	}
	var flow *flowctl.Sender
	if r.FlowControl {
		flow = flowctl.NewSender()
		if err := stream.Send(&xdv1.LogEntry{FlowControl: true}); err != nil {
			return err
		}
		go func() {
			for {
				ack, err := stream.Recv()
				if err != nil {
					flow.ReceiverGone()
					return
				}
				flow.Acked(ack.Consumed)
			}
		}()
	}
	return taskio.ReadLog(ctx, s.logPath(ns, r.ContainerId), opts, ended, func(e taskio.Entry) error {
		if flow != nil {
			if err := flow.Wait(ctx); err != nil {
				return err
			}
		}
		return stream.Send(&xdv1.LogEntry{Stream: e.Stream, Data: e.Data, Time: timestamppb.New(e.Time)})
	})
}

type eventsService struct{ s *Server }

func (e *eventsService) Subscribe(ctx context.Context, r *xdv1.SubscribeRequest, stream xdv1.Events_SubscribeServer) error {
	// Events of every namespace unless the request names one: the call's
	// namespace header does not filter.
	ch := e.s.exchange.Subscribe(ctx, events.TopicFilter(r.Namespace, r.Topics...))
	for ev := range ch {
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	return ctx.Err()
}
