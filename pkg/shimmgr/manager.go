package shimmgr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	task "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/xstack/xstack/pkg/atomicfile"
	"github.com/xstack/xstack/pkg/shim/launch"
)

// Files in the bundle.
const (
	logFile         = "log"              // FIFO: the shim's log output
	addressFile     = "address"          // the shim's ttrpc address
	shimBinaryFile  = "shim-binary-path" // the shim binary, for `delete`
	nsMetadataKey   = "containerd-namespace-ttrpc"
	defaultExitCode = 128 + uint32(unix.SIGKILL) // containerd's status for a task whose shim is gone
)

// Timeouts. The start and cleanup ones are generous: containerd uses 5 s
// for cleanup, but this machine is shared and noisy.
const (
	startTimeout       = 30 * time.Second // `start` and the first Connect
	cleanupTimeout     = 30 * time.Second // `delete`
	loadDialTimeout    = 2 * time.Second
	loadConnectTimeout = 5 * time.Second // containerd's io.containerd.timeout.shim.load
	shutdownWait       = 2 * time.Second // for the shim to close the connection after Shutdown
	killWait           = 2 * time.Second // for a shim killed after a failed start
)

// ErrShimDead is wrapped by Load when the shim cannot be reached: no
// address or socket, connection refused, or no answer to Connect in time.
// The remedy is Cleanup.
var ErrShimDead = errors.New("shim is not running")

// Runtime names a shim binary.
type Runtime struct {
	// Name is the runtime's name, e.g. "io.xstack.xshim.v1" or
	// "io.containerd.runc.v2". Informational.
	Name string
	// Shim is the absolute path of the shim binary.
	Shim string
	// Direct says the shim is xshim, which xd launches itself
	// (pkg/shim/launch) rather than through its start action: one
	// process start less per container.
	Direct bool
}

// Manager starts, re-attaches to and cleans up after shims. Set its
// fields before first use and do not change them after; the zero value of
// the unexported state is ready to use. It is safe for concurrent use, but
// the caller must not run two operations on the same container at once.
type Manager struct {
	// Address is xd's ttrpc socket path: the shims' -address, and their
	// TTRPC_ADDRESS, where they forward events.
	Address string
	// PublishBinary is xd's own path (-publish-binary; no shim in use
	// runs it).
	PublishBinary string
	// Debug passes -debug to `start`.
	Debug bool
	// Logger receives the shims' log lines (debug) and cleanup warnings.
	// nil means slog.Default().
	Logger *slog.Logger

	mu   sync.Mutex
	logs map[string]*logReader // by ns/id; guarded by mu
}

func (m *Manager) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

// Start launches a shim for container id of namespace ns, whose bundle
// (config.json, rootfs/) is ready, connects to it and calls Connect: a
// Direct runtime through pkg/shim/launch, any other through its `start`
// action. opts, when not nil, reach the shim as containerd gives them to
// `start` (on stdin, a protobuf-encoded Any of containerd.runc.v1.Options)
// or are recorded in the bundle by the launch; the same options must be
// sent again in CreateTaskRequest.Options.
//
// On failure nothing is left: a shim that started is asked to shut down
// (and killed if it does not), Cleanup runs, and the log reader stops.
func (m *Manager) Start(ctx context.Context, ns, id, bundle string, rt Runtime, opts *options.Options) (_ *Shim, err error) {
	if ns == "" || id == "" {
		return nil, errors.New("start shim: namespace and id are required")
	}
	if !filepath.IsAbs(bundle) || !filepath.IsAbs(rt.Shim) {
		return nil, fmt.Errorf("start shim for %s/%s: bundle %q and shim %q must be absolute paths", ns, id, bundle, rt.Shim)
	}
	bundle = filepath.Clean(bundle)
	if filepath.Base(bundle) != id {
		return nil, fmt.Errorf("start shim for %s/%s: bundle %s must be named after the container (<dir>/%s)", ns, id, bundle, id)
	}
	log := m.logger().With("ns", ns, "id", id)
	lr, err := m.openLog(ns, id, bundle)
	if err != nil {
		return nil, fmt.Errorf("start shim for %s/%s: %w", ns, id, err)
	}
	var s *Shim
	defer func() {
		if err == nil {
			return
		}
		// Leave nothing behind, even if the caller gave up.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if s != nil {
			s.abort(cctx)
		}
		if _, cerr := m.Cleanup(cctx, ns, id, bundle); cerr != nil {
			log.Debug("cleanup after failed start", "error", cerr)
		}
	}()
	if err := atomicfile.WriteFile(filepath.Join(bundle, shimBinaryFile), []byte(rt.Shim), 0o600, false); err != nil {
		return nil, fmt.Errorf("start shim for %s/%s: record shim binary: %w", ns, id, err)
	}

	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var address string
	if rt.Direct {
		address, err = m.launch(ns, id, bundle, rt, opts)
	} else {
		address, err = m.startAction(sctx, ns, id, bundle, rt, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("start shim %s for %s/%s: %w", rt.Shim, ns, id, err)
	}
	s, err = m.dial(sctx, ns, id, bundle, address, lr)
	if err != nil {
		return nil, fmt.Errorf("start shim for %s/%s: %w", ns, id, err)
	}
	if _, err := s.connect(sctx); err != nil {
		return nil, fmt.Errorf("start shim for %s/%s: Connect: %w", ns, id, err)
	}
	log.Debug("shim started", "address", address, "shim_pid", s.pid, "runtime", rt.Name)
	return s, nil
}

