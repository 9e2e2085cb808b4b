package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	eventsapi "github.com/containerd/containerd/api/events"
	ttrpcevents "github.com/containerd/containerd/api/services/ttrpc/events/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// ForwardService implements containerd's events ttrpc service
// (containerd.services.events.ttrpc.v1.Events/Forward), the one shims call
// on $TTRPC_ADDRESS. Each envelope is decoded with FromEnvelope and handed
// to the callback with the envelope's original timestamp.
//
// An envelope without namespace, topic or event is refused
// (InvalidArgument). An event of a type xd does not know is accepted and
// dropped (logged at debug): refusing it would only make the shim retry it.
type ForwardService struct {
	handle func(ctx context.Context, ev *xdv1.Event)
	log    *slog.Logger
}

// NewForwardService returns a service that calls handle for every event a
// shim forwards. handle runs on the ttrpc request goroutine: the shim
// waits for it (and sends its next event only after), so it must be quick.
func NewForwardService(handle func(ctx context.Context, ev *xdv1.Event)) *ForwardService {
	return &ForwardService{handle: handle, log: slog.Default()}
}

// WithLogger sets the logger for dropped events and returns f.
func (f *ForwardService) WithLogger(l *slog.Logger) *ForwardService {
	f.log = l
	return f
}

// Register registers the Events service on srv.
func (f *ForwardService) Register(srv *ttrpc.Server) {
	ttrpcevents.RegisterTTRPCEventsService(srv, f)
}

// Forward implements ttrpcevents.TTRPCEventsService.
func (f *ForwardService) Forward(ctx context.Context, req *ttrpcevents.ForwardRequest) (*emptypb.Empty, error) {
	env := req.GetEnvelope()
	switch {
	case env == nil:
		return nil, errgrpc.ToGRPC(fmt.Errorf("forward: no envelope: %w", errdefs.ErrInvalidArgument))
	case env.GetNamespace() == "":
		return nil, errgrpc.ToGRPC(fmt.Errorf("forward %s: no namespace: %w", env.GetTopic(), errdefs.ErrInvalidArgument))
	case env.GetTopic() == "":
		return nil, errgrpc.ToGRPC(fmt.Errorf("forward: no topic: %w", errdefs.ErrInvalidArgument))
	case env.GetEvent() == nil:
		return nil, errgrpc.ToGRPC(fmt.Errorf("forward %s: no event: %w", env.GetTopic(), errdefs.ErrInvalidArgument))
	}
	ev, err := FromEnvelope(env.GetNamespace(), env.GetTopic(), env.GetEvent())
	if errdefs.IsNotImplemented(err) {
		f.log.Debug("forwarded event dropped", "ns", env.GetNamespace(), "topic", env.GetTopic(), "error", err)
		return &emptypb.Empty{}, nil
	}
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if ts := env.GetTimestamp(); ts != nil {
		ev.Timestamp = ts
	} else {
		ev.Timestamp = timestamppb.Now()
	}
	if f.handle != nil {
		f.handle(ctx, ev)
	}
	return &emptypb.Empty{}, nil
}

// FromEnvelope decodes a task event forwarded by a shim (containerd's
// events package: TaskCreate, TaskStart, TaskExit, TaskDelete,
// TaskExecAdded, TaskExecStarted, TaskPaused, TaskResumed, TaskOOM,
// TaskCheckpointed) into an xd Event for namespace ns and topic. The
// Timestamp is left nil (it is the envelope's, not the payload's).
//
// exec_id is set for exec events; a TaskExit or TaskDelete whose id is the
// container's is the init's, and gets no exec_id. An unknown or undecodable
// payload is an error (errdefs.ErrNotImplemented for a well-formed payload
// of a type xd does not handle, errdefs.ErrInvalidArgument otherwise).
func FromEnvelope(ns, topic string, payload typeurl.Any) (*xdv1.Event, error) {
	if payload == nil || isNilAny(payload) {
		return nil, fmt.Errorf("event %s: no payload: %w", topic, errdefs.ErrInvalidArgument)
	}
	v, err := typeurl.UnmarshalAny(payload)
	if err != nil {
		if errors.Is(err, typeurl.ErrNotFound) {
			return nil, fmt.Errorf("event %s: type %s: %w", topic, payload.GetTypeUrl(), errdefs.ErrNotImplemented)
		}
		return nil, fmt.Errorf("event %s: decode %s: %v: %w", topic, payload.GetTypeUrl(), err, errdefs.ErrInvalidArgument)
	}
	ev := &xdv1.Event{Namespace: ns, Topic: topic}
	switch e := v.(type) {
	case *eventsapi.TaskCreate:
		ev.ContainerId, ev.Pid = e.ContainerID, e.Pid
	case *eventsapi.TaskStart:
		ev.ContainerId, ev.Pid = e.ContainerID, e.Pid
	case *eventsapi.TaskExit:
		ev.ContainerId, ev.ExecId = e.ContainerID, execID(e.ContainerID, e.ID)
		ev.Pid, ev.ExitStatus, ev.ExitedAt = e.Pid, e.ExitStatus, e.ExitedAt
	case *eventsapi.TaskDelete:
		ev.ContainerId, ev.ExecId = e.ContainerID, execID(e.ContainerID, e.ID)
		ev.Pid, ev.ExitStatus, ev.ExitedAt = e.Pid, e.ExitStatus, e.ExitedAt
	case *eventsapi.TaskExecAdded:
		ev.ContainerId, ev.ExecId = e.ContainerID, e.ExecID
	case *eventsapi.TaskExecStarted:
		ev.ContainerId, ev.ExecId, ev.Pid = e.ContainerID, e.ExecID, e.Pid
	case *eventsapi.TaskPaused:
		ev.ContainerId = e.ContainerID
	case *eventsapi.TaskResumed:
		ev.ContainerId = e.ContainerID
	case *eventsapi.TaskOOM:
		ev.ContainerId = e.ContainerID
	case *eventsapi.TaskCheckpointed:
		ev.ContainerId = e.ContainerID
	default:
		return nil, fmt.Errorf("event %s: type %s: %w", topic, payload.GetTypeUrl(), errdefs.ErrNotImplemented)
	}
	return ev, nil
}

// execID is the exec id carried in a TaskExit or TaskDelete id field: the
// runc shim puts the container id there for the init.
func execID(containerID, id string) string {
	if id == containerID {
		return ""
	}
	return id
}

// isNilAny reports a typed nil *anypb.Any hiding in the interface.
func isNilAny(a typeurl.Any) bool {
	p, ok := a.(*anypb.Any)
	return ok && p == nil
}
