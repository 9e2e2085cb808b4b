package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/exeseal"
	"github.com/xstack/xstack/pkg/runtime/nsenter"
	"github.com/xstack/xstack/pkg/runtime/seccomp"
	rspec "github.com/xstack/xstack/pkg/runtime/spec"
	"github.com/xstack/xstack/pkg/runtime/syncproto"
)

// Stdio are the standard streams given to a container process when it has
// no terminal.
type Stdio struct {
	Stdin, Stdout, Stderr *os.File
}

// initStart describes one init process to start (a new container's, or an
// exec's).
type initStart struct {
	cfg *syncproto.InitConfig
	// cloneFlags are namespaces to create; joins are namespaces to enter,
	// as open files (closed by startInit).
	cloneFlags uintptr
	joins      []nsFile
	// idMaps are the uid/gid maps of a new user namespace.
	uidMaps, gidMaps []specs.LinuxIDMapping
	// newTime asks for a new time namespace with timeOffsets. Not a clone
	// flag: the offsets must be written before any process is inside.
	newTime     bool
	timeOffsets map[string]specs.LinuxTimeOffset
	stdio       Stdio
	// preserved are the caller's fds 3.. that the container keeps.
	preserved []*os.File
	console   *os.File // connected console socket, or nil
	fifo      *os.File // O_PATH exec.fifo, or nil
	// exe is the write-protected xrunc the init runs (see exeseal; closed
	// by startInit).
	exe *os.File
	// initialCPUs is the affinity an exec asks to start with (see pinInit).
	initialCPUs *unix.CPUSet
}

type nsFile struct {
	f   *os.File
	typ uintptr
}

// initProcess is a started init, parked before its setup.
type initProcess struct {
	pid  int
	conn *syncproto.Conn
	proc *os.Process
}

// startInit starts "xrunc init" in the container's namespaces, as a direct
// child of this process:
//
//   - Namespaces to create are clone flags of the new process (Go writes
//     the uid/gid maps of a new user namespace before the child runs).
//   - Namespaces to join are entered by a locked OS thread of ours right
//     before it forks the child, except the mount namespace, which the init
//     enters itself (the exec path must still resolve on the host), and a
//     user namespace, which a multi-threaded process cannot enter at all:
//     then the nsenter helper (C) joins everything and forks the init.
func startInit(s *initStart) (*initProcess, error) {
	defer func() {
		for _, j := range s.joins {
			j.f.Close()
		}
		s.exe.Close()
	}()
	parent, child, err := syncproto.NewPair()
	if err != nil {
		return nil, err
	}
	defer child.Close()
	ok := false
	defer func() {
		if !ok {
			parent.Close()
		}
	}()

	// fds in the child: 0-2 stdio, then the preserved fds, then ours.
	files := append([]*os.File(nil), s.preserved...)
	add := func(f *os.File) int {
		files = append(files, f)
		return 2 + len(files)
	}
	syncFd := add(child)
	s.cfg.ConsoleFd, s.cfg.FifoFd, s.cfg.MountNSFd = -1, -1, -1
	if s.console != nil {
		s.cfg.ConsoleFd = add(s.console)
	}
	if s.fifo != nil {
		s.cfg.FifoFd = add(s.fifo)
	}
	s.cfg.PreserveFds = len(s.preserved)
	cmd := &exec.Cmd{
		Args:   []string{"xrunc", "init"},
		Env:    []string{syncproto.EnvSyncFd + "=" + strconv.Itoa(syncFd), "GOGC=off", "GOMAXPROCS=1"},
		Stdin:  s.stdio.Stdin,
		Stdout: s.stdio.Stdout,
		Stderr: s.stdio.Stderr,
	}
	exeFd := add(s.exe)
	setFiles := func() { cmd.ExtraFiles = files }

	s.cfg.KeepAffinity = s.initialCPUs != nil
	pin := pinInit(s.initialCPUs)
	var p *initProcess
	if needsHelper(s.joins) {
		if s.newTime {
			return nil, errors.New("a new time namespace together with a joined user or time namespace is not supported")
		}
		p, err = startViaHelper(s, cmd, parent, syncFd, exeFd, add, setFiles, pin)
	} else {
		p, err = startDirect(s, cmd, parent, exeFd, add, setFiles, pin)
	}
	if err != nil {
		return nil, err
	}
	ok = true
	return p, nil
}

// needsHelper reports whether a namespace to join can only be entered by a
// single-threaded process: a user namespace, or a time namespace.
func needsHelper(joins []nsFile) bool {
	for _, j := range joins {
		if j.typ == unix.CLONE_NEWUSER || j.typ == unix.CLONE_NEWTIME {
			return true
		}
	}
	return false
}