// startAction runs the shim's start action, which launches the server and
// prints its address (containerd's way).
func (m *Manager) startAction(ctx context.Context, ns, id, bundle string, rt Runtime, opts *options.Options) (string, error) {
	var stdin []byte
	if opts != nil {
		a, err := typeurl.MarshalAnyToProto(opts)
		if err != nil {
			return "", fmt.Errorf("encode options: %w", err)
		}
		if stdin, err = proto.Marshal(a); err != nil {
			return "", fmt.Errorf("encode options: %w", err)
		}
	}
	cmd := m.command(ctx, rt.Shim, ns, id, bundle, "start")
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return "", fmt.Errorf("%w (output %q)", ctx.Err(), out)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	address, err := parseStartOutput(out)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(bundle, addressFile)); errors.Is(err, fs.ErrNotExist) {
		if err := atomicfile.WriteFile(filepath.Join(bundle, addressFile), []byte(address), 0o600, false); err != nil {
			return "", fmt.Errorf("record address: %w", err)
		}
	}
	return address, nil
}

// launch starts an xshim server as its start action would, detached: the
// server is not xd's child, so xd has nothing to reap and its shims sit
// where containerd's do.
func (m *Manager) launch(ns, id, bundle string, rt Runtime, opts *options.Options) (string, error) {
	shim, err := launch.Start(launch.Request{
		Binary: rt.Shim, Namespace: ns, ID: id, Address: m.Address, PublishBinary: m.PublishBinary,
		Bundle: bundle, Debug: m.Debug, Options: opts, Env: m.env(ns), Detach: true,
	})
	if err != nil {
		return "", err
	}
	if shim.Process != nil {
		_ = shim.Process.Release()
	}
	return shim.Address, nil
}

// LoadOption changes how Load re-attaches.
type LoadOption func(*loadOptions)

type loadOptions struct{ skipConnect bool }

// WithoutConnect makes Load stop after the dial: the caller's own first call
// (State, with its timeout) is the liveness check. A daemon re-attaching to
// many shims at once saves a round trip to each.
func WithoutConnect() LoadOption { return func(o *loadOptions) { o.skipConnect = true } }

