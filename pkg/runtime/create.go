package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/atomicfile"
	"github.com/xstack/xstack/pkg/runtime/cgroups"
	"github.com/xstack/xstack/pkg/runtime/exeseal"
	"github.com/xstack/xstack/pkg/runtime/hooks"
	"github.com/xstack/xstack/pkg/runtime/idmap"
	"github.com/xstack/xstack/pkg/runtime/netdev"
	"github.com/xstack/xstack/pkg/runtime/proc"
	"github.com/xstack/xstack/pkg/runtime/rootfs"
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
func (r *Runtime) Create(id string, o CreateOpts) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle path: %w", err)
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

	cr := &creation{rt: r, id: id, dir: dir, bundle: bundle, opts: o, t0: time.Now()}
	c, err := cr.run()
	cr.release()
	if err != nil {
		cr.undo()
	}
	if cr.netns != nil {
		cr.netns.Close() // after undo, which may move devices back out of it
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// creation is one Create in progress and what it must undo on failure.
type creation struct {
	rt     *Runtime
	id     string
	dir    string
	bundle string
	opts   CreateOpts
	t0     time.Time

	spec     *specs.Spec
	specJSON []byte // config.json as read, for the init
	st       *State
	cg       cgroups.Manager
	ip       *initProcess
	// fifo and console are handed to the init; closed by release.
	fifo, console *os.File
	ownConsole    bool
	// netDevices are the devices moved into the container's network
	// namespace netns (host name to name inside), to move back on
	// failure.
	netDevices map[string]string
	netns      *os.File
}

func (cr *creation) step(name string) {
	cr.rt.log().Debug("create", "id", cr.id, "step", name, "ms", float64(time.Since(cr.t0).Microseconds())/1000)
}

// run does the work. The container's init is forked before the config is
// even read, with a new pid namespace only: most configs ask for exactly
// that, and the init's start-up (a Go runtime, milliseconds) then overlaps
// with reading and checking the config. The init creates or joins the
// other namespaces itself. A config that needs something else at fork time
// (a user namespace, a shared or joined pid namespace) gets a fresh init
// forked with everything in place.
func (cr *creation) run() (*Container, error) {
	var err error
	if cr.fifo, err = makeExecFifo(cr.dir); err != nil {
		return nil, err
	}
	if cr.console, err = connectConsole(cr.opts); err != nil {
		return nil, err
	}
	cr.ownConsole = cr.opts.Console == nil
	exe, err := exeseal.Open(cr.dir)
	if err != nil {
		return nil, err
	}
	early := cr.initStart(exe, unix.CLONE_NEWPID)
	if cr.ip, err = startInit(early); err != nil {
		return nil, err
	}
	cr.step("init forked")

	if err := cr.loadSpec(); err != nil {
		return nil, err
	}
	cr.step("spec validated")
	s := cr.spec
	cfg, fds, err := cr.initConfig(early)
	if err != nil {
		return nil, err
	}
	defer closeJoins(fds)
	if fds == nil && cfg == nil {
		// The early init cannot be this container's: fork another.
		cr.ip.kill()
		cr.ip = nil
		if exe, err = exeseal.Open(cr.dir); err != nil {
			return nil, err
		}
		late := cr.initStart(exe, 0)
		if err := cr.lateNamespaces(late); err != nil {
			return nil, err
		}
		if cr.ip, err = startInit(late); err != nil {
			return nil, err
		}
		cfg = late.cfg
		cr.step("init forked again")
	}
	cr.completeConfig(cfg)
	indexes, trees, err := bindTrees(s, cr.bundle)
	if err != nil {
		return nil, err
	}
	defer closeFiles(trees)
	cfg.BindTrees = indexes

	if cr.cg, err = cgroups.New(cgroupsPath(s), cr.id); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	cr.st = &State{
		Version:      stateVersion,
		ID:           cr.id,
		Bundle:       cr.bundle,
		Rootfs:       rspec.RootfsPath(s, cr.bundle),
		Created:      time.Now().UTC(),
		CgroupPaths:  cr.cg.Paths(),
		Namespaces:   s.Linux.Namespaces,
		Annotations:  s.Annotations,
		Hooks:        s.Hooks,
		NoNewKeyring: cr.opts.NoNewKeyring,
		Seccomp:      s.Linux.Seccomp,
		MemoryPolicy: s.Linux.MemoryPolicy,
	}
	cfg.Rootfs, cfg.Cgroups = cr.st.Rootfs, cr.cg.Hierarchies()
	// While the init boots: a first save without an init, so that if this
	// process is killed from here on "delete --force" still finds the
	// cgroup to remove; then the cgroup directories (slow: a v1 cpuset
	// directory takes milliseconds). The init moves in once it runs.
	cgMade := make(chan error, 1)
	go func() {
		if err := cr.st.save(cr.dir); err != nil {
			cgMade <- err
			return
		}
		if err := cr.cg.Apply(-1); err != nil {
			cgMade <- fmt.Errorf("cgroups: %w", err)
			return
		}
		cgMade <- nil
	}()
	err = cr.ip.conn.SendConfig(cfg, append(fdsOf(fds), fdsOfFiles(trees)...)...)
	if cerr := <-cgMade; err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}

	ip := cr.ip
	// Into the cgroup before the init runs anything of the container's
	// (hooks included), so no process can escape it.
	if _, _, err := ip.conn.Expect(syncproto.TypeBooted); err != nil {
		return nil, err
	}
	if err := cr.cg.Enter(ip.pid); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if err := ip.conn.Send(&syncproto.Message{Type: syncproto.TypePlaced}); err != nil {
		return nil, err
	}
	cr.step("cgroup entered")
	if err := cr.runCreateHooks(cfg); err != nil {
		return nil, err
	}
	if _, _, err := ip.conn.Expect(syncproto.TypeReady); err != nil {
		return nil, err
	}
	cr.step("init ready")
	// Limits apply from here on: the init's own start-up (its runtime's
	// threads count against pids.max and RLIMIT_NPROC) is not the
	// container's workload.
	if err := cr.cg.Set(containerResources(s)); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if err := applyLimits(ip.pid, s.Process); err != nil {
		return nil, err
	}
	pst, err := proc.ReadStat(ip.pid)
	if err != nil {
		return nil, fmt.Errorf("read start time of the container init: %w", err)
	}
	cr.st.InitPid, cr.st.InitStartTime = ip.pid, pst.StartTime
	if err := cr.st.save(cr.dir); err != nil {
		return nil, err
	}
	if err := ip.conn.Send(&syncproto.Message{Type: syncproto.TypeRun}); err != nil {
		return nil, err
	}
	if err := ip.finish(s.Linux.Seccomp, cr.st.hookState(specs.StateCreating, ip.pid)); err != nil {
		return nil, err
	}
	cr.step("init done")
	ip.conn.Close()
	if cr.opts.PidFile != "" {
		if err := writePidFile(cr.opts.PidFile, ip.pid); err != nil {
			return nil, err
		}
	}
	return &Container{rt: cr.rt, id: cr.id, dir: cr.dir, state: cr.st, initProc: ip.proc}, nil
}

