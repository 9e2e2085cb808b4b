package ocicli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// Spawner runs each command. The shim's reaper must collect every child (it
// does wait4(-1)), so os/exec must never wait for them itself: a shim's
// Spawner starts cmd with cmd.Start, learns its exit from the reaper, and
// then calls cmd.Process.Release (which closes the pidfd os/exec holds).
//
// cmd carries Pdeathsig SIGKILL, which the kernel sends when the forking
// *thread* exits: start it from a goroutine that is not locked to its OS
// thread, or that stays locked until the command has exited.
type Spawner interface {
	// Run starts cmd (its Stdin/Stdout/Stderr are *os.File or nil, never
	// io.Reader/Writer, so no copying goroutines exist) and returns its exit
	// status (128+signal when killed) once it has exited.
	Run(cmd *exec.Cmd) (int, error)
}

// Starter is an optional interface of a Spawner: Run split in two, so that
// the started process is known while it runs and a cancelled context can
// kill it. Start starts cmd; wait blocks until it has exited and returns its
// exit status as Run does. Until wait has returned, Runtime may call
// cmd.Process.Signal(SIGKILL) from another goroutine; the Spawner may
// Release cmd.Process once the process has exited (os.Process makes a
// concurrent Signal safe, and on Linux ≥ 5.3 it signals through a pidfd, so
// a late SIGKILL cannot reach a process that reused the pid).
//
// Start and wait are needed because Run alone offers no race-free moment at
// which another goroutine may read cmd.Process. With a Spawner that is not a
// Starter, ctx is therefore only checked before a command starts: a running
// command cannot be interrupted.
type Starter interface {
	Start(cmd *exec.Cmd) (wait func() (int, error), err error)
}

// ExecSpawner is the default Spawner: os/exec starts the command and waits
// for it. Use it only in a process that has no wait4(-1) reaper of its own.
type ExecSpawner struct{}

// Run implements Spawner with exec.Cmd.Run.
func (ExecSpawner) Run(cmd *exec.Cmd) (int, error) {
	return exitStatus(cmd, cmd.Run())
}

// Start implements Starter with exec.Cmd.Start and exec.Cmd.Wait.
func (ExecSpawner) Start(cmd *exec.Cmd) (func() (int, error), error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() (int, error) { return exitStatus(cmd, cmd.Wait()) }, nil
}

// exitStatus turns the result of exec.Cmd.Run or Wait into a shell-style
// status: the exit code, or 128+signal.
func exitStatus(cmd *exec.Cmd, err error) (int, error) {
	if cmd.ProcessState == nil {
		if err == nil {
			err = errors.New("no process state")
		}
		return -1, err
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return -1, err
	}
	return WaitStatus(cmd.ProcessState), nil
}

// WaitStatus is the shell-style status of an exited process: its exit code,
// or 128+signal when a signal killed it. Spawners may use it.
func WaitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// spawn runs cmd through r's Spawner. When the Spawner is a Starter and ctx
// is done while cmd runs, cmd is killed with SIGKILL and killed is true.
func (r *Runtime) spawn(ctx context.Context, cmd *exec.Cmd) (status int, killed bool, err error) {
	var s Spawner = ExecSpawner{}
	if r.Spawner != nil {
		s = r.Spawner
	}
	st, ok := s.(Starter)
	if !ok || ctx.Done() == nil {
		status, err = s.Run(cmd)
		return status, false, err
	}
	wait, err := st.Start(cmd)
	if err != nil {
		return -1, false, err
	}
	// Start returned on this goroutine, so cmd.Process is visible to the
	// AfterFunc goroutine without a data race.
	killDone := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(killDone)
		// After an exit, os.Process signals through its pidfd, which cannot
		// reach a process that reused the pid.
		_ = cmd.Process.Signal(syscall.SIGKILL)
	})
	status, err = wait()
	// stop is false when the kill ran, or is running: ctx ended the command.
	if killed = !stop(); killed {
		// Until the kill returns it holds the process's pidfd open, past
		// the Spawner's Release.
		<-killDone
	}
	return status, killed, err
}