// Load re-attaches to the shim of a container after a daemon restart: it
// reads the bundle's address, restarts the log reader, dials (2 s) and
// calls Connect (5 s). A shim that is gone or does not answer gives an
// error wrapping ErrShimDead; the caller then runs Cleanup.
func (m *Manager) Load(ctx context.Context, ns, id, bundle string, opts ...LoadOption) (_ *Shim, err error) {
	var o loadOptions
	for _, opt := range opts {
		opt(&o)
	}
	bundle = filepath.Clean(bundle)
	b, err := os.ReadFile(filepath.Join(bundle, addressFile))
	if err != nil {
		return nil, fmt.Errorf("load shim of %s/%s: %w: %w", ns, id, ErrShimDead, err)
	}
	address := strings.TrimSpace(string(b))
	lr, err := m.openLog(ns, id, bundle)
	if err != nil {
		return nil, fmt.Errorf("load shim of %s/%s: %w", ns, id, err)
	}
	defer func() {
		if err != nil {
			m.stopLog(ns, id, lr)
		}
	}()
	dctx, cancel := context.WithTimeout(ctx, loadDialTimeout)
	defer cancel()
	s, err := m.dial(dctx, ns, id, bundle, address, lr)
	if err != nil {
		if isDeadDial(err) {
			return nil, fmt.Errorf("load shim of %s/%s: %w: %w", ns, id, ErrShimDead, err)
		}
		return nil, fmt.Errorf("load shim of %s/%s: %w", ns, id, err)
	}
	if o.skipConnect {
		return s, nil
	}
	cctx, cancel := context.WithTimeout(ctx, loadConnectTimeout)
	defer cancel()
	if _, err := s.connect(cctx); err != nil {
		s.client.Close()
		if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || isClosed(err)) {
			return nil, fmt.Errorf("load shim of %s/%s: Connect: %w: %w", ns, id, ErrShimDead, err)
		}
		return nil, fmt.Errorf("load shim of %s/%s: Connect: %w", ns, id, err)
	}
	m.logger().Debug("shim loaded", "ns", ns, "id", id, "address", address, "shim_pid", s.pid)
	return s, nil
}

// Cleanup runs the shim's `delete` for a container whose shim was shut
// down or died (`<shim> -namespace NS -address A -publish-binary B -id ID
// -bundle BUNDLE delete`, cwd = bundle, with the binary recorded in the
// bundle) and returns the DeleteResponse it prints. It also removes the
// socket of a shim that no longer listens (containerd-shim-runc-v2 leaves
// it) and stops the log reader. The bundle itself is the caller's.
//
// The response is never nil. It is idempotent: with no bundle, no recorded
// shim binary, or a shim that prints nothing, the response is containerd's
// default for a task whose shim is gone: exit status 137, pid 0, exited_at
// now. The error reports a `delete` that failed (containerd-shim-runc-v2
// fails when no Create ever succeeded); the response is then the default.
func (m *Manager) Cleanup(ctx context.Context, ns, id, bundle string) (*task.DeleteResponse, error) {
	bundle = filepath.Clean(bundle)
	log := m.logger().With("ns", ns, "id", id)
	defer m.stopLog(ns, id, nil)
	def := &task.DeleteResponse{ExitStatus: defaultExitCode, ExitedAt: timestamppb.Now()}
	if _, err := os.Stat(bundle); errors.Is(err, fs.ErrNotExist) {
		return def, nil
	}
	defer removeDeadSocket(bundle, log)
	b, err := os.ReadFile(filepath.Join(bundle, shimBinaryFile))
	if errors.Is(err, fs.ErrNotExist) {
		return def, nil
	}
	if err != nil {
		return def, fmt.Errorf("cleanup %s/%s: %w", ns, id, err)
	}
	shim := strings.TrimSpace(string(b))
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	cmd := m.command(dctx, shim, ns, id, bundle, "delete")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if w := strings.TrimSpace(stderr.String()); w != "" {
		log.Debug("shim delete warnings", "output", w)
	}
	if dctx.Err() != nil {
		return def, fmt.Errorf("cleanup %s/%s: %s delete: %w", ns, id, shim, dctx.Err())
	}
	if err != nil {
		return def, fmt.Errorf("cleanup %s/%s: %s delete: %w: %s", ns, id, shim, err, strings.TrimSpace(stderr.String()))
	}
	if stdout.Len() == 0 {
		return def, nil
	}
	var resp task.DeleteResponse
	if err := proto.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return def, fmt.Errorf("cleanup %s/%s: %s delete printed %d bytes that are no DeleteResponse: %w", ns, id, shim, stdout.Len(), err)
	}
	return &resp, nil
}

