package xctl

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// peer is a test peer of xd's protocol: a real ttrpc server with small
// implementations of the services the tested commands call. Methods it
// does not implement are not called by these tests (the embedded nil
// interfaces would panic).
type peer struct {
	mu    sync.Mutex
	calls []string // "Method ns=NS", in the order the handlers ran
	subNS string   // SubscribeRequest.namespace

	started chan struct{}
}

func (p *peer) record(ctx context.Context, method string) {
	ns, _ := ttrpc.GetMetadataValue(ctx, xdv1.NamespaceHeader)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, method+" ns="+ns)
}

// recordStream records a streaming call: streams carry no metadata, the
// request names its namespace.
func (p *peer) recordStream(method, ns string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, method+" ns="+ns)
}

func (p *peer) recorded() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

func (p *peer) Version(ctx context.Context, _ *emptypb.Empty) (*xdv1.VersionResponse, error) {
	p.record(ctx, "Version")
	return &xdv1.VersionResponse{Version: "1.2.3", Commit: "cafe"}, nil
}

func (p *peer) Info(ctx context.Context, _ *emptypb.Empty) (*xdv1.InfoResponse, error) {
	p.record(ctx, "Info")
	return &xdv1.InfoResponse{Version: "1.2.3"}, nil
}

var t0 = time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)

func (p *peer) Subscribe(ctx context.Context, req *xdv1.SubscribeRequest, s xdv1.Events_SubscribeServer) error {
	p.recordStream("Subscribe", req.Namespace)
	p.mu.Lock()
	p.subNS = req.Namespace
	p.mu.Unlock()
	evs := []*xdv1.Event{
		{Timestamp: timestamppb.New(t0), Namespace: "prod", Topic: "/tasks/start", ContainerId: "web", Pid: 42},
		{Timestamp: timestamppb.New(t0), Namespace: "prod", Topic: "/tasks/exit", ContainerId: "web", Pid: 42, ExitStatus: 0},
		{Timestamp: timestamppb.New(t0), Namespace: "prod", Topic: "/images/create", Image: "busybox:latest"},
	}
	for _, ev := range evs {
		if err := s.Send(ev); err != nil {
			return err
		}
	}
	return nil
}

func (p ctrPeer) Get(ctx context.Context, req *xdv1.GetContainerRequest) (*xdv1.Container, error) {
	p.record(ctx, "Containers.Get")
	return nil, status.Errorf(codes.NotFound, "container %q not found: not found", req.Id)
}

func (p ctrPeer) Create(ctx context.Context, req *xdv1.CreateContainerRequest) (*xdv1.Container, error) {
	p.record(ctx, "Containers.Create")
	if req.Image == "missing" {
		return nil, status.Errorf(codes.NotFound, "image %q not found: not found", req.Image)
	}
	return &xdv1.Container{Id: "web", Image: req.Image, Options: req.Options}, nil
}

func (p ctrPeer) Delete(ctx context.Context, req *xdv1.DeleteContainerRequest) (*emptypb.Empty, error) {
	p.record(ctx, "Containers.Delete")
	return &emptypb.Empty{}, nil
}

// ctrPeer serves Containers: Get finds nothing, Create fails for the image
// "missing".
type ctrPeer struct {
	*peer
	xdv1.ContainersService
}

// taskPeer serves Tasks for the run test: the task writes to both streams
// once started and exits 3.
type taskPeer struct {
	*peer
	xdv1.TasksService
}

func (p taskPeer) Create(ctx context.Context, req *xdv1.CreateTaskRequest) (*xdv1.Task, error) {
	p.record(ctx, "Tasks.Create")
	return &xdv1.Task{ContainerId: req.ContainerId, Status: xdv1.Status_CREATED}, nil
}

