package events

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	eventsapi "github.com/containerd/containerd/api/events"
	ttrpcevents "github.com/containerd/containerd/api/services/ttrpc/events/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// forwardServer serves a ForwardService on a temp unix socket and returns
// a real events client connected to it and the channel of handled events.
func forwardServer(t *testing.T) (ttrpcevents.TTRPCEventsService, <-chan *xdv1.Event) {
	t.Helper()
	dir, err := os.MkdirTemp("", "xst-events-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "d.sock.ttrpc")
	srv, err := ttrpc.NewServer(ttrpc.WithServerHandshaker(ttrpc.UnixSocketRequireSameUser()))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *xdv1.Event, 64)
	NewForwardService(func(ctx context.Context, ev *xdv1.Event) { got <- ev }).Register(srv)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(context.Background(), l)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	client := ttrpc.NewClient(conn)
	t.Cleanup(func() {
		client.Close()
		srv.Close()
	})
	return ttrpcevents.NewTTRPCEventsClient(client), got
}

func TestForwardService(t *testing.T) {
	exitedAt := timestamppb.New(time.Unix(1700000000, 42))
	tests := []struct {
		topic string
		event proto.Message
		want  *xdv1.Event // Namespace, Topic and Timestamp are checked apart
	}{
		{TopicTaskCreate, &eventsapi.TaskCreate{ContainerID: "c1", Bundle: "/b", Pid: 10},
			&xdv1.Event{ContainerId: "c1", Pid: 10}},
		{TopicTaskStart, &eventsapi.TaskStart{ContainerID: "c1", Pid: 10},
			&xdv1.Event{ContainerId: "c1", Pid: 10}},
		{TopicTaskExecAdded, &eventsapi.TaskExecAdded{ContainerID: "c1", ExecID: "e1"},
			&xdv1.Event{ContainerId: "c1", ExecId: "e1"}},
		{TopicTaskExecStarted, &eventsapi.TaskExecStarted{ContainerID: "c1", ExecID: "e1", Pid: 11},
			&xdv1.Event{ContainerId: "c1", ExecId: "e1", Pid: 11}},
		{TopicTaskExit, &eventsapi.TaskExit{ContainerID: "c1", ID: "e1", Pid: 11, ExitStatus: 5, ExitedAt: exitedAt},
			&xdv1.Event{ContainerId: "c1", ExecId: "e1", Pid: 11, ExitStatus: 5, ExitedAt: exitedAt}},
		{TopicTaskExit, &eventsapi.TaskExit{ContainerID: "c1", ID: "c1", Pid: 10, ExitStatus: 137, ExitedAt: exitedAt},
			&xdv1.Event{ContainerId: "c1", Pid: 10, ExitStatus: 137, ExitedAt: exitedAt}},
		{TopicTaskPaused, &eventsapi.TaskPaused{ContainerID: "c1"}, &xdv1.Event{ContainerId: "c1"}},
		{TopicTaskResumed, &eventsapi.TaskResumed{ContainerID: "c1"}, &xdv1.Event{ContainerId: "c1"}},
		{TopicTaskOOM, &eventsapi.TaskOOM{ContainerID: "c1"}, &xdv1.Event{ContainerId: "c1"}},
		{TopicTaskCheckpointed, &eventsapi.TaskCheckpointed{ContainerID: "c1", Checkpoint: "x"}, &xdv1.Event{ContainerId: "c1"}},
		{TopicTaskDelete, &eventsapi.TaskDelete{ContainerID: "c1", Pid: 10, ExitStatus: 3, ExitedAt: exitedAt},
			&xdv1.Event{ContainerId: "c1", Pid: 10, ExitStatus: 3, ExitedAt: exitedAt}},
	}
	client, got := forwardServer(t)
	for _, tc := range tests {
		t.Run(tc.topic[len("/tasks/"):], func(t *testing.T) {
			a, err := typeurl.MarshalAnyToProto(tc.event)
			if err != nil {
				t.Fatal(err)
			}
			ts := timestamppb.New(time.Now().Add(-time.Hour)) // the original time must survive
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = client.Forward(ctx, &ttrpcevents.ForwardRequest{Envelope: &types.Envelope{
				Timestamp: ts, Namespace: "ns1", Topic: tc.topic, Event: a,
			}})
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			var ev *xdv1.Event
			select {
			case ev = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("event not handled")
			}
			want := proto.Clone(tc.want).(*xdv1.Event)
			want.Namespace, want.Topic, want.Timestamp = "ns1", tc.topic, ts
			if !proto.Equal(ev, want) {
				t.Errorf("got  %v\nwant %v", ev, want)
			}
		})
	}
}

func TestForwardServiceRefuses(t *testing.T) {
	exit, err := typeurl.MarshalAnyToProto(&eventsapi.TaskExit{ContainerID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  *types.Envelope
	}{
		{"no envelope", nil},
		{"no namespace", &types.Envelope{Topic: TopicTaskExit, Event: exit}},
		{"no topic", &types.Envelope{Namespace: "ns", Event: exit}},
		{"no event", &types.Envelope{Namespace: "ns", Topic: TopicTaskExit}},
		{"garbage", &types.Envelope{Namespace: "ns", Topic: TopicTaskExit,
			Event: &anypb.Any{TypeUrl: exit.TypeUrl, Value: []byte{0xff, 0xff, 0xff}}}},
	}
	client, got := forwardServer(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := client.Forward(ctx, &ttrpcevents.ForwardRequest{Envelope: tc.env})
			if !errdefs.IsInvalidArgument(errgrpc.ToNative(err)) {
				t.Errorf("Forward: %v, want InvalidArgument", err)
			}
		})
	}
	// An unknown type is accepted (the shim must not retry it) and dropped.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = client.Forward(ctx, &ttrpcevents.ForwardRequest{Envelope: &types.Envelope{
		Namespace: "ns", Topic: "/x/unknown", Event: &anypb.Any{TypeUrl: "xstack.test.Unknown", Value: []byte{}},
	}})
	if err != nil {
		t.Errorf("Forward of an unknown type: %v", err)
	}
	select {
	case ev := <-got:
		t.Errorf("refused or unknown event was handled: %v", ev)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestFromEnvelope(t *testing.T) {
	tests := []struct {
		name    string
		payload typeurl.Any
		check   func(error) bool
	}{
		{"nil", nil, errdefs.IsInvalidArgument},
		{"typed nil", (*anypb.Any)(nil), errdefs.IsInvalidArgument},
		{"unknown type", &anypb.Any{TypeUrl: "xstack.test.Unknown"}, errdefs.IsNotImplemented},
		{"known non-task type", mustAny(t, &eventsapi.ContainerCreate{ID: "c"}), errdefs.IsNotImplemented},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromEnvelope("ns", "/t", tc.payload)
			if !tc.check(err) {
				t.Errorf("FromEnvelope: %v", err)
			}
		})
	}
	ev, err := FromEnvelope("ns", TopicTaskStart, mustAny(t, &eventsapi.TaskStart{ContainerID: "c", Pid: 3}))
	if err != nil || ev.ContainerId != "c" || ev.Pid != 3 || ev.Namespace != "ns" || ev.Topic != TopicTaskStart || ev.Timestamp != nil {
		t.Errorf("FromEnvelope(TaskStart) = %v, %v", ev, err)
	}
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
