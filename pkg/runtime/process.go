package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/exeseal"
	"github.com/xstack/xstack/pkg/runtime/nsenter"
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
	// as open files (closed by start).
	cloneFlags uintptr
	joins      []nsFile
	stdio      Stdio
	// preserved are the caller's fds 3.. that the container keeps.
	preserved []*os.File
	console   *os.File // connected console socket, or nil
	fifo      *os.File // O_PATH exec.fifo, or nil
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

// startInit runs the sealed copy of xrunc as "init". The nsenter
// constructor in the new process enters and creates namespaces and clones
// the real init as our direct child; its pid is the first message.
func startInit(s *initStart) (*initProcess, error) {
	defer func() {
		for _, j := range s.joins {
			j.f.Close()
		}
	}()
	exe, err := exeseal.Clone()
	if err != nil {
		return nil, err
	}
	defer exe.Close()
	parent, child, err := syncproto.NewPair()
	if err != nil {
		return nil, err
	}
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
	s.cfg.ConsoleFd, s.cfg.FifoFd = -1, -1
	if s.console != nil {
		s.cfg.ConsoleFd = add(s.console)
	}
	if s.fifo != nil {
		s.cfg.FifoFd = add(s.fifo)
	}
	ns := nsenter.Config{SyncFd: syncFd, CloneFlags: s.cloneFlags}
	for _, j := range s.joins {
		ns.Joins = append(ns.Joins, nsenter.Join{Fd: add(j.f), Type: j.typ})
	}
	s.cfg.PreserveFds = len(s.preserved)

	cmd := &exec.Cmd{
		// Resolved through our own fd table: in the child, fd numbers are
		// being rearranged for ExtraFiles while execve runs.
		Path:       "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(int(exe.Fd())),
		Args:       []string{"xrunc", "init"},
		Env:        []string{ns.Env(), syncproto.EnvSyncFd + "=" + strconv.Itoa(syncFd), "GOGC=off"},
		Stdin:      s.stdio.Stdin,
		Stdout:     s.stdio.Stdout,
		Stderr:     s.stdio.Stderr,
		ExtraFiles: files,
	}
	if err := cmd.Start(); err != nil {
		child.Close()
		return nil, fmt.Errorf("start container init: %w", err)
	}
	child.Close()
	msg, _, err := parent.Expect(syncproto.TypePid)
	// The intermediate exits right after reporting; reap it either way.
	werr := cmd.Wait()
	if err != nil {
		if werr != nil && errors.Is(err, syncproto.ErrChildExited) {
			return nil, fmt.Errorf("container init: %v", werr)
		}
		return nil, err
	}
	p, err := os.FindProcess(msg.Pid)
	if err != nil {
		return nil, err
	}
	ok = true
	return &initProcess{pid: msg.Pid, conn: parent, proc: p}, nil
}

// kill ends a half-set-up init and reaps it (it is our child).
func (p *initProcess) kill() {
	_ = p.proc.Signal(unix.SIGKILL)
	_, _ = p.proc.Wait()
	p.conn.Close()
}

// writeIDMaps writes a new user namespace's uid and gid maps, then lets
// the init continue as root in it.
func (p *initProcess) writeIDMaps(s *specs.Spec) error {
	for _, m := range []struct {
		file string
		ids  []specs.LinuxIDMapping
	}{{"uid_map", s.Linux.UIDMappings}, {"gid_map", s.Linux.GIDMappings}} {
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
// succeeded, or the init blocks on exec.fifo) or an error.
func (p *initProcess) finish() error {
	if _, _, err := p.conn.Expect(syncproto.TypeDone); err != nil {
		return err
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
