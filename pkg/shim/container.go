package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/pkg/mount"
	"github.com/xstack/xstack/pkg/ocicli"
	"github.com/xstack/xstack/pkg/runtime/cgroups"
	"github.com/xstack/xstack/pkg/shim/launch"
	"github.com/xstack/xstack/pkg/shim/reaper"
)

// DefaultRuntimeRoot is where runtime state goes when the options name no
// root: <DefaultRuntimeRoot>/<namespace>.
const DefaultRuntimeRoot = "/run/xstack/runtime"

// DefaultRuntime is the runtime binary used when the options name none.
const DefaultRuntime = "xrunc"

// container is one task the shim serves.
type container struct {
	id        string
	namespace string
	bundle    string
	runtime   *ocicli.Runtime
	init      *process
	// killAllOnInitExit: the container shares a pid namespace, so its
	// other processes survive the init unless killed.
	killAllOnInitExit bool
	rootfsMounted     bool
	cgroup            cgroups.Manager // nil if it could not be found
	stopOOM           func()

	mu              sync.Mutex
	execs           map[string]*process
	paused, pausing bool
	runningExecs    int
	initExited      bool
	pendingInitExit *reaper.Exit
}

func (c *container) process(execID string) (*process, error) {
	if execID == "" {
		return c.init, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.execs[execID]
	if !ok {
		return nil, classf(errdefs.ErrNotFound, "exec %q of container %s does not exist", execID, c.id)
	}
	return p, nil
}

// runtimeOptions decodes the task options (containerd.runc.v1.Options, as
// containerd and xd send them); nil means defaults.
func runtimeOptions(a typeurl.Any) (*options.Options, error) {
	opts := &options.Options{}
	if a == nil || a.GetTypeUrl() == "" {
		return opts, nil
	}
	v, err := typeurl.UnmarshalAny(a)
	if err != nil {
		return nil, classf(errdefs.ErrInvalidArgument, "task options of type %s: %w", a.GetTypeUrl(), err)
	}
	switch o := v.(type) {
	case *options.Options:
		return o, nil
	default:
		return nil, classf(errdefs.ErrInvalidArgument, "task options of type %s are not supported (want containerd.runc.v1.Options)", a.GetTypeUrl())
	}
}

// runtimeBinary resolves the runtime to run: the options' binary_name,
// else xrunc installed beside the shim, else xrunc on PATH.
func runtimeBinary(name string) (string, error) {
	if name == "" {
		if self, err := os.Executable(); err == nil {
			beside := filepath.Join(filepath.Dir(self), DefaultRuntime)
			if _, err := os.Stat(beside); err == nil {
				return beside, nil
			}
		}
		name = DefaultRuntime
	}
	path, err := exec.LookPath(name)
	if err == nil {
		// A name with a slash stays relative (to the shim's working
		// directory, the bundle): the runtime CLI wants it absolute.
		path, err = filepath.Abs(path)
	}
	if err != nil {
		return "", classf(errdefs.ErrFailedPrecondition, "runtime binary %q: %w", name, err)
	}
	return path, nil
}

// newRuntime is the runtime CLI for containers of namespace ns.
func (s *Service) newRuntime(ns, bundle string, opts *options.Options) (*ocicli.Runtime, error) {
	binary, err := runtimeBinary(opts.BinaryName)
	if err != nil {
		return nil, err
	}
	root := opts.Root
	if root == "" {
		root = DefaultRuntimeRoot
	}
	return &ocicli.Runtime{
		Binary:        binary,
		Root:          filepath.Join(root, ns),
		LogFile:       filepath.Join(bundle, "log.json"),
		SystemdCgroup: opts.SystemdCgroup,
		Spawner:       s.reaper,
	}, nil
}

// sharesPidNamespace reports whether the bundle's spec gives the container
// no pid namespace of its own.
func sharesPidNamespace(bundle string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return false, classf(errdefs.ErrNotFound, "bundle %s: %w", bundle, err)
	}
	if err != nil {
		return false, fmt.Errorf("read the bundle's config: %w", err)
	}
	var spec struct {
		Linux *struct {
			Namespaces []specs.LinuxNamespace `json:"namespaces"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return false, classf(errdefs.ErrInvalidArgument, "%s: %w", filepath.Join(bundle, "config.json"), err)
	}
	if spec.Linux != nil {
		for _, ns := range spec.Linux.Namespaces {
			if ns.Type == specs.PIDNamespace && ns.Path == "" {
				return false, nil
			}
		}
	}
	return true, nil
}

// readPidFile reads a pid file the runtime wrote.
func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: bad content %q", path, b)
	}
	return pid, nil
}

// create makes the container: rootfs mounts, stdio, `runtime create`.
// On failure it leaves nothing behind.
func (s *Service) create(ctx context.Context, ns string, r *taskapi.CreateTaskRequest) (_ *container, err error) {
	if r.Checkpoint != "" || r.ParentCheckpoint != "" {
		return nil, classf(errdefs.ErrNotImplemented, "restore from a checkpoint is not implemented")
	}
	if !filepath.IsAbs(r.Bundle) {
		return nil, classf(errdefs.ErrInvalidArgument, "bundle %q is not an absolute path", r.Bundle)
	}
	opts, err := runtimeOptions(r.Options)
	if err != nil {
		return nil, err
	}
	rt, err := s.newRuntime(ns, r.Bundle, opts)
	if err != nil {
		return nil, err
	}
	killAll, err := sharesPidNamespace(r.Bundle)
	if err != nil {
		return nil, err
	}
	if err := launch.WriteOptions(r.Bundle, opts); err != nil {
		return nil, fmt.Errorf("write options: %w", err)
	}
	c := &container{
		id: r.ID, namespace: ns, bundle: r.Bundle, runtime: rt,
		killAllOnInitExit: killAll,
		execs:             map[string]*process{},
		stopOOM:           func() {},
	}
	defer func() {
		if err != nil {
			s.release(c, true)
		}
	}()
	if len(r.Rootfs) > 0 {
		rootfs := filepath.Join(r.Bundle, "rootfs")
		if err := os.Mkdir(rootfs, 0o711); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("rootfs: %w", err)
		}
		if err := mount.All(r.Rootfs, rootfs); err != nil {
			return nil, fmt.Errorf("rootfs: %w", err)
		}
		c.rootfsMounted = true
	}

	stdio := stdioPaths{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal}
	c.init = newProcess(c, "", stdio)
	if c.init.io, err = openIO(stdio, ns, r.ID, s.reaper); err != nil {
		return nil, classf(errdefs.ErrInvalidArgument, "stdio: %w", err)
	}
	var console *consoleSocket
	if r.Terminal {
		if console, err = newConsoleSocket(); err != nil {
			return nil, err
		}
		defer console.close()
	}
	createOpts := ocicli.CreateOpts{
		PidFile:      filepath.Join(r.Bundle, "init.pid"),
		IO:           c.init.io.container,
		NoPivot:      opts.NoPivotRoot,
		NoNewKeyring: opts.NoNewKeyring,
	}
	if console != nil {
		createOpts.ConsoleSocket = console.path
	}
	w := s.watchStart()
	if err := rt.Create(ctx, r.ID, r.Bundle, createOpts); err != nil {
		s.cancelStart(w)
		return nil, runtimeError("create", err)
	}
	c.init.io.containerFilesHandedOver()
	pid, err := readPidFile(createOpts.PidFile)
	if err != nil {
		s.cancelStart(w)
		return nil, fmt.Errorf("runtime create: %w", err)
	}
	s.started(w, c.init, pid)
	if console != nil {
		master, err := console.receive()
		if err != nil {
			return nil, err
		}
		if err := c.init.io.attachConsole(master, stdio); err != nil {
			return nil, err
		}
	}
	if cg, err := cgroups.ForPid(pid); err == nil {
		c.cgroup = cg
	} else {
		s.log.Warn("no cgroup for the container: no stats or OOM events", "id", r.ID, "err", err)
	}
	return c, nil
}

// release frees what a container holds: its runtime state (with
// forceDelete), its processes' stdio and pid files, the OOM watch and the
// rootfs mount. It undoes a create that failed half-way, and finishes a
// delete.
func (s *Service) release(c *container, forceDelete bool) {
	if forceDelete {
		if c.init != nil {
			s.forget(c.init)
		}
		if err := c.runtime.Delete(context.Background(), c.id, true); err != nil {
			s.log.Warn("runtime delete --force", "id", c.id, "err", err)
		}
	}
	c.mu.Lock()
	execs := make([]*process, 0, len(c.execs))
	for _, e := range c.execs {
		execs = append(execs, e)
	}
	c.execs = map[string]*process{}
	c.mu.Unlock()
	for _, e := range execs {
		s.forget(e)
		e.closePidfd()
		if e.io != nil {
			e.io.close()
		}
		_ = os.Remove(filepath.Join(c.bundle, e.id+".pid"))
	}
	if c.init != nil && c.init.io != nil {
		c.init.io.close()
	}
	c.stopOOM()
	if c.rootfsMounted {
		if err := mount.UnmountAll(filepath.Join(c.bundle, "rootfs")); err != nil {
			s.log.Warn("unmount rootfs", "id", c.id, "err", err)
		}
		c.rootfsMounted = false
	}
}

// runtimeError gives a runtime failure containerd's wording and an error
// class: "does not exist"/"not running" mean NotFound.
func runtimeError(op string, err error) error {
	msg := err.Error()
	var rerr *ocicli.Error
	if errors.As(err, &rerr) && rerr.LogMessage != "" {
		msg = rerr.LogMessage
	}
	var class error = errdefs.ErrUnknown
	switch {
	case ocicli.IsNotFound(err):
		class = errdefs.ErrNotFound
	case errors.Is(err, reaper.ErrNotStarted):
		class = errdefs.ErrFailedPrecondition
	}
	return classf(class, "OCI runtime %s failed: %s", op, msg)
}