// loadSpec reads and checks the bundle's config.
func (cr *creation) loadSpec() error {
	s, raw, err := rspec.LoadRaw(cr.bundle)
	if err != nil {
		return err
	}
	cr.specJSON = raw
	if err := rspec.Validate(s, cr.bundle); err != nil {
		return err
	}
	rspec.AbsBindSources(s, cr.bundle)
	if !rspec.HasNamespace(s, specs.MountNamespace) {
		return errors.New("linux.namespaces: a mount namespace is required")
	}
	hasConsole := cr.console != nil
	switch {
	case s.Process.Terminal && !hasConsole:
		return errors.New("cannot allocate tty if xrunc will detach without setting console socket")
	case !s.Process.Terminal && hasConsole:
		return errors.New("cannot use console socket if xrunc will not detach or allocate tty")
	}
	// A user-namespaced init opens the fifo as the container's root.
	uid, gid := rootIDs(s)
	if err := os.Chown(filepath.Join(cr.dir, fifoFile), uid, gid); err != nil {
		return fmt.Errorf("chown exec fifo: %w", err)
	}
	cr.spec = s
	return nil
}

// initStart describes an init for this container with the given clone
// flags; the rest of its config is filled in later.
func (cr *creation) initStart(exe *os.File, cloneFlags uintptr) *initStart {
	return &initStart{
		cfg:        &syncproto.InitConfig{Mode: syncproto.ModeCreate, ID: cr.id},
		cloneFlags: cloneFlags,
		stdio:      cr.opts.Stdio,
		preserved:  cr.opts.Preserved,
		console:    cr.console,
		fifo:       cr.fifo,
		exe:        exe,
	}
}

