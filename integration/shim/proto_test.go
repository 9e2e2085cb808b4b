package shim_test

// The containerd side of the shim protocol, without *testing.T, so the
// helper processes (helper_test.go) can use it too: the events server, the
// log FIFO reader, stdio FIFOs, `start` and `delete` invocations, and the
// ttrpc client.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	eventsapi "github.com/containerd/containerd/api/events"
	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	ttrpcevents "github.com/containerd/containerd/api/services/ttrpc/events/v1"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	// nsMetadataKey is the ttrpc metadata key that carries the namespace.
	nsMetadataKey = "containerd-namespace-ttrpc"
	// processTypeURL is the type URL containerd gives a JSON specs.Process.
	processTypeURL = "types.containerd.io/opencontainers/runtime-spec/1/Process"
	// startTimeout bounds `start` and `delete` (containerd's cleanup
	// timeout is 5 s; leave room for a loaded machine).
	startTimeout = 30 * time.Second
)

// Event topics (containerd runtime/events.go).
const (
	topicCreate      = "/tasks/create"
	topicStart       = "/tasks/start"
	topicExit        = "/tasks/exit"
	topicDelete      = "/tasks/delete"
	topicExecAdded   = "/tasks/exec-added"
	topicExecStarted = "/tasks/exec-started"
	topicPaused      = "/tasks/paused"
	topicOOM         = "/tasks/oom"
	topicResumed     = "/tasks/resumed"
)

// recordedEvent is one envelope received by the events server.
type recordedEvent struct {
	Topic     string
	Namespace string
	Timestamp time.Time
	TypeURL   string
	Event     any // the decoded event (*eventsapi.TaskExit, ...), nil if undecodable
	DecodeErr error
}

func (e recordedEvent) String() string {
	b, _ := json.Marshal(e.Event)
	return fmt.Sprintf("%s ns=%s %s %s", e.Topic, e.Namespace, e.TypeURL, b)
}

// containerID is the container_id of a task event, "" for other types.
func (e recordedEvent) containerID() string {
	switch ev := e.Event.(type) {
	case *eventsapi.TaskCreate:
		return ev.ContainerID
	case *eventsapi.TaskStart:
		return ev.ContainerID
	case *eventsapi.TaskExit:
		return ev.ContainerID
	case *eventsapi.TaskDelete:
		return ev.ContainerID
	case *eventsapi.TaskExecAdded:
		return ev.ContainerID
	case *eventsapi.TaskExecStarted:
		return ev.ContainerID
	case *eventsapi.TaskPaused:
		return ev.ContainerID
	case *eventsapi.TaskResumed:
		return ev.ContainerID
	case *eventsapi.TaskOOM:
		return ev.ContainerID
	}
	return ""
}

// eventServer serves containerd.services.events.ttrpc.v1.Events/Forward on
// a unix socket, as containerd does on $TTRPC_ADDRESS, and records the
// envelopes in arrival order.
type eventServer struct {
	path string
	srv  *ttrpc.Server
	l    net.Listener

	mu      sync.Mutex
	events  []recordedEvent
	changed chan struct{}
}

func newEventServer(path string) (*eventServer, error) {
	srv, err := ttrpc.NewServer()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	s := &eventServer{path: path, srv: srv, l: l, changed: make(chan struct{})}
	ttrpcevents.RegisterTTRPCEventsService(srv, s)
	go srv.Serve(context.Background(), l)
	return s, nil
}

// Forward implements the events service.
func (s *eventServer) Forward(ctx context.Context, req *ttrpcevents.ForwardRequest) (*emptypb.Empty, error) {
	env := req.GetEnvelope()
	if env == nil {
		return nil, errors.New("no envelope")
	}
	r := recordedEvent{Topic: env.GetTopic(), Namespace: env.GetNamespace()}
	if env.GetTimestamp() != nil {
		r.Timestamp = env.GetTimestamp().AsTime()
	}
	if a := env.GetEvent(); a != nil {
		r.TypeURL = a.GetTypeUrl()
		r.Event, r.DecodeErr = typeurl.UnmarshalAny(a)
	}
	s.mu.Lock()
	s.events = append(s.events, r)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return &emptypb.Empty{}, nil
}

// Events returns a copy of the events received so far.
func (s *eventServer) Events() []recordedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recordedEvent(nil), s.events...)
}

