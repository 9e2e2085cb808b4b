package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/xstack/xstack/pkg/mount"
	"github.com/xstack/xstack/pkg/ocicli"
	"github.com/xstack/xstack/pkg/runtime/cgroups"
	"github.com/xstack/xstack/pkg/shim/launch"
	"github.com/xstack/xstack/pkg/shim/reaper"
)

// Flags are the command line containerd gives a shim.
type Flags struct {
	Namespace     string
	ID            string
	Address       string // the daemon's main socket
	PublishBinary string
	Bundle        string
	Debug         bool
}

// Start is the `start` action: it starts the long-lived shim (unless the
// container's group already has one), records its address in the bundle
// (the current directory) and returns the address to print. rawOptions is
// what the daemon wrote on stdin: a protobuf Any of the runtime options,
// or nothing.
func Start(f Flags, rawOptions []byte) (string, error) {
	if f.ID == "" || f.Namespace == "" {
		return "", errors.New("start: -id and -namespace are required")
	}
	bundle := f.Bundle
	if bundle == "" {
		var err error
		if bundle, err = os.Getwd(); err != nil {
			return "", err
		}
	}
	opts, err := startOptions(rawOptions)
	if err != nil {
		return "", err
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	r := launch.Request{
		Binary: self, Namespace: f.Namespace, ID: f.ID, Address: f.Address,
		PublishBinary: f.PublishBinary, Bundle: bundle, Debug: f.Debug, Options: opts,
	}
	if opts != nil && opts.ShimCgroup != "" {
		r.Setup = func(pid int) error { return enterCgroup(opts.ShimCgroup, pid) }
	}
	shim, err := launch.Start(r)
	if err != nil {
		return "", err
	}
	if shim.Process != nil {
		_ = shim.Process.Release()
	}
	return shim.Address, nil
}

// startOptions decodes the options given to start; nil if none.
func startOptions(raw []byte) (*options.Options, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var a anypb.Any
	if err := proto.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("runtime options on stdin: %w", err)
	}
	return runtimeOptions(&a)
}

// enterCgroup puts the shim into the cgroup the options name.
func enterCgroup(path string, pid int) error {
	cg, err := cgroups.New(path, "")
	if err != nil {
		return fmt.Errorf("shim cgroup %s: %w", path, err)
	}
	if err := cg.Apply(pid); err != nil {
		return fmt.Errorf("shim cgroup %s: %w", path, err)
	}
	return nil
}

