package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/ttrpc"

	"github.com/xstack/xstack/pkg/content"
	"github.com/xstack/xstack/pkg/events"
	"github.com/xstack/xstack/pkg/metadata"
	"github.com/xstack/xstack/pkg/shimmgr"
	"github.com/xstack/xstack/pkg/snapshot"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// Server is a running xd.
type Server struct {
	cfg     Config
	log     *slog.Logger
	started time.Time

	db       *metadata.DB
	content  *content.Store
	snaps    *snapshot.Snapshotter
	exchange *events.Exchange
	shims    *shimmgr.Manager
	runtimes map[string]shimmgr.Runtime

	// gcMu: image and container writes hold it shared, garbage collection
	// exclusively, so GC never sees blobs or snapshots half-way to being
	// referenced.
	gcMu sync.RWMutex

	mu    sync.Mutex
	tasks map[string]*task // by ns/id: tasks with a live (or unreachable) shim
	// recovering are running containers whose shims are being re-attached
	// after a restart (see Recover).
	recovering map[string]*recovering
	// reattachNow is closed (once, via reattachOnce) when a call needs a
	// shim that is not re-attached yet: the re-attaching starts at once.
	reattachNow  chan struct{}
	reattachOnce sync.Once
	// restarts are the restarts of restart policies waiting for their
	// delay, by ns/id; none are made once closing.
	restarts map[string]*pendingRestart
	closing  bool

	listener net.Listener
	srv      *ttrpc.Server
}

// New opens xd's stores under cfg.Root and cfg.State.
func New(cfg Config, log *slog.Logger) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: log, started: time.Now(), tasks: map[string]*task{}, recovering: map[string]*recovering{}, restarts: map[string]*pendingRestart{}, reattachNow: make(chan struct{}), exchange: events.NewExchange()}
	for _, dir := range []string{cfg.Root, cfg.State} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.db, err = metadata.Open(filepath.Join(cfg.Root, "meta.db")); err != nil {
		return nil, err
	}
	if s.content, err = content.New(filepath.Join(cfg.Root, "content")); err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	if s.snaps, err = snapshot.NewOverlay(filepath.Join(cfg.Root, "snapshots")); err != nil {
		return nil, fmt.Errorf("snapshotter: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	s.shims = &shimmgr.Manager{Address: cfg.Address, PublishBinary: self, Debug: cfg.ShimDebug, Logger: log.With("component", "shim")}
	s.runtimes = map[string]shimmgr.Runtime{}
	for name, rc := range cfg.Runtimes {
		path, err := resolveShim(rc.Shim)
		if err != nil {
			// A missing shim only matters to the containers that ask for it.
			log.Warn("runtime unavailable", "runtime", name, "error", err)
			continue
		}
		s.runtimes[name] = shimmgr.Runtime{Name: name, Shim: path, Direct: name == RuntimeXshim}
	}
	if _, ok := cfg.Runtimes[cfg.DefaultRuntime]; !ok {
		return nil, fmt.Errorf("default runtime %q is not configured", cfg.DefaultRuntime)
	}
	return s, nil
}

// Listen creates xd's socket: 0660, root only, in a 0711 directory.
func (s *Server) Listen() error {
	if err := os.MkdirAll(filepath.Dir(s.cfg.Address), 0o711); err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	if c, err := net.DialTimeout("unix", s.cfg.Address, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("another xd is serving %s", s.cfg.Address)
	}
	os.Remove(s.cfg.Address)
	l, err := net.Listen("unix", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Address, err)
	}
	if err := os.Chmod(s.cfg.Address, 0o660); err != nil {
		l.Close()
		return err
	}
	s.listener = l
	return nil
}