// WaitFor waits until cond holds for the events received so far.
func (s *eventServer) WaitFor(timeout time.Duration, cond func([]recordedEvent) bool) ([]recordedEvent, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		evs := append([]recordedEvent(nil), s.events...)
		ch := s.changed
		s.mu.Unlock()
		if cond(evs) {
			return evs, true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return evs, false
		}
	}
}

// Close stops serving and removes the socket.
func (s *eventServer) Close() {
	s.srv.Close()
	s.l.Close()
	os.Remove(s.path)
}

// fifoReader keeps reading a FIFO opened O_RDWR|O_NONBLOCK (as containerd's
// cio does: the FIFO never sees EOF and never blocks the writer's open) into
// a buffer until closed.
type fifoReader struct {
	f    *os.File
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

// mkfifo makes a FIFO (mode 0600) unless it exists.
func mkfifo(path string) error {
	if err := syscall.Mkfifo(path, 0o600); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("mkfifo %s: %w", path, err)
	}
	return nil
}

// openFifo opens a FIFO the way containerd does (O_RDWR|O_NONBLOCK), making
// it if needed.
func openFifo(path string) (*os.File, error) {
	if err := mkfifo(path); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0)
}

func newFifoReader(path string) (*fifoReader, error) {
	f, err := openFifo(path)
	if err != nil {
		return nil, err
	}
	r := &fifoReader{f: f, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		b := make([]byte, 32*1024)
		for {
			n, err := f.Read(b)
			if n > 0 {
				r.mu.Lock()
				r.buf.Write(b[:n])
				r.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	return r, nil
}

// String is everything read so far.
func (r *fifoReader) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// WaitFor waits until the content read so far contains substr.
func (r *fifoReader) WaitFor(substr string, timeout time.Duration) (string, bool) {
	deadline := time.Now().Add(timeout)
	for {
		s := r.String()
		if strings.Contains(s, substr) {
			return s, true
		}
		if time.Now().After(deadline) {
			return s, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close stops reading and closes the FIFO.
func (r *fifoReader) Close() {
	r.f.Close()
	<-r.done
}

// shimCmd is what containerd passes to every invocation of a shim binary.
type shimCmd struct {
	Shim      string // shim binary
	NS        string // -namespace
	ID        string // -id
	Address   string // -address: the daemon's grpc socket
	Publish   string // -publish-binary
	Bundle    string // the bundle dir: cwd, and -bundle of delete
	TTRPCAddr string // $TTRPC_ADDRESS: the events server
}

// command builds `<shim> -namespace NS -address A -publish-binary P -id ID
// [-bundle B] ACTION` with cwd = bundle, its own process group and the
// environment containerd gives a shim.
func (c shimCmd) command(ctx context.Context, action string) *exec.Cmd {
	args := []string{"-namespace", c.NS, "-address", c.Address, "-publish-binary", c.Publish, "-id", c.ID}
	if action == "delete" {
		args = append(args, "-bundle", c.Bundle)
	}
	args = append(args, action)
	cmd := exec.CommandContext(ctx, c.Shim, args...)
	cmd.Dir = c.Bundle
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "TTRPC_ADDRESS="+c.TTRPCAddr, "GOMAXPROCS=2")
	// A daemonized child that kept start's stdout or stderr would make
	// CombinedOutput hang: bound it, and say so.
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// optionsAny is a runc Options as the Any containerd sends (bare type URL
// containerd.runc.v1.Options).
func optionsAny(o *options.Options) (*anypb.Any, error) {
	if o == nil {
		return nil, nil
	}
	return typeurl.MarshalAnyToProto(o)
}

// startResult is the outcome of `<shim> ... start`.
type startResult struct {
	Output  string // combined output, as containerd reads it
	Address string // the address parsed from it ("unix:///...")
	Elapsed time.Duration
}

// runStart runs `start` as containerd does: stdin = the protobuf encoding of
// the Options Any (empty when o is nil), CombinedOutput, then parse either
// a bare address or a JSON bootstrap (containerd 1.7+).
func (c shimCmd) runStart(o *options.Options) (startResult, error) {
	var res startResult
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := c.command(ctx, "start")
	if o != nil {
		a, err := optionsAny(o)
		if err != nil {
			return res, err
		}
		b, err := proto.Marshal(a)
		if err != nil {
			return res, err
		}
		cmd.Stdin = bytes.NewReader(b)
	}
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	res.Elapsed = time.Since(t0)
	res.Output = string(out)
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s start: timed out after %v (did the daemonized shim keep start's stdout/stderr?): output %q", c.Shim, startTimeout, out)
	}
	if err != nil {
		return res, fmt.Errorf("%s start: %v: output %q", c.Shim, err, out)
	}
	addr := strings.TrimSpace(string(out))
	if strings.HasPrefix(addr, "{") {
		var boot struct {
			Version  int    `json:"version"`
			Address  string `json:"address"`
			Protocol string `json:"protocol"`
		}
		if err := json.Unmarshal([]byte(addr), &boot); err != nil {
			return res, fmt.Errorf("start printed bad bootstrap JSON %q: %v", addr, err)
		}
		if boot.Protocol != "" && boot.Protocol != "ttrpc" {
			return res, fmt.Errorf("start: protocol %q, want ttrpc", boot.Protocol)
		}
		addr = boot.Address
	}
	res.Address = addr
	return res, nil
}

// socketPath strips the unix:// scheme of a shim address.
func socketPath(addr string) string {
	return strings.TrimPrefix(addr, "unix://")
}

// deleteResult is the outcome of `<shim> ... -bundle B delete`.
type deleteResult struct {
	Resp   *taskapi.DeleteResponse // decoded stdout (nil if it did not decode)
	Stdout []byte
	Stderr string
	Code   int // exit code, -1 if killed
	Err    error
}

func (r deleteResult) String() string {
	return fmt.Sprintf("exit %d (err %v), %d bytes of stdout (resp %v), stderr %q", r.Code, r.Err, len(r.Stdout), r.Resp, r.Stderr)
}

// runDelete runs `delete` and decodes the DeleteResponse it prints.
func (c shimCmd) runDelete() deleteResult {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := c.command(ctx, "delete")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := deleteResult{Stdout: stdout.Bytes(), Stderr: stderr.String(), Code: -1, Err: err}
	if cmd.ProcessState != nil {
		r.Code = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		r.Err = fmt.Errorf("delete timed out after %v", startTimeout)
	}
	var resp taskapi.DeleteResponse
	if perr := proto.Unmarshal(r.Stdout, &resp); perr == nil && len(r.Stdout) > 0 {
		r.Resp = &resp
	}
	return r
}

// nsContext adds the namespace metadata containerd puts on every call.
func nsContext(ctx context.Context, ns string) context.Context {
	return ttrpc.WithMetadata(ctx, ttrpc.MD{nsMetadataKey: []string{ns}})
}

// dialShim connects to a shim address and returns a ttrpc client. onClose
// runs when the connection closes (containerd runs `delete` from there).
func dialShim(addr string, onClose func()) (*ttrpc.Client, error) {
	if !strings.HasPrefix(addr, "unix://") {
		return nil, fmt.Errorf("shim address %q is not unix://", addr)
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.Dial("unix", socketPath(addr))
	if err != nil {
		return nil, err
	}
	var opts []ttrpc.ClientOpts
	if onClose != nil {
		opts = append(opts, ttrpc.WithOnClose(onClose))
	}
	return ttrpc.NewClient(conn, opts...), nil
}

// procStart is field 22 (starttime) of /proc/PID/stat, "" if gone.
func procStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// procPPid is field 4 of /proc/PID/stat, -1 if gone.
func procPPid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// procCmdline is /proc/PID/cmdline with spaces.
func procCmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
}

// procRef is a process the test started: pid and start time, so that a
// recycled pid is never signalled.
type procRef struct {
	pid   int
	start string
}

func refOf(pid int) procRef { return procRef{pid, procStart(pid)} }

// kill SIGKILLs the process if it is still the same one.
func (p procRef) kill() {
	if p.pid > 0 && p.start != "" && procStart(p.pid) == p.start {
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// writeJSON writes v as JSON (the helper's configuration).
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// isMounted reports whether path is a mount point in our mount table.
func isMounted(path string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && unescapeMount(f[4]) == path {
			return true
		}
	}
	return false
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 {
			mp := unescapeMount(f[4])
			if mp == dir || strings.HasPrefix(mp, dir+"/") {
				out = append(out, mp)
			}
		}
	}
	return out
}

// exists reports whether path exists (lstat).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