// initConfig returns the config for the early init, which was forked with
// only a new pid namespace, and the namespace files it must enter itself
// (sent along with the config). It returns nil, nil if the early init
// cannot serve this spec.
func (cr *creation) initConfig(early *initStart) (*syncproto.InitConfig, []nsFile, error) {
	pid, ok := rspec.FindNamespace(cr.spec, specs.PIDNamespace)
	if !ok || pid.Path != "" || rspec.HasNamespace(cr.spec, specs.UserNamespace) || rspec.HasNamespace(cr.spec, specs.TimeNamespace) {
		return nil, nil, nil
	}
	cfg := early.cfg
	var joins []nsFile
	for _, ns := range cr.spec.Linux.Namespaces {
		flag := rspec.NamespaceTypes[ns.Type]
		switch {
		case ns.Type == specs.PIDNamespace:
		case ns.Type == specs.CgroupNamespace && ns.Path == "":
			cfg.NewCgroupNS = true
		case ns.Path != "":
			f, err := os.Open(ns.Path)
			if err != nil {
				closeJoins(joins)
				return nil, nil, fmt.Errorf("open %s namespace path: %w", ns.Type, err)
			}
			joins = append(joins, nsFile{f, flag})
			cfg.JoinTypes = append(cfg.JoinTypes, flag)
		default:
			cfg.Unshare |= flag
		}
	}
	return cfg, joins, nil
}

// lateNamespaces sets up an init forked with every namespace in place.
func (cr *creation) lateNamespaces(late *initStart) error {
	s := cr.spec
	late.uidMaps, late.gidMaps = s.Linux.UIDMappings, s.Linux.GIDMappings
	for _, ns := range s.Linux.Namespaces {
		flag := rspec.NamespaceTypes[ns.Type]
		switch {
		case ns.Path != "":
			f, err := os.Open(ns.Path)
			if err != nil {
				closeJoins(late.joins)
				return fmt.Errorf("open %s namespace path: %w", ns.Type, err)
			}
			late.joins = append(late.joins, nsFile{f, flag})
		case ns.Type == specs.CgroupNamespace:
			// Created by the init once it sits in its cgroup.
			late.cfg.NewCgroupNS = true
		case ns.Type == specs.TimeNamespace:
			late.newTime, late.timeOffsets = true, s.Linux.TimeOffsets
		default:
			late.cloneFlags |= flag
		}
	}
	return nil
}

// completeConfig adds the container's description to the init's config.
func (cr *creation) completeConfig(cfg *syncproto.InitConfig) {
	s := cr.spec
	cfg.SpecJSON = cr.specJSON
	cfg.CreateHooks = len(hooks.Of(s, hooks.Prestart))+len(hooks.Of(s, hooks.CreateRuntime))+len(hooks.Of(s, hooks.CreateContainer)) > 0 ||
		len(s.Linux.NetDevices) > 0
	cfg.Bundle = cr.bundle
	cfg.NoPivot = cr.opts.NoPivot
	cfg.NoNewKeyring = cr.opts.NoNewKeyring
}

// release closes what this process no longer needs either way.
func (cr *creation) release() {
	if cr.fifo != nil {
		cr.fifo.Close()
	}
	if cr.console != nil && cr.ownConsole {
		cr.console.Close()
	}
}

// undo removes everything a failed create made.
func (cr *creation) undo() {
	if cr.ip != nil {
		// Before the namespace goes with the init: a virtual device
		// would go with it, a physical one to the host's first namespace.
		if cr.netDevices != nil {
			netdev.MoveBack(cr.netDevices, cr.netns)
		}
		cr.ip.kill()
	}
	if cr.cg != nil {
		_ = cr.cg.Destroy()
	}
	os.RemoveAll(cr.dir)
}

func cgroupsPath(s *specs.Spec) string {
	if s.Linux == nil {
		return ""
	}
	return s.Linux.CgroupsPath
}