// startDirect forks the init from a thread that has entered the
// namespaces to join, after pin (if any) set its affinity.
func startDirect(s *initStart, cmd *exec.Cmd, conn *syncproto.Conn, exeFd int, add func(*os.File) int, setFiles func(), pin func() error) (*initProcess, error) {
	// Through the child's own fd table, where Go has placed ExtraFiles by
	// the time execve runs: a user-namespaced child may not look into ours.
	cmd.Path = "/proc/self/fd/" + strconv.Itoa(exeFd)
	attr := &syscall.SysProcAttr{Cloneflags: s.cloneFlags}
	if s.cloneFlags&unix.CLONE_NEWUSER != 0 {
		attr.UidMappings = idMaps(s.uidMaps)
		attr.GidMappings = idMaps(s.gidMaps)
		attr.GidMappingsEnableSetgroups = true
		// Root in the new namespace, once the maps are written.
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	cmd.SysProcAttr = attr
	var setns []nsFile
	for _, j := range s.joins {
		if j.typ == unix.CLONE_NEWNS {
			s.cfg.MountNSFd = add(j.f)
			continue
		}
		setns = append(setns, j)
	}
	setFiles()
	var newTime func() error
	if s.newTime {
		newTime = func() error { return unshareTime(s.timeOffsets) }
	}
	if err := startFromNamespaces(cmd, setns, pin, newTime); err != nil {
		return nil, fmt.Errorf("start container init: %w", err)
	}
	return &initProcess{pid: cmd.Process.Pid, conn: conn, proc: cmd.Process}, nil
}

// startFromNamespaces runs cmd.Start on an OS thread that has entered the
// given namespaces, and run the prepare functions that are not nil on it.
// The thread is never handed back to the Go scheduler: when the goroutine
// ends with the thread still locked, the runtime terminates the thread.
func startFromNamespaces(cmd *exec.Cmd, joins []nsFile, prepare ...func() error) error {
	prepare = slices.DeleteFunc(prepare, func(f func() error) bool { return f == nil })
	if len(joins) == 0 && len(prepare) == 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		for _, j := range joins {
			if err := unix.Setns(int(j.f.Fd()), int(j.typ)); err != nil {
				errc <- fmt.Errorf("join namespace %#x: %w", j.typ, err)
				return
			}
		}
		for _, f := range prepare {
			if err := f(); err != nil {
				errc <- err
				return
			}
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// timeClocks maps the spec's clock names to timens_offsets' clock ids.
var timeClocks = map[string]int{"monotonic": unix.CLOCK_MONOTONIC, "boottime": unix.CLOCK_BOOTTIME}

// unshareTime gives the calling thread's future children a new time
// namespace with the offsets applied. The thread itself stays where it is
// (time_for_children), and the offsets can be written only until the
// first process enters: the init forked next.
func unshareTime(offsets map[string]specs.LinuxTimeOffset) error {
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("create time namespace: %w", err)
	}
	if len(offsets) == 0 {
		return nil
	}
	var b strings.Builder
	for name, o := range offsets {
		clock, ok := timeClocks[name]
		if !ok {
			return fmt.Errorf("linux.timeOffsets: unknown clock %q", name)
		}
		fmt.Fprintf(&b, "%d %d %d\n", clock, o.Secs, o.Nanosecs)
	}
	// Namespaces are per thread and this one is locked, but
	// /proc/self/timens_offsets is the main thread's: /proc/TID is this one.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/timens_offsets", unix.Gettid()), []byte(b.String()), 0); err != nil {
		return fmt.Errorf("write time namespace offsets: %w", err)
	}
	return nil
}

func idMaps(ms []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(ms))
	for i, m := range ms {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}

// startViaHelper runs the nsenter helper, which joins every namespace
// (the user namespace last), creates the new ones, forks the init as our
// child and reports its pid.
func startViaHelper(s *initStart, cmd *exec.Cmd, conn *syncproto.Conn, syncFd, exeFd int, add func(*os.File) int, setFiles func(), pin func() error) (*initProcess, error) {
	helper, err := nsenter.Program()
	if err != nil {
		return nil, err
	}
	defer helper.Close()
	cfg := nsenter.Config{SyncFd: syncFd, ExeFd: exeFd, CloneFlags: s.cloneFlags}
	for _, j := range s.joins {
		cfg.Joins = append(cfg.Joins, nsenter.Join{Fd: add(j.f), Type: j.typ})
	}
	cmd.Path = "/proc/self/fd/" + strconv.Itoa(add(helper))
	cmd.Args = cfg.Args()
	setFiles()
	if err := startFromNamespaces(cmd, nil, pin); err != nil {
		return nil, fmt.Errorf("start nsenter helper: %w", err)
	}
	// The init the helper forked may say it booted before the helper
	// reports its pid: both write to this socket.
	msg, _, err := conn.ExpectAhead(syncproto.TypePid, syncproto.TypeBooted)
	// The helper exits right after reporting; reap it either way.
	werr := cmd.Wait()
	if err != nil {
		if werr != nil && errors.Is(err, syncproto.ErrChildExited) {
			return nil, fmt.Errorf("nsenter helper: %v", werr)
		}
		return nil, err
	}
	p, err := os.FindProcess(msg.Pid)
	if err != nil {
		return nil, err
	}
	ip := &initProcess{pid: msg.Pid, conn: conn, proc: p}
	if s.cloneFlags&unix.CLONE_NEWUSER != 0 {
		if err := ip.writeIDMaps(s.uidMaps, s.gidMaps); err != nil {
			ip.kill()
			return nil, err
		}
	}
	return ip, nil
}

// pendingExe is a write-protected xrunc (see exeseal) being opened in the
// background.
type pendingExe struct {
	done chan struct{}
	f    *os.File
	err  error
	got  bool
}

func sealedExe(scratchDir string) *pendingExe {
	p := &pendingExe{done: make(chan struct{})}
	go func() {
		p.f, p.err = exeseal.Open(scratchDir)
		close(p.done)
	}()
	return p
}

// get waits for the copy; the caller owns the file.
func (p *pendingExe) get() (*os.File, error) {
	<-p.done
	p.got = true
	return p.f, p.err
}

// discard closes a copy nobody took.
func (p *pendingExe) discard() {
	if p.got {
		return
	}
	<-p.done
	if p.f != nil {
		p.f.Close()
	}
}

// kill ends a half-set-up init and reaps it (it is our child).
func (p *initProcess) kill() {
	_ = p.proc.Signal(unix.SIGKILL)
	_, _ = p.proc.Wait()
	p.conn.Close()
}

// writeIDMaps writes a new user namespace's uid and gid maps, then lets
// the init continue as root in it (helper path only; Go does it for
// directly forked inits).
func (p *initProcess) writeIDMaps(uidMaps, gidMaps []specs.LinuxIDMapping) error {
	for _, m := range []struct {
		file string
		ids  []specs.LinuxIDMapping
	}{{"uid_map", uidMaps}, {"gid_map", gidMaps}} {
		var b strings.Builder
		for _, id := range m.ids {
			fmt.Fprintf(&b, "%d %d %d\n", id.ContainerID, id.HostID, id.Size)
		}
		path := "/proc/" + strconv.Itoa(p.pid) + "/" + m.file
		if err := os.WriteFile(path, []byte(b.String()), 0); err != nil {
			return fmt.Errorf("write %s of the container init: %w", m.file, err)
		}
	}
	return p.conn.Send(&syncproto.Message{Type: syncproto.TypeMapped})
}

// applyLimits sets what the parent must set on the init's behalf: a user
// namespace cannot raise rlimits above the host's or lower its
// oom_score_adj.
func applyLimits(pid int, p *specs.Process) error {
	if p.OOMScoreAdj != nil {
		path := "/proc/" + strconv.Itoa(pid) + "/oom_score_adj"
		if err := os.WriteFile(path, []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("set oom_score_adj: %w", err)
		}
	}
	for _, r := range p.Rlimits {
		res := rspec.RlimitTypes[r.Type]
		lim := unix.Rlimit{Cur: r.Soft, Max: r.Hard}
		if err := unix.Prlimit(pid, res, &lim, nil); err != nil {
			return fmt.Errorf("set %s: %w", r.Type, err)
		}
	}
	return nil
}

// finish waits for the init's last messages: "done", then EOF (execve
// succeeded, or the init blocks on exec.fifo) or an error. A seccomp
// listener fd sent with "done" goes to the profile's agent, with state.
func (p *initProcess) finish(profile *specs.LinuxSeccomp, state *specs.State) error {
	_, fds, err := p.conn.Expect(syncproto.TypeDone)
	if err != nil {
		return err
	}
	for _, fd := range fds {
		defer unix.Close(fd)
	}
	switch {
	case len(fds) > 1:
		return fmt.Errorf("protocol error: %d fds with the done message", len(fds))
	case len(fds) == 1 && (profile == nil || profile.ListenerPath == ""):
		return errors.New("protocol error: a seccomp listener fd without a listenerPath")
	case len(fds) == 1:
		if err := seccomp.SendListener(profile, *state, p.pid, fds[0]); err != nil {
			return err
		}
	}
	m, _, err := p.conn.Recv()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return err
	}
	if m.Type == syncproto.TypeError {
		return errors.New(m.Error)
	}
	return fmt.Errorf("protocol error: unexpected %q message", m.Type)
}

// waitExit waits up to timeout for the process behind pidfd to exit.
func waitExit(pidfd int, timeout time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	deadline := time.Now().Add(timeout)
	for {
		ms := int(time.Until(deadline).Milliseconds())
		if ms < 0 {
			return false
		}
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}