// Delete is the `delete` action, run by the daemon after the shim went
// away (or failed to start): it force-deletes the container with the
// runtime, unmounts its rootfs and reports it killed. It is idempotent:
// a container already gone is fine.
func Delete(ctx context.Context, f Flags, warn io.Writer) (*taskapi.DeleteResponse, error) {
	bundle := f.Bundle
	if bundle == "" {
		var err error
		if bundle, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	if f.ID == "" || f.Namespace == "" {
		return nil, errors.New("delete: -id and -namespace are required")
	}
	opts, err := launch.ReadOptions(bundle)
	if err != nil {
		fmt.Fprintf(warn, "read options: %v\n", err)
	}
	if opts != nil {
		binary, err := runtimeBinary(opts.BinaryName)
		if err != nil {
			fmt.Fprintf(warn, "cannot delete the container's runtime state: %v\n", err)
		} else {
			root := opts.Root
			if root == "" {
				root = DefaultRuntimeRoot
			}
			rt := &ocicli.Runtime{Binary: binary, Root: filepath.Join(root, f.Namespace), LogFile: filepath.Join(bundle, "log.json")}
			if err := rt.Delete(ctx, f.ID, true); err != nil && !ocicli.IsNotFound(err) {
				fmt.Fprintf(warn, "runtime delete --force %s: %v\n", f.ID, err)
			}
		}
	}
	if err := mount.UnmountAll(filepath.Join(bundle, "rootfs")); err != nil {
		fmt.Fprintf(warn, "%v\n", err)
	}
	removeDeadSocket(bundle)
	pid, _ := readPidFile(filepath.Join(bundle, "init.pid"))
	return &taskapi.DeleteResponse{
		Pid:        uint32(pid),
		ExitStatus: 128 + uint32(unix.SIGKILL),
		ExitedAt:   timestamppb.Now(),
	}, nil
}

// removeDeadSocket removes the socket the bundle's address names if no
// shim listens on it any more (the shim was killed).
func removeDeadSocket(bundle string) {
	b, err := os.ReadFile(filepath.Join(bundle, launch.AddressFile))
	if err != nil {
		return
	}
	path := strings.TrimPrefix(strings.TrimSpace(string(b)), "unix://")
	if filepath.Dir(path) != launch.SocketDir {
		return
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return
	}
	_ = os.Remove(path)
}

// MarshalDeleteResponse is what `delete` prints.
func MarshalDeleteResponse(r *taskapi.DeleteResponse) ([]byte, error) { return proto.Marshal(r) }

// Serve is the long-lived shim: it serves the task API on the listener
// inherited as fd 3 until Shutdown (with no container left) or SIGTERM.
func Serve(f Flags) error {
	// Set for the shim's own runtime by launch (see serverEnv); the
	// runtime and other children get the daemon's environment without it.
	os.Unsetenv("GOMAXPROCS")
	logw := openLog()
	level := slog.LevelInfo
	if f.Debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level})).With("shim", f.ID, "pid", os.Getpid())

	// A closed log reader must not kill us: handled, SIGPIPE only makes
	// the write fail (and children get the default disposition back).
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, unix.SIGTERM, unix.SIGINT, unix.SIGPIPE, unix.SIGUSR1)

	r, err := reaper.New()
	if err != nil {
		return err
	}
	// FileListener dups fd 3 (close-on-exec); the inherited fd itself is
	// not, and would leak into every runtime and container process.
	inherited := os.NewFile(3, "listener")
	l, err := net.FileListener(inherited)
	inherited.Close()
	if err != nil {
		return fmt.Errorf("the listener (fd 3): %w", err)
	}
	socket := l.Addr().String()

	server, err := ttrpc.NewServer(ttrpc.WithServerHandshaker(ttrpc.UnixSocketRequireSameUser()))
	if err != nil {
		return err
	}
	done := make(chan struct{}, 1)
	svc := NewService(Config{
		Namespace:     f.Namespace,
		EventsAddress: os.Getenv("TTRPC_ADDRESS"),
		Log:           log,
		Reaper:        r,
		Shutdown: func() {
			select {
			case done <- struct{}{}:
			default:
			}
		},
	})
	taskapi.RegisterTTRPCTaskService(server, svc)
	serveErr := make(chan error, 1)
	go func() { serveErr <- server.Serve(context.Background(), l) }()
	log.Info("serving", "socket", socket, "namespace", f.Namespace)

wait:
	for {
		select {
		case sig := <-signals:
			switch sig {
			case unix.SIGPIPE:
				continue
			case unix.SIGUSR1:
				buf := make([]byte, 256<<10)
				_, _ = logw.Write(buf[:goruntime.Stack(buf, true)])
				var ms goruntime.MemStats
				goruntime.ReadMemStats(&ms)
				log.Info("memory", "heapInuse", ms.HeapInuse, "heapIdle", ms.HeapIdle, "heapReleased", ms.HeapReleased,
					"stackInuse", ms.StackInuse, "mspan", ms.MSpanInuse, "mcache", ms.MCacheInuse, "gcSys", ms.GCSys,
					"otherSys", ms.OtherSys, "buckHash", ms.BuckHashSys, "sys", ms.Sys, "numGC", ms.NumGC, "goroutines", goruntime.NumGoroutine())
				continue
			}
			log.Info("exiting on signal", "signal", sig)
		case <-done:
			log.Info("shutdown: no container left")
		case err := <-serveErr:
			if err != nil && !errors.Is(err, ttrpc.ErrServerClosed) {
				log.Error("serve", "err", err)
			}
		}
		break wait
	}
	// Let the Shutdown reply go out before closing.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = server.Shutdown(ctx)
	cancel()
	_ = os.Remove(socket)
	svc.Close()
	return nil
}

// openLog opens the "log" FIFO the daemon reads in the bundle (the
// current directory) and makes it stderr; without one, logs go to stderr
// as it is. Non-blocking: with no reader, or a full FIFO, log lines are
// lost rather than the shim stalled.
func openLog() io.Writer {
	f, err := os.OpenFile("log", os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return os.Stderr
	}
	if err := unix.Dup3(int(f.Fd()), 2, 0); err != nil {
		return f
	}
	f.Close()
	return os.Stderr
}