// bindTrees makes the detached trees of the bind mounts that the init
// gets ready-made, and returns them with their mount indexes: the
// id-mapped ones, and, in a container with a user namespace, all of them.
// Its init is root only in that namespace, so a source below a directory
// it may not search (podman keeps /etc/hosts and the like in a 0700 dir)
// is out of its reach; runc, too, opens bind sources before its init
// enters the namespace. Where we may not clone mounts ourselves (EPERM:
// not root), the init tries on its own.
func bindTrees(s *specs.Spec, bundle string) ([]int, []*os.File, error) {
	userNS := rspec.HasNamespace(s, specs.UserNamespace)
	var indexes []int
	var trees []*os.File
	for i, m := range s.Mounts {
		var t *os.File
		var err error
		switch {
		case rootfs.IsIDMapped(m):
			uids, gids := m.UIDMappings, m.GIDMappings
			if len(uids) == 0 && len(gids) == 0 {
				uids, gids = s.Linux.UIDMappings, s.Linux.GIDMappings
			}
			recursive := slices.Contains(m.Options, "rbind") || slices.Contains(m.Options, "ridmap")
			t, err = idmap.Tree(rspec.BindSource(m, bundle), recursive, uids, gids)
		case userNS && rspec.IsBind(m):
			src := rspec.BindSource(m, bundle)
			fd, oerr := rootfs.OpenBindTree(src, slices.Contains(m.Options, "rbind"))
			switch {
			case errors.Is(oerr, unix.EPERM):
				continue
			case oerr != nil:
				err = fmt.Errorf("bind source %s: %w", src, oerr)
			default:
				t = os.NewFile(uintptr(fd), "bind:"+src)
			}
		default:
			continue
		}
		if err != nil {
			closeFiles(trees)
			return nil, nil, fmt.Errorf("mounts[%d] (%s): %w", i, m.Destination, err)
		}
		indexes, trees = append(indexes, i), append(trees, t)
	}
	return indexes, trees, nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

func fdsOfFiles(fs []*os.File) []int {
	fds := make([]int, len(fs))
	for i, f := range fs {
		fds[i] = int(f.Fd())
	}
	return fds
}

func fdsOf(joins []nsFile) []int {
	fds := make([]int, len(joins))
	for i, j := range joins {
		fds[i] = int(j.f.Fd())
	}
	return fds
}

// runCreateHooks moves the network devices in and runs prestart and
// createRuntime hooks when the init pauses for them (see syncproto).
func (cr *creation) runCreateHooks(cfg *syncproto.InitConfig) error {
	ip, s, st := cr.ip, cr.spec, cr.st
	if !cfg.CreateHooks {
		return nil
	}
	if _, _, err := ip.conn.Expect(syncproto.TypeHooks); err != nil {
		return err
	}
	// The devices are there before any hook runs, as prestart hooks
	// that set up the network expect.
	if len(s.Linux.NetDevices) > 0 {
		devices := map[string]string{}
		for hostName, d := range s.Linux.NetDevices {
			devices[hostName] = d.Name
		}
		// Held open until create ends: if the init dies on a later
		// error, the namespace, and the devices in it, outlive it.
		ns, err := os.Open("/proc/" + strconv.Itoa(ip.pid) + "/ns/net")
		if err != nil {
			return fmt.Errorf("linux.netDevices: open the container's network namespace: %w", err)
		}
		cr.netns = ns
		if err := netdev.Move(devices, ns); err != nil {
			return fmt.Errorf("linux.netDevices: %w", err)
		}
		cr.netDevices = devices
	}
	state := st.hookState(specs.StateCreating, ip.pid)
	for _, kind := range []string{hooks.Prestart, hooks.CreateRuntime} {
		if err := hooks.Run(kind, hooks.Of(s, kind), state); err != nil {
			return err
		}
	}
	return ip.conn.Send(&syncproto.Message{Type: syncproto.TypeHooksDone})
}

// makeExecFifo creates the fifo the init blocks on until "start" (chowned
// to the container's root once the config is known).
func makeExecFifo(dir string) (*os.File, error) {
	path := filepath.Join(dir, fifoFile)
	if err := unix.Mkfifo(path, 0o622); err != nil {
		return nil, fmt.Errorf("create exec fifo: %w", err)
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