// command builds one invocation of a shim binary the way containerd does.
func (m *Manager) command(ctx context.Context, shim, ns, id, bundle, action string) *exec.Cmd {
	args := []string{"-namespace", ns, "-address", m.Address, "-publish-binary", m.PublishBinary, "-id", id}
	if action == "delete" {
		args = append(args, "-bundle", bundle)
	}
	if m.Debug {
		args = append(args, "-debug")
	}
	args = append(args, action)
	cmd := exec.CommandContext(ctx, shim, args...)
	cmd.Dir = bundle
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = m.env(ns)
	// A daemonized shim that kept start's stdout or stderr would hold
	// CombinedOutput forever.
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// env is xd's environment plus what containerd gives its shims (1.6:
// TTRPC_ADDRESS and GOMAXPROCS; 1.7+ also GRPC_ADDRESS, NAMESPACE and
// MAX_SHIM_VERSION, which keeps a newer shim on task API v2).
func (m *Manager) env(ns string) []string {
	set := map[string]string{
		"TTRPC_ADDRESS":    m.Address,
		"GRPC_ADDRESS":     m.Address,
		"NAMESPACE":        ns,
		"MAX_SHIM_VERSION": "2",
		"GOMAXPROCS":       "2",
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			env = append(env, kv)
		}
	}
	for _, k := range []string{"TTRPC_ADDRESS", "GRPC_ADDRESS", "NAMESPACE", "MAX_SHIM_VERSION", "GOMAXPROCS"} {
		env = append(env, k+"="+set[k])
	}
	return env
}

// dial connects to a shim address ("unix://path") and wraps the connection
// in a Shim. (The socket's peer credentials do not name the shim server:
// SO_PEERCRED reports the process that called listen, the `start` process
// that handed the listener to the server and exited.)
func (m *Manager) dial(ctx context.Context, ns, id, bundle, address string, lr *logReader) (*Shim, error) {
	path, ok := strings.CutPrefix(address, "unix://")
	if !ok {
		return nil, fmt.Errorf("shim address %q is not unix://", address)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	s := &Shim{
		m: m, ns: ns, id: id, bundle: bundle, address: address,
		done: make(chan struct{}), log: lr,
	}
	s.client = ttrpc.NewClient(conn,
		ttrpc.WithOnClose(func() { s.doneOnce.Do(func() { close(s.done) }) }),
		ttrpc.WithUnaryClientInterceptor(namespaceInterceptor(ns)),
	)
	s.task = task.NewTTRPCTaskClient(s.client)
	return s, nil
}

// namespaceInterceptor puts the namespace header on every call, replacing
// one the caller's context may carry.
func namespaceInterceptor(ns string) ttrpc.UnaryClientInterceptor {
	return func(ctx context.Context, req *ttrpc.Request, resp *ttrpc.Response, _ *ttrpc.UnaryClientInfo, invoke ttrpc.Invoker) error {
		md := req.Metadata[:0:0]
		for _, kv := range req.Metadata {
			if kv.Key != nsMetadataKey {
				md = append(md, kv)
			}
		}
		req.Metadata = append(md, &ttrpc.KeyValue{Key: nsMetadataKey, Value: ns})
		return invoke(ctx, req, resp)
	}
}

// isDeadDial tells a dial error that means nobody serves the socket.
func isDeadDial(err error) bool {
	var ne net.Error
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) ||
		errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// isClosed tells an error that means the connection went away.
func isClosed(err error) bool {
	return errors.Is(err, ttrpc.ErrClosed) || errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE) ||
		(err != nil && strings.Contains(err.Error(), ttrpc.ErrClosed.Error()))
}

// removeDeadSocket removes the socket named by the bundle's address if it
// is a socket and connecting to it is refused (its shim is gone).
func removeDeadSocket(bundle string, log *slog.Logger) {
	b, err := os.ReadFile(filepath.Join(bundle, addressFile))
	if err != nil {
		return
	}
	path, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "unix://")
	if !ok {
		return
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != fs.ModeSocket {
		return
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return
	}
	if errors.Is(err, unix.ECONNREFUSED) {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("remove dead shim socket", "path", path, "error", err)
		}
	}
}
