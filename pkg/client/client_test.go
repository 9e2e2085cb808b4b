package client

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/types/known/emptypb"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// peer is a test peer of xd's protocol: a real ttrpc server serving the
// Version, Events and (Wait only) Tasks services, recording the namespace
// header of each call it receives.
type peer struct {
	mu  sync.Mutex
	ns  map[string]string // method -> namespace header seen
	req *xdv1.SubscribeRequest

	xdv1.TasksService // only Wait is served; the rest is not part of the test
	waitRelease       chan struct{}
}

func (p *peer) record(ctx context.Context, method string) {
	v, _ := ttrpc.GetMetadataValue(ctx, xdv1.NamespaceHeader)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ns[method] = v
}

func (p *peer) seen(method string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.ns[method]
	return v, ok
}

func (p *peer) Version(ctx context.Context, _ *emptypb.Empty) (*xdv1.VersionResponse, error) {
	p.record(ctx, "Version")
	return &xdv1.VersionResponse{Version: "9.9.9", Commit: "abc"}, nil
}

func (p *peer) Info(ctx context.Context, _ *emptypb.Empty) (*xdv1.InfoResponse, error) {
	p.record(ctx, "Info")
	return &xdv1.InfoResponse{Version: "9.9.9"}, nil
}

func (p *peer) Subscribe(ctx context.Context, req *xdv1.SubscribeRequest, s xdv1.Events_SubscribeServer) error {
	p.record(ctx, "Subscribe")
	p.mu.Lock()
	p.req = req
	p.mu.Unlock()
	for _, topic := range []string{"/tasks/start", "/tasks/exit"} {
		if err := s.Send(&xdv1.Event{Topic: topic, Namespace: "ns", ContainerId: "web"}); err != nil {
			return err
		}
	}
	return nil
}

func (p *peer) Wait(ctx context.Context, req *xdv1.WaitRequest) (*xdv1.ExitStatus, error) {
	p.record(ctx, "Wait")
	select {
	case <-p.waitRelease:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &xdv1.ExitStatus{ExitStatus: 3}, nil
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
	p := &peer{ns: map[string]string{}, waitRelease: make(chan struct{})}
	xdv1.RegisterVersionService(srv, p)
	xdv1.RegisterEventsService(srv, p)
	xdv1.RegisterTasksService(srv, p)
	go srv.Serve(context.Background(), l)
	t.Cleanup(func() { srv.Close() })
	return p, sock
}

func TestNamespaceHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ns, want string
	}{
		{"explicit", "prod", "prod"},
		{"default", "", xdv1.DefaultNamespace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, sock := startPeer(t)
			c, err := New(sock, tc.ns)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()

			// Unary: set by the interceptor.
			v, err := c.Version().Version(ctx, &emptypb.Empty{})
			if err != nil {
				t.Fatal(err)
			}
			if v.Version != "9.9.9" {
				t.Errorf("version = %q", v.Version)
			}
			if got, _ := p.seen("Version"); got != tc.want {
				t.Errorf("unary call: namespace header = %q, want %q", got, tc.want)
			}

			// Streams carry no metadata (the requests name their namespace).
			stream, err := c.Events().Subscribe(ctx, &xdv1.SubscribeRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var topics []string
			for {
				ev, err := stream.Recv()
				if err != nil {
					break
				}
				topics = append(topics, ev.Topic)
			}
			if strings.Join(topics, ",") != "/tasks/start,/tasks/exit" {
				t.Errorf("events = %v", topics)
			}

			// And unary calls still work after a stream on the same connection.
			if _, err := c.Version().Info(ctx, &emptypb.Empty{}); err != nil {
				t.Fatal(err)
			}
			if got, _ := p.seen("Info"); got != tc.want {
				t.Errorf("unary after stream: namespace header = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWaitAsync(t *testing.T) {
	t.Parallel()
	p, sock := startPeer(t)
	c, err := New(sock, "ns1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch := c.WaitAsync(context.Background(), "web", "")
	// The Wait reaches the server while the caller goes on.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ns, ok := p.seen("Wait"); ok {
			if ns != "ns1" {
				t.Errorf("namespace = %q", ns)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Wait never reached the server")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(p.waitRelease)
	r := <-ch
	if r.Err != nil || r.Status.GetExitStatus() != 3 {
		t.Fatalf("result = %v, %v", r.Status, r.Err)
	}
}

func TestWaitAsyncError(t *testing.T) {
	t.Parallel()
	_, sock := startPeer(t)
	c, err := New(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	r := <-c.WaitAsync(context.Background(), "web", "")
	if r.Err == nil {
		t.Fatal("Wait on a closed client succeeded")
	}
}

func TestNewNoDaemon(t *testing.T) {
	t.Parallel()
	addr := filepath.Join(t.TempDir(), "missing.sock")
	_, err := New(addr, "")
	if err == nil {
		t.Fatal("New succeeded without a server")
	}
	want := "cannot connect to xd at " + addr + ": is xd running?"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %q, want prefix %q", err, want)
	}
	if errors.Unwrap(err) == nil {
		t.Error("cause is not wrapped")
	}
}
