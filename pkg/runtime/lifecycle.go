package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/hooks"
	"github.com/xstack/xstack/pkg/version"
)

// Start releases a created container's init: opening exec.fifo for
// reading unblocks the init, which writes one byte and execs the
// container's program.
func (c *Container) Start() error {
	if err := c.Lock(); err != nil {
		return err
	}
	defer c.Unlock()
	switch c.Status() {
	case Stopped:
		return errStartStopped
	case Running:
		return errStartRunning
	case Paused:
		return errors.New("cannot start a container in the paused state")
	}
	pidfd, err := c.state.openInit()
	if err != nil {
		return errStartStopped
	}
	defer unix.Close(pidfd)

	path := filepath.Join(c.dir, fifoFile)
	fifo, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer unix.Close(fifo)
	// Wait for the init's byte, or for the init to die instead.
	fds := []unix.PollFd{{Fd: int32(fifo), Events: unix.POLLIN}, {Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("wait for the container init: %w", err)
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			break
		}
		if fds[1].Revents != 0 {
			return errStartStopped
		}
		if fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
			return errors.New("container init closed exec fifo without starting")
		}
	}
	var b [1]byte
	if n, err := unix.Read(fifo, b[:]); n != 1 || err != nil {
		return fmt.Errorf("read exec fifo: %v", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove exec fifo: %w", err)
	}
	if err := hooks.Run(hooks.Poststart, c.state.hooks(hooks.Poststart), c.state.hookState(specs.StateRunning, c.state.InitPid)); err != nil {
		// The container must not keep running half-started.
		_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		return err
	}
	return nil
}

// Signal sends sig to the init, or with all to every process of the
// container (through its cgroup, frozen meanwhile so nothing forks away).
func (c *Container) Signal(sig unix.Signal, all bool) error {
	if all {
		// Even with the init gone: in a container without its own pid
		// namespace other processes outlive it, and --all is how a
		// caller (the shim) cleans them up. Nothing left is not an error.
		return c.signalAll(sig)
	}
	pidfd, err := c.state.openInit()
	if err != nil {
		return err
	}
	defer unix.Close(pidfd)
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return errNotRunning
		}
		return fmt.Errorf("signal init: %w", err)
	}
	if sig == unix.SIGKILL {
		// A frozen process only dies once thawed (cgroup v1): a
		// paused container that is killed must stop, as with runc.
		if frozen, err := c.cgroup().Frozen(); err == nil && frozen {
			if err := c.cgroup().Thaw(); err != nil {
				return fmt.Errorf("thaw the killed container: %w", err)
			}
		}
	}
	return nil
}

func (c *Container) signalAll(sig unix.Signal) error {
	cg := c.cgroup()
	if sig == unix.SIGKILL {
		// cgroup.kill where the kernel has it; otherwise the cgroup
		// package freezes, kills each process and thaws.
		return cg.Kill()
	}
	// Frozen meanwhile, so nothing forks away from the signal.
	frozen := cg.Freeze() == nil
	pids, err := cg.Pids()
	if errors.Is(err, fs.ErrNotExist) {
		err = nil // the cgroup is gone with every process in it
	}
	for _, pid := range pids {
		if kerr := unix.Kill(pid, sig); kerr != nil && !errors.Is(kerr, unix.ESRCH) && err == nil {
			err = fmt.Errorf("signal pid %d: %w", pid, kerr)
		}
	}
	if frozen {
		if terr := cg.Thaw(); terr != nil && err == nil {
			err = terr
		}
	}
	return err
}

// Delete removes a container. A created or stopped one goes without
// force; a running or paused one needs force and is killed first.
func (c *Container) Delete(force bool) error {
	if err := c.Lock(); err != nil {
		return err
	}
	defer c.Unlock()
	switch status := c.Status(); status {
	case Running, Paused:
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s", c.id, status)
		}
		fallthrough
	case Created:
		if err := c.killAll(); err != nil {
			return err
		}
	}
	return c.destroy()
}

// killAll SIGKILLs every process of the container and waits for the init
// to be gone.
func (c *Container) killAll() error {
	pidfd, err := c.state.openInit()
	if err == nil {
		defer unix.Close(pidfd)
	}
	cg := c.cgroup()
	_ = cg.Thaw() // a frozen cgroup cannot die
	if err := c.signalAll(unix.SIGKILL); err != nil {
		return err
	}
	if pidfd >= 0 {
		_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		if !waitExit(pidfd, 10*time.Second) {
			return fmt.Errorf("container init %d did not exit after SIGKILL", c.state.InitPid)
		}
	}
	return nil
}

// destroy removes what the container left on the host: processes still
// in its cgroup (a container without its own pid namespace), the cgroup
// and the state directory.
func (c *Container) destroy() error {
	cg := c.cgroup()
	if pids, err := cg.Pids(); err == nil && len(pids) > 0 {
		_ = cg.Thaw()
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	if err := cg.Destroy(); err != nil {
		return fmt.Errorf("remove cgroups: %w", err)
	}
	if err := hooks.Run(hooks.Poststop, c.state.hooks(hooks.Poststop), c.state.hookState(specs.StateStopped, 0)); err != nil {
		// The container is gone; a poststop failure does not change that.
		c.rt.log().Warn(err.Error())
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("remove state directory: %w", err)
	}
	return nil
}

// Pause freezes every process of the container.
func (c *Container) Pause() error {
	if err := c.Lock(); err != nil {
		return err
	}
	defer c.Unlock()
	switch c.Status() {
	case Running, Created:
	default:
		return errNotRunning
	}
	return c.cgroup().Freeze()
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if err := c.Lock(); err != nil {
		return err
	}
	defer c.Unlock()
	if c.Status() != Paused {
		return errors.New("container not paused")
	}
	return c.cgroup().Thaw()
}

// Pids lists the container's processes (host pids).
func (c *Container) Pids() ([]int, error) {
	return c.cgroup().Pids()
}

// OCIState is the JSON "xrunc state" prints, field for field runc's.
type OCIState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      Status            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// OCIState returns the container's state as the OCI runtime reports it.
func (c *Container) OCIState() OCIState {
	st := c.state
	status := c.Status()
	pid := st.InitPid
	if status == Stopped {
		pid = 0
	}
	return OCIState{
		OCIVersion:  version.OCISpec,
		ID:          st.ID,
		Pid:         pid,
		Status:      status,
		Bundle:      st.Bundle,
		Rootfs:      st.Rootfs,
		Created:     st.Created,
		Annotations: st.Annotations,
	}
}

// Wait waits for the init of a container this process created (xrunc run)
// and returns its exit status as a shell would report it.
func (c *Container) Wait() (int, error) {
	if c.initProc == nil {
		return -1, errors.New("the container's init is not a child of this process")
	}
	ps, err := c.initProc.Wait()
	if err != nil {
		return -1, err
	}
	return exitCode(ps), nil
}

func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// Update changes the resource limits of a live container; fields left
// nil keep their values.
func (c *Container) Update(r *specs.LinuxResources) error {
	if err := c.Lock(); err != nil {
		return err
	}
	defer c.Unlock()
	if c.Status() == Stopped {
		return errors.New("cannot update a stopped container")
	}
	if err := c.cgroup().Set(r); err != nil {
		return fmt.Errorf("update resources: %w", err)
	}
	return nil
}
