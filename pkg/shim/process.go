package shim

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"

	tasktypes "github.com/containerd/containerd/api/types/task"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/pkg/shim/reaper"
)

// process is a container's init (id "") or one of its exec'd processes.
type process struct {
	c     *container
	id    string // exec id; "" for the init
	stdio stdioPaths
	spec  *specs.Process // exec only
	io    *processIO

	mu  sync.Mutex
	pid int
	// pidfd refers to an exec'd process from the moment its pid is known
	// (-1 before, or if it had already exited): Kill signals through it,
	// so a signal can never reach another process that reused the pid.
	pidfd    int
	state    tasktypes.Status // CREATED, RUNNING, STOPPED (PAUSED comes from the container)
	status   int
	exitedAt time.Time
	exited   chan struct{} // closed once the exit is recorded
	deleted  bool
	// starting is set while Start publishes the start event: an exit that
	// arrives meanwhile is held in pendingExit and handled right after,
	// so a start event always precedes the exit event.
	starting    bool
	pendingExit *reaper.Exit
}

const (
	taskCreated = tasktypes.Status_CREATED
	taskRunning = tasktypes.Status_RUNNING
	taskStopped = tasktypes.Status_STOPPED
	taskPaused  = tasktypes.Status_PAUSED
)

func newProcess(c *container, id string, stdio stdioPaths) *process {
	return &process{c: c, id: id, stdio: stdio, state: taskCreated, exited: make(chan struct{}), pidfd: -1}
}

func (p *process) isInit() bool { return p.id == "" }

// setExited records the exit and wakes every Wait.
func (p *process) setExited(e reaper.Exit) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == taskStopped {
		return
	}
	p.state, p.status, p.exitedAt = taskStopped, e.Status, e.At
	close(p.exited)
}

// snapshot returns the fields State reports.
func (p *process) snapshot() (pid int, state tasktypes.Status, status int, exitedAt time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid, p.state, p.status, p.exitedAt
}

func (p *process) isStopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state == taskStopped
}

// signal sends sig to an exec'd process through its pidfd (or by pid if
// the kernel has no pidfds).
func (p *process) signal(sig unix.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == taskStopped {
		return unix.ESRCH
	}
	if p.pidfd >= 0 {
		return unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	}
	if p.pid <= 0 {
		return unix.ESRCH
	}
	return unix.Kill(p.pid, sig)
}

// closePidfd releases the pidfd (the process is being deleted).
func (p *process) closePidfd() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
}
