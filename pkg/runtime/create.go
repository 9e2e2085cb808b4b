package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/atomicfile"
	"github.com/xstack/xstack/pkg/runtime/cgroups"
	"github.com/xstack/xstack/pkg/runtime/hooks"
	"github.com/xstack/xstack/pkg/runtime/proc"
	rspec "github.com/xstack/xstack/pkg/runtime/spec"
	"github.com/xstack/xstack/pkg/runtime/syncproto"
)

// CreateOpts are the options of "xrunc create".
type CreateOpts struct {
	Bundle        string
	PidFile       string
	ConsoleSocket string
	// Console is an already connected console socket (xrunc run with a
	// terminal uses a socketpair); it wins over ConsoleSocket.
	Console      *os.File
	NoPivot      bool
	NoNewKeyring bool
	// Preserved are the caller's fds that the container keeps, in order
	// (they become fds 3, 4, ...).
	Preserved []*os.File
	Stdio     Stdio
}

// Create creates a container from a bundle and leaves its init waiting
// for Start. On any error nothing is left behind: no state directory,
// cgroup, mount or process.
func (r *Runtime) Create(id string, o CreateOpts) (c *Container, err error) {
	t0 := time.Now()
	// The sealed copy of ourselves takes a while to write; make it while
	// the config is read and checked.
	exe := sealedExe()
	defer exe.discard()
	step := func(name string) {
		r.log().Debug("create", "id", id, "step", name, "ms", float64(time.Since(t0).Microseconds())/1000)
	}
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle path: %w", err)
	}
	s, err := rspec.Load(bundle)
	if err != nil {
		return nil, err
	}
	if err := rspec.Validate(s, bundle); err != nil {
		return nil, err
	}
	rspec.AbsBindSources(s, bundle)
	step("spec validated")
	if !rspec.HasNamespace(s, specs.MountNamespace) {
		return nil, errors.New("linux.namespaces: a mount namespace is required")
	}
	terminal := s.Process.Terminal
	hasConsole := o.Console != nil || o.ConsoleSocket != ""
	switch {
	case terminal && !hasConsole:
		return nil, errors.New("cannot allocate tty if xrunc will detach without setting console socket")
	case !terminal && hasConsole:
		return nil, errors.New("cannot use console socket if xrunc will not detach or allocate tty")
	}

	if err := r.ensureRoot(); err != nil {
		return nil, err
	}
	dir := r.dir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, ErrExist
		}
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer lock.Close()

	var cg cgroups.Manager
	var ip *initProcess
	defer func() {
		if err == nil {
			return
		}
		if ip != nil {
			ip.kill()
		}
		if cg != nil {
			_ = cg.Destroy()
		}
		os.RemoveAll(dir)
	}()

	cgroupsPath := ""
	if s.Linux != nil {
		cgroupsPath = s.Linux.CgroupsPath
	}
	cg, err = cgroups.New(cgroupsPath, id)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	st := &State{
		Version:      stateVersion,
		ID:           id,
		Bundle:       bundle,
		Rootfs:       rspec.RootfsPath(s, bundle),
		Created:      time.Now().UTC(),
		CgroupPaths:  cg.Paths(),
		Namespaces:   s.Linux.Namespaces,
		Annotations:  s.Annotations,
		Hooks:        s.Hooks,
		NoNewKeyring: o.NoNewKeyring,
	}
	// A first save without an init, so that if this process is killed from
	// here on, "delete --force" still finds the cgroup to remove.
	if err := st.save(dir); err != nil {
		return nil, err
	}
	// Creating cgroup directories is slow (a v1 cpuset directory takes
	// milliseconds): do it while the init starts, and only move the init in
	// once its pid is known.
	cgMade := make(chan error, 1)
	go func() { cgMade <- cg.Apply(-1) }()

	start := &initStart{
		cfg: &syncproto.InitConfig{
			Mode:         syncproto.ModeCreate,
			ID:           id,
			Spec:         s,
			Process:      s.Process,
			Bundle:       bundle,
			Rootfs:       st.Rootfs,
			NoPivot:      o.NoPivot,
			NoNewKeyring: o.NoNewKeyring,
			CgroupPaths:  st.CgroupPaths,
		},
		uidMaps:   s.Linux.UIDMappings,
		gidMaps:   s.Linux.GIDMappings,
		stdio:     o.Stdio,
		preserved: o.Preserved,
	}
	for _, ns := range s.Linux.Namespaces {
		flag := rspec.NamespaceTypes[ns.Type]
		switch {
		case ns.Path != "":
			f, err := os.Open(ns.Path)
			if err != nil {
				return nil, fmt.Errorf("open %s namespace path: %w", ns.Type, err)
			}
			start.joins = append(start.joins, nsFile{f, flag})
		case ns.Type == specs.CgroupNamespace:
			// Created by the init once it sits in its cgroup.
			start.cfg.NewCgroupNS = true
		default:
			start.cloneFlags |= flag
		}
	}

	fifo, err := makeExecFifo(dir, s)
	if err != nil {
		return nil, err
	}
	defer fifo.Close()
	start.fifo = fifo

	console, err := connectConsole(o)
	if err != nil {
		return nil, err
	}
	if console != nil {
		defer console.Close()
		start.console = console
	}

	step("state saved")
	if start.exe, err = exe.get(); err != nil {
		return nil, err
	}
	ip, err = startInit(start)
	if cerr := <-cgMade; err == nil && cerr != nil {
		err = fmt.Errorf("cgroups: %w", cerr)
	}
	if err != nil {
		return nil, err
	}
	step("init started")
	// Into the cgroup before the init runs anything of the container's
	// (hooks included), so no process can escape it.
	if err := cg.Enter(ip.pid); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	step("cgroup entered")
	if err := ip.conn.Send(&syncproto.Message{Type: syncproto.TypeConfig, Config: start.cfg}); err != nil {
		return nil, err
	}
	if err := runCreateHooks(ip, s, st); err != nil {
		return nil, err
	}
	if _, _, err := ip.conn.Expect(syncproto.TypeReady); err != nil {
		return nil, err
	}
	step("init ready")
	// Limits apply from here on: the init's own start-up (its runtime's
	// threads count against pids.max and RLIMIT_NPROC) is not the
	// container's workload.
	if err := cg.Set(containerResources(s)); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if err := applyLimits(ip.pid, s.Process); err != nil {
		return nil, err
	}

	pst, err := proc.ReadStat(ip.pid)
	if err != nil {
		return nil, fmt.Errorf("read start time of the container init: %w", err)
	}
	st.InitPid, st.InitStartTime = ip.pid, pst.StartTime
	if err := st.save(dir); err != nil {
		return nil, err
	}
	if err := ip.conn.Send(&syncproto.Message{Type: syncproto.TypeRun}); err != nil {
		return nil, err
	}
	if err := ip.finish(); err != nil {
		return nil, err
	}
	step("init done")
	ip.conn.Close()
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, ip.pid); err != nil {
			return nil, err
		}
	}
	c = &Container{rt: r, id: id, dir: dir, state: st}
	c.initProc = ip.proc
	return c, nil
}

