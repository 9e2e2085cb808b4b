package shim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	eventsapi "github.com/containerd/containerd/api/services/ttrpc/events/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Helpers shared by the package's tests.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root")
	}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func randomName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// shortTempDir is a temporary directory with a short path, for unix
// sockets (sun_path is 108 bytes; t.TempDir has the test's name in it).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "xs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// writeExecutable writes an executable script without the ETXTBSY race:
// while the file is open for writing no fork may happen in this process
// (a child would hold the writable fd until its exec, and running the
// file meanwhile fails with "text file busy"). Creating fds under
// ForkLock's read lock is what the syscall package documents for that.
func writeExecutable(t *testing.T, path, content string) {
	t.Helper()
	syscall.ForkLock.RLock()
	err := os.WriteFile(path, []byte(content), 0o755)
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the (generous) timeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// eventSink is the daemon's ttrpc Events service: it records every
// forwarded envelope. block, while set, holds each Forward until released.
type eventSink struct {
	mu       sync.Mutex
	envs     []*types.Envelope
	changed  chan struct{} // closed and replaced on every change
	block    chan struct{} // Forward waits for it to be closed, if set
	arrivals chan *types.Envelope
	refuse   bool // Forward fails (a daemon going away)
}

func (s *eventSink) Forward(ctx context.Context, r *eventsapi.ForwardRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	block, arrivals, refuse := s.block, s.arrivals, s.refuse
	s.mu.Unlock()
	if refuse {
		return nil, status.Error(codes.Unavailable, "shutting down")
	}
	if arrivals != nil {
		select {
		case arrivals <- r.Envelope:
		default:
		}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	s.envs = append(s.envs, r.Envelope)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return &emptypb.Empty{}, nil
}

func (s *eventSink) received() []*types.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*types.Envelope(nil), s.envs...)
}

// waitN waits until at least n events arrived and returns them all.
func (s *eventSink) waitN(t *testing.T, n int) []*types.Envelope {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s.mu.Lock()
		envs, changed := append([]*types.Envelope(nil), s.envs...), s.changed
		s.mu.Unlock()
		if len(envs) >= n {
			return envs
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %d events; got %d: %v", n, len(envs), describeEnvelopes(envs))
		}
	}
}

// quiet checks that no more than n events arrive within d.
func (s *eventSink) quiet(t *testing.T, n int, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	if envs := s.received(); len(envs) > n {
		t.Fatalf("got %d events, want %d: %v", len(envs), n, describeEnvelopes(envs))
	}
}

func describeEnvelopes(envs []*types.Envelope) []string {
	var out []string
	for _, e := range envs {
		desc := e.Topic
		if v, err := typeurl.UnmarshalAny(e.Event); err == nil {
			desc += " " + shortEvent(v)
		}
		out = append(out, desc)
	}
	return out
}

// eventServer is a ttrpc server with the Events service on a unix socket.
type eventServer struct {
	sink    *eventSink
	path    string
	server  *ttrpc.Server
	stopped bool
	// conns counts the publishers' connections open on the server.
	conns atomic.Int64
}

// countingListener counts the connections it accepted that are not closed.
type countingListener struct {
	net.Listener
	open *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &countedConn{Conn: c, open: l.open}, nil
}

type countedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}

// newEventServer starts the daemon's Events service on a fresh socket.
func newEventServer(t *testing.T) *eventServer {
	t.Helper()
	es := &eventServer{sink: &eventSink{changed: make(chan struct{})}, path: filepath.Join(shortTempDir(t), "ev.sock")}
	es.start(t)
	t.Cleanup(es.stop)
	return es
}

// newEventServerDown prepares an Events service whose socket does not
// exist until start.
func newEventServerDown(t *testing.T) *eventServer {
	t.Helper()
	es := &eventServer{sink: &eventSink{changed: make(chan struct{})}, path: filepath.Join(shortTempDir(t), "ev.sock"), stopped: true}
	t.Cleanup(es.stop)
	return es
}

func (es *eventServer) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("unix", es.path)
	if err != nil {
		t.Fatal(err)
	}
	server, err := ttrpc.NewServer()
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	eventsapi.RegisterTTRPCEventsService(server, es.sink)
	go func() { _ = server.Serve(context.Background(), countingListener{Listener: l, open: &es.conns}) }()
	es.server, es.stopped = server, false
}

func (es *eventServer) stop() {
	if es.stopped {
		return
	}
	es.stopped = true
	es.server.Close()
	os.Remove(es.path)
}

func (es *eventServer) address() string { return "unix://" + es.path }