func (p taskPeer) Attach(ctx context.Context, s xdv1.Tasks_AttachServer) error {
	req, err := s.Recv()
	if err != nil {
		return err
	}
	p.recordStream("Tasks.Attach "+req.ContainerId, req.Namespace)
	// xd acknowledges the attach before any output.
	if err := s.Send(&xdv1.AttachResponse{}); err != nil {
		return err
	}
	select {
	case <-p.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := s.Send(&xdv1.AttachResponse{Stdout: []byte("hi\n")}); err != nil {
		return err
	}
	return s.Send(&xdv1.AttachResponse{Stderr: []byte("oops\n")})
}

func (p taskPeer) Wait(ctx context.Context, req *xdv1.WaitRequest) (*xdv1.ExitStatus, error) {
	p.record(ctx, "Tasks.Wait")
	select {
	case <-p.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &xdv1.ExitStatus{ExitStatus: 3}, nil
}

func (p taskPeer) Start(ctx context.Context, req *xdv1.StartRequest) (*xdv1.StartResponse, error) {
	p.record(ctx, "Tasks.Start")
	close(p.started)
	return &xdv1.StartResponse{Pid: 42}, nil
}

func (p taskPeer) Delete(ctx context.Context, req *xdv1.DeleteTaskRequest) (*xdv1.ExitStatus, error) {
	p.record(ctx, "Tasks.Delete")
	return &xdv1.ExitStatus{ExitStatus: 3}, nil
}

func (p taskPeer) Kill(ctx context.Context, req *xdv1.KillRequest) (*emptypb.Empty, error) {
	p.record(ctx, "Tasks.Kill")
	return &emptypb.Empty{}, nil
}

func startPeer(t *testing.T) (*peer, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "xd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ttrpc.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{started: make(chan struct{})}
	xdv1.RegisterVersionService(srv, p)
	xdv1.RegisterEventsService(srv, p)
	xdv1.RegisterContainersService(srv, ctrPeer{peer: p})
	xdv1.RegisterTasksService(srv, taskPeer{peer: p})
	go srv.Serve(context.Background(), l)
	t.Cleanup(func() { srv.Close() })
	return p, sock
}

// xctl runs the command line against sock and returns code, stdout, stderr.
func xctl(sock string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	noEnv := func(string) string { return "" }
	code := runWith(append([]string{"--address", sock}, args...), strings.NewReader(""), &out, &errb, noEnv)
	return code, out.String(), errb.String()
}

func TestEventsCommand(t *testing.T) {
	t.Parallel()
	ts := t0.Local().Format(time.RFC3339Nano)
	tests := []struct {
		name  string
		args  []string
		subNS string // request field
		want  string
	}{
		{
			name: "all namespaces", args: []string{"events"}, subNS: "",
			want: ts + " prod /tasks/start container=web pid=42\n" +
				ts + " prod /tasks/exit container=web pid=42 exit=0\n" +
				ts + " prod /images/create image=busybox:latest\n",
		},
		{
			name: "one namespace", args: []string{"-n", "prod", "events"}, subNS: "prod",
			want: ts + " prod /tasks/start container=web pid=42\n" +
				ts + " prod /tasks/exit container=web pid=42 exit=0\n" +
				ts + " prod /images/create image=busybox:latest\n",
		},
		{
			name: "json", args: []string{"--namespace=prod", "events", "--format", "json"}, subNS: "prod",
			want: `{"timestamp":"2026-05-04T03:02:01Z","namespace":"prod","topic":"/tasks/start","container_id":"web","pid":42}` + "\n" +
				`{"timestamp":"2026-05-04T03:02:01Z","namespace":"prod","topic":"/tasks/exit","container_id":"web","pid":42,"exit_status":0}` + "\n" +
				`{"timestamp":"2026-05-04T03:02:01Z","namespace":"prod","topic":"/images/create","image":"busybox:latest"}` + "\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, sock := startPeer(t)
			code, out, errOut := xctl(sock, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if out != tc.want {
				t.Errorf("stdout =\n%s\nwant\n%s", out, tc.want)
			}
			if got := p.recorded(); !slices.Equal(got, []string{"Subscribe ns=" + tc.subNS}) {
				t.Errorf("calls = %q", got)
			}
			if p.subNS != tc.subNS {
				t.Errorf("SubscribeRequest.namespace = %q, want %q", p.subNS, tc.subNS)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	p, sock := startPeer(t)
	code, out, errOut := xctl(sock, "-n", "team1", "version")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "Server (xd):\n  Version: 1.2.3\n  Commit:  cafe\n") || !strings.HasPrefix(out, "Client:\n  Version: ") {
		t.Errorf("stdout = %q", out)
	}
	if got := p.recorded(); !slices.Equal(got, []string{"Version ns=team1"}) {
		t.Errorf("calls = %q", got)
	}
}

func TestRunCommand(t *testing.T) {
	t.Parallel()
	p, sock := startPeer(t)
	code, out, errOut := xctl(sock, "run", "--rm", "busybox", "sh", "-c", "echo hi; echo oops >&2; exit 3")
	if code != 3 {
		t.Fatalf("exit %d, want 3 (stderr %q)", code, errOut)
	}
	if out != "hi\n" || errOut != "oops\n" {
		t.Errorf("stdout %q stderr %q", out, errOut)
	}
	calls := p.recorded()
	for _, c := range []string{"Tasks.Attach web ns=default", "Tasks.Wait ns=default"} {
		if !slices.Contains(calls, c) {
			t.Errorf("calls %q lack %q", calls, c)
		}
	}
	// The calls xctl makes one after the other, in order.
	seq := []string{"Containers.Create", "Tasks.Create", "Tasks.Start", "Tasks.Delete", "Containers.Delete"}
	last := -1
	for _, s := range seq {
		i := slices.Index(calls, s+" ns=default")
		if i <= last {
			t.Fatalf("calls %q: %s missing or out of order", calls, s)
		}
		last = i
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	_, sock := startPeer(t)
	missing := filepath.Join(t.TempDir(), "none.sock")
	tests := []struct {
		name     string
		sock     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"not found is cleaned", sock, []string{"start", "web"}, 1, "xctl: container \"web\" not found\n"},
		{"run create failure is 125", sock, []string{"run", "missing"}, 125, "xctl: image \"missing\" not found\n"},
		{"run bad flag is 125", sock, []string{"run", "--memory", "lots", "img"}, 125, "xctl: --memory: invalid size"},
		{"no daemon", missing, []string{"ps"}, 1, "xctl: cannot connect to xd at " + missing + ": is xd running?"},
		{"unknown command", sock, []string{"frobnicate"}, 1, "xctl: unknown command \"frobnicate\""},
		{"bad signal", sock, []string{"kill", "-s", "NOPE", "web"}, 1, "xctl: invalid signal \"NOPE\""},
		{"arg count", sock, []string{"logs"}, 1, "wrong number of arguments"},
		// A format no command knows is refused before xd is asked.
		{"ps format", missing, []string{"ps", "--format", "yaml"}, 1, `xctl: unknown --format "yaml": want table or json`},
		{"info format", missing, []string{"info", "--format", "table"}, 1, `xctl: unknown --format "table": want text or json`},
		{"events format", missing, []string{"events", "--format", "yaml"}, 1, `want text or json`},
		{"images format", missing, []string{"images", "ls", "--format", "text"}, 1, `want table or json`},
		{"top format", missing, []string{"top", "--format", "text", "web"}, 1, `want table or json`},
		{"stats format", missing, []string{"stats", "--format", "text"}, 1, `want table or json`},
		{"logs tail", missing, []string{"logs", "--tail", "-1", "web"}, 1, `--tail "-1": want a number of lines or all`},
		{"logs since", missing, []string{"logs", "--since", "soon", "web"}, 1, `--since: "soon" is neither a time`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := xctl(tc.sock, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.wantCode, errOut)
			}
			if !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", errOut, tc.wantErr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"run ", "images, image", "Global options:", "--namespace"}},
		{nil, []string{"Commands:"}},
		{[]string{"run", "--help"}, []string{"Usage: xctl run [OPTIONS] IMAGE", "--pids-limit", "-v, --volume"}},
		{[]string{"images"}, []string{"xctl images", "pull", "ls, list"}},
		{[]string{"images", "pull", "-h"}, []string{"--plain-http", "--user"}},
		{[]string{"help", "ps"}, []string{"--all", "--format"}},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		if code := Run(tc.args, strings.NewReader(""), &out, &errb); code != 0 {
			t.Errorf("%q: exit %d, stderr %q", tc.args, code, errb.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%q: help lacks %q:\n%s", tc.args, w, out.String())
			}
		}
	}
}