// runCreateHooks runs prestart and createRuntime hooks when the init asks
// for them (see syncproto).
func runCreateHooks(ip *initProcess, s *specs.Spec, st *State) error {
	if len(hooks.Of(s, hooks.Prestart))+len(hooks.Of(s, hooks.CreateRuntime))+len(hooks.Of(s, hooks.CreateContainer)) == 0 {
		return nil
	}
	if _, _, err := ip.conn.Expect(syncproto.TypeHooks); err != nil {
		return err
	}
	state := st.hookState(specs.StateCreating, ip.pid)
	for _, kind := range []string{hooks.Prestart, hooks.CreateRuntime} {
		if err := hooks.Run(kind, hooks.Of(s, kind), state); err != nil {
			return err
		}
	}
	return ip.conn.Send(&syncproto.Message{Type: syncproto.TypeHooksDone})
}

// makeExecFifo creates the fifo the init blocks on until "start", owned by
// the container's root so that a user-namespaced init can open it.
func makeExecFifo(dir string, s *specs.Spec) (*os.File, error) {
	path := filepath.Join(dir, fifoFile)
	if err := unix.Mkfifo(path, 0o622); err != nil {
		return nil, fmt.Errorf("create exec fifo: %w", err)
	}
	uid, gid := rootIDs(s)
	if err := os.Chown(path, uid, gid); err != nil {
		return nil, fmt.Errorf("chown exec fifo: %w", err)
	}
	f, err := os.OpenFile(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open exec fifo: %w", err)
	}
	return f, nil
}

// rootIDs returns the host ids of the container's root user.
func rootIDs(s *specs.Spec) (int, int) {
	if s.Linux == nil {
		return 0, 0
	}
	host := func(maps []specs.LinuxIDMapping) int {
		for _, m := range maps {
			if m.ContainerID == 0 {
				return int(m.HostID)
			}
		}
		return 0
	}
	return host(s.Linux.UIDMappings), host(s.Linux.GIDMappings)
}

func connectConsole(o CreateOpts) (*os.File, error) {
	if o.Console != nil {
		return o.Console, nil
	}
	if o.ConsoleSocket == "" {
		return nil, nil
	}
	return dialConsole(o.ConsoleSocket)
}

// dialConsole connects to a console socket and returns the connection as
// a file for the init to inherit.
func dialConsole(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect to console socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), "console-socket"), nil
}

// writePidFile writes the pid atomically, as runc does (no newline).
func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(abs, []byte(strconv.Itoa(pid)), 0o644, false)
}
