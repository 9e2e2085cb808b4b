package runtime

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/procattr"
	rspec "github.com/xstack/xstack/pkg/runtime/spec"
	"github.com/xstack/xstack/pkg/runtime/syncproto"
)

// ExecOpts are the options of "xrunc exec".
type ExecOpts struct {
	Process       *specs.Process
	PidFile       string
	ConsoleSocket string
	Console       *os.File // connected console socket (exec -t in the foreground)
	Preserved     []*os.File
	Stdio         Stdio
	// IgnorePaused allows exec into a paused container.
	IgnorePaused bool
}

// Process is a started exec process, our child.
type Process struct {
	Pid  int
	proc *os.Process
}

// Wait waits for the process and returns its exit status.
func (p *Process) Wait() (int, error) {
	ps, err := p.proc.Wait()
	if err != nil {
		return -1, err
	}
	return exitCode(ps), nil
}

// Signal forwards a signal to the process.
func (p *Process) Signal(sig os.Signal) error { return p.proc.Signal(sig) }

// Exec starts an extra process in the container: it joins every namespace
// of the container's init and its cgroup, and gets the credentials, caps
// and environment of its own process description.
func (c *Container) Exec(o ExecOpts) (*Process, error) {
	if err := rspec.CheckProcess(o.Process); err != nil {
		return nil, err
	}
	switch c.Status() {
	case Stopped:
		return nil, errors.New("cannot exec in a stopped container")
	case Paused:
		if !o.IgnorePaused {
			return nil, errors.New("cannot exec in a paused container (use --ignore-paused to override)")
		}
	}
	hasConsole := o.Console != nil || o.ConsoleSocket != ""
	switch {
	case o.Process.Terminal && !hasConsole:
		return nil, errors.New("cannot allocate tty if xrunc will detach without setting console socket")
	case !o.Process.Terminal && hasConsole:
		return nil, errors.New("cannot use console socket if xrunc will not detach or allocate tty")
	}

	initialCPUs, finalCPUs, err := procattr.ExecCPUAffinity(o.Process.ExecCPUAffinity)
	if err != nil {
		return nil, err
	}
	exe := sealedExe(c.dir)
	defer exe.discard()
	start := &initStart{
		cfg: &syncproto.InitConfig{
			Mode:         syncproto.ModeExec,
			ID:           c.id,
			Process:      o.Process,
			NoNewKeyring: c.state.NoNewKeyring,
			Seccomp:      c.state.Seccomp,
			MemoryPolicy: c.state.MemoryPolicy,
		},
		stdio:       o.Stdio,
		preserved:   o.Preserved,
		initialCPUs: initialCPUs,
	}
	// Join the init's namespaces through /proc/PID/ns; the init's start
	// time is checked after opening them, so they are the container's.
	base := "/proc/" + strconv.Itoa(c.state.InitPid) + "/ns/"
	for _, ns := range c.state.Namespaces {
		f, err := os.Open(base + rspec.ProcNamespaceName[ns.Type])
		if err != nil {
			closeJoins(start.joins)
			return nil, fmt.Errorf("open %s namespace of the container: %w", ns.Type, err)
		}
		start.joins = append(start.joins, nsFile{f, rspec.NamespaceTypes[ns.Type]})
	}
	if !c.state.initAlive() {
		closeJoins(start.joins)
		return nil, errors.New("cannot exec in a stopped container")
	}

	if o.Console != nil {
		start.console = o.Console
	} else if o.ConsoleSocket != "" {
		if start.console, err = dialConsole(o.ConsoleSocket); err != nil {
			closeJoins(start.joins)
			return nil, err
		}
		defer start.console.Close()
	}

	if start.exe, err = exe.get(); err != nil {
		closeJoins(start.joins)
		return nil, err
	}
	ip, err := startInit(start)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			ip.kill()
		}
	}()
	if err := ip.conn.SendConfig(start.cfg); err != nil {
		return nil, err
	}
	if _, _, err := ip.conn.Expect(syncproto.TypeBooted); err != nil {
		return nil, err
	}
	if _, _, err := ip.conn.Expect(syncproto.TypeReady); err != nil {
		return nil, err
	}
	// Only now into the container's cgroup and limits: the init forks
	// nothing before this point, and its runtime's threads, created at
	// start-up, must not fail against a container at its pids.max.
	if err := c.cgroup().Enter(ip.pid); err != nil {
		return nil, fmt.Errorf("join the container's cgroup: %w", err)
	}
	// The init execs from its main thread, whose id is its pid.
	if finalCPUs != nil {
		if err := unix.SchedSetaffinity(ip.pid, finalCPUs); err != nil {
			return nil, fmt.Errorf("process.execCPUAffinity.final: set the affinity of pid %d: %w", ip.pid, err)
		}
	}
	if err := applyLimits(ip.pid, o.Process); err != nil {
		return nil, err
	}
	if err := ip.conn.Send(&syncproto.Message{Type: syncproto.TypeRun}); err != nil {
		return nil, err
	}
	if err := ip.finish(c.state.Seccomp, c.state.hookState(specs.StateRunning, c.state.InitPid)); err != nil {
		return nil, err
	}
	ip.conn.Close()
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, ip.pid); err != nil {
			return nil, err
		}
	}
	ok = true
	return &Process{Pid: ip.pid, proc: ip.proc}, nil
}

func closeJoins(joins []nsFile) {
	for _, j := range joins {
		j.f.Close()
	}
}