// Serve answers API calls (and the shims' events) until ctx is done.
func (s *Server) Serve(ctx context.Context) error {
	srv, err := ttrpc.NewServer(
		ttrpc.WithServerHandshaker(ttrpc.UnixSocketRequireSameUser()),
		ttrpc.WithUnaryServerInterceptor(s.unaryInterceptor),
	)
	if err != nil {
		return err
	}
	s.srv = srv
	xdv1.RegisterVersionService(srv, &versionService{s})
	xdv1.RegisterContainersService(srv, &containersService{s})
	xdv1.RegisterImagesService(srv, &imagesService{s})
	xdv1.RegisterTasksService(srv, &tasksService{s})
	xdv1.RegisterEventsService(srv, &eventsService{s})
	events.NewForwardService(s.forwarded).Register(srv)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, s.listener) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, ttrpc.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// Close lets go of the shims (they live on) and the stores.
func (s *Server) Close() {
	s.mu.Lock()
	for _, t := range s.tasks {
		t.detach()
	}
	// Pending restarts are for the next xd to make (restartAtStart).
	for key, pending := range s.restarts {
		pending.timer.Stop()
		delete(s.restarts, key)
	}
	s.closing = true
	s.mu.Unlock()
	if s.listener != nil {
		s.listener.Close()
		os.Remove(s.cfg.Address)
	}
	if s.db != nil {
		s.db.Close()
	}
}

type nsKey struct{}

// namespace is the call's namespace.
func namespace(ctx context.Context) string {
	if ns, ok := ctx.Value(nsKey{}).(string); ok {
		return ns
	}
	return xdv1.DefaultNamespace
}

func withNamespace(ctx context.Context, ns string) context.Context {
	return context.WithValue(ctx, nsKey{}, ns)
}

func namespaceFromMetadata(ctx context.Context) (context.Context, error) {
	ns := xdv1.DefaultNamespace
	if md, ok := ttrpc.GetMetadata(ctx); ok {
		if v, _ := md.Get(xdv1.NamespaceHeader); len(v) > 0 && v[0] != "" {
			ns = v[0]
		}
	}
	if err := metadata.ValidateName("namespace", ns); err != nil {
		return ctx, err
	}
	return withNamespace(ctx, ns), nil
}

func (s *Server) unaryInterceptor(ctx context.Context, unmarshal ttrpc.Unmarshaler, info *ttrpc.UnaryServerInfo, method ttrpc.Method) (interface{}, error) {
	ctx, err := namespaceFromMetadata(ctx)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	resp, err := method(ctx, unmarshal)
	if err != nil {
		s.log.Debug("request failed", "method", info.FullMethod, "error", err)
		return resp, errgrpc.ToGRPC(err)
	}
	return resp, nil
}

// streamNamespace does for streaming calls what the unary interceptor does:
// ttrpc sends no metadata with streams, so the request names its namespace
// (the metadata is still honoured should a client send it).
func streamNamespace(ctx context.Context, requested string) (context.Context, error) {
	if requested == "" {
		ctx, err := namespaceFromMetadata(ctx)
		return ctx, errgrpc.ToGRPC(err)
	}
	if err := metadata.ValidateName("namespace", requested); err != nil {
		return ctx, errgrpc.ToGRPC(err)
	}
	return withNamespace(ctx, requested), nil
}

// forwarded handles an event a shim published. Exits and deletes are
// published by xd itself, once: an exit when its Wait on the shim returns
// (which also covers exits the shim could not report while xd was down), a
// delete when it has torn the shim down.
func (s *Server) forwarded(ctx context.Context, ev *xdv1.Event) {
	if ev.Topic == events.TopicTaskExit || ev.Topic == events.TopicTaskDelete {
		return
	}
	if ev.Topic == events.TopicTaskOOM {
		if t := s.getTask(ev.Namespace, ev.ContainerId); t != nil {
			t.markOOM()
		}
	}
	s.exchange.Publish(ev)
}

func (s *Server) publish(ns, topic, id string, fill func(*xdv1.Event)) {
	ev := &xdv1.Event{Namespace: ns, Topic: topic, ContainerId: id}
	if fill != nil {
		fill(ev)
	}
	s.exchange.Publish(ev)
}

func notFound(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrNotFound)...)
}
