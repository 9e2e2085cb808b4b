package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Container names one container of the benchmark: its id, its bundle and
// where `create --pid-file` writes its init pid.
type Container struct {
	ID      string `json:"id"`
	Bundle  string `json:"bundle"`
	PidFile string `json:"pid_file"`
}

// LifecycleSample is one create, start, wait-until-stopped, delete sequence.
// Total is the wall time from just before create to just after delete.
type LifecycleSample struct {
	Total  time.Duration `json:"total"`
	Create time.Duration `json:"create"`
	Start  time.Duration `json:"start"`
	Wait   time.Duration `json:"wait"`
	Delete time.Duration `json:"delete"`
	// State is the time of one `state` call on the created container; it is
	// only set by a state probe, whose Total is not used.
	State time.Duration `json:"state"`
	// CreateMaxRSS is the peak RSS (KiB) of the create process as GNU time
	// reports it; it is only set by an RSS probe (see rss.go), whose times
	// are not used.
	CreateMaxRSS int64 `json:"create_maxrss_kib"`
}

// RunSample is one foreground `run` followed by `delete`.
type RunSample struct {
	Total  time.Duration `json:"total"`
	Run    time.Duration `json:"run"`
	Delete time.Duration `json:"delete"`
}

// executor runs the measured sequences of one runtime, either in this
// process (Runtime) or in the crun worker (remoteRuntime). Both end up in the
// same Runtime methods, so every step is timed by the same code.
type executor interface {
	Lifecycle(c Container) (LifecycleSample, error)
	StateProbe(c Container) (time.Duration, error)
	Run(c Container) (RunSample, error)
	// CreateRSS runs an untimed lifecycle whose create is launched by GNU
	// time and returns the peak RSS of create in KiB.
	CreateRSS(c Container) (int64, error)
	// Close force-deletes whatever containers are left in the runtime's
	// root (an error: they leaked) and, for a worker, reaps its stray
	// children and stops it. It returns the number of strays reaped.
	Close() (int, error)
}

// Runtime is an OCI runtime binary with its private state directory and log
// file. Its methods fork and wait for the runtime directly (no os/exec) so the
// timing covers exactly fork+exec+wait of the runtime process, and so the
// rusage is the one wait4 returns.
type Runtime struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Root is passed as --root: a temp dir private to this benchmark.
	Root string `json:"root"`
	// Log is passed as --log. Both runc and crun then write their errors
	// there (and not to stderr), so a failed step can quote them while the
	// runtime's stdio, which the container inherits, stays /dev/null.
	Log string `json:"log"`
	// WaitTimeout bounds the wait for a container to stop.
	WaitTimeout time.Duration `json:"wait_timeout"`
}

// localRuntime runs a Runtime in this process.
type localRuntime struct{ *Runtime }

var _ executor = localRuntime{}

// Close deletes leftover containers; strays are reaped by the caller once
// every runtime is closed (a worker is a child of ours too).
func (l localRuntime) Close() (int, error) { return 0, l.Runtime.Close() }

// procResult is the outcome of one timed runtime process.
type procResult struct {
	Wall   time.Duration
	Status unix.WaitStatus
	Rusage unix.Rusage
}

var (
	// devNull is the stdin, stdout and stderr of every runtime process.
	devNull *os.File
	// childEnv is the environment of every runtime process: ours without the
	// worker marker, so runtimes see the same environment in the host and in
	// the crun worker.
	childEnv []string
)

func initProcState() error {
	f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	devNull = f
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, workerEnv+"=") {
			childEnv = append(childEnv, kv)
		}
	}
	return nil
}

// setSubreaper makes this process the child subreaper of its descendants:
// the container init, orphaned when `create` exits, is reparented to us (not
// to PID 1, which reaps late here) so we can wait4 it, as a shim does.
func setSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return nil
}

// execTimed forks and execs argv with stdio on /dev/null, waits for it with
// wait4 and returns the wall time around fork+exec+wait. The child gets its
// own process group so a ^C on the terminal does not kill a step halfway:
// the benchmark stops between steps instead.
func execTimed(argv []string) (procResult, error) {
	return execTimedStderr(argv, devNull)
}

// execTimedStderr is execTimed with stderr on the given file (stdin and
// stdout stay on /dev/null): the daemon benchmark keeps its clients' error
// messages without a pipe and a copying goroutine in the timed path.
func execTimedStderr(argv []string, stderr *os.File) (procResult, error) {
	fd := devNull.Fd()
	attr := &syscall.ProcAttr{
		Env:   childEnv,
		Files: []uintptr{fd, fd, stderr.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	var r procResult
	start := time.Now()
	pid, err := syscall.ForkExec(argv[0], argv, attr)
	if err != nil {
		return r, fmt.Errorf("exec %s: %w", argv[0], err)
	}
	for {
		_, err = unix.Wait4(pid, &r.Status, 0, &r.Rusage)
		if err != unix.EINTR {
			break
		}
	}
	r.Wall = time.Since(start)
	if err != nil {
		return r, fmt.Errorf("wait4 %s (pid %d): %w", argv[0], pid, err)
	}
	return r, nil
}

// describeStatus renders a non-zero wait status.
func describeStatus(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("killed by signal %v", ws.Signal())
	default:
		return fmt.Sprintf("wait status %#x", uint32(ws))
	}
}

func exitedZero(ws unix.WaitStatus) bool { return ws.Exited() && ws.ExitStatus() == 0 }

func (r *Runtime) argv(args ...string) []string {
	return append([]string{r.Path, "--root", r.Root, "--log", r.Log}, args...)
}

// step runs one timed runtime command and fails unless it exits 0.
func (r *Runtime) step(args ...string) (procResult, error) {
	return r.stepVia(nil, args...)
}

// stepVia is step with the runtime started by the launcher command (nil for
// none: the runtime is forked and exec'd directly, as every timed step is).
func (r *Runtime) stepVia(launcher []string, args ...string) (procResult, error) {
	off := fileSize(r.Log)
	res, err := execTimed(append(slices.Clone(launcher), r.argv(args...)...))
	if err == nil && !exitedZero(res.Status) {
		via := ""
		if len(launcher) > 0 {
			via = " (launched by " + launcher[0] + ")"
		}
		err = fmt.Errorf("%s %s%s: %s%s", r.Name, strings.Join(args, " "), via,
			describeStatus(res.Status), r.logSince(off))
	}
	return res, err
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// logSince returns what the runtime logged after offset off, for an error.
func (r *Runtime) logSince(off int64) string {
	f, err := os.Open(r.Log)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 4096))
	if s := strings.TrimSpace(string(b)); s != "" {
		return ": " + strings.ReplaceAll(s, "\n", "; ")
	}
	return " (nothing in its --log file " + r.Log + "; its stderr is /dev/null)"
}

// initProc is a container's init process, held by a pidfd so it cannot be
// confused with a recycled pid.
type initProc struct {
	pid    int
	pidfd  int
	reaped bool
}

func openInit(pidFile string) (*initProc, error) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return nil, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return nil, fmt.Errorf("pid file %s: bad pid %q", pidFile, b)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open(%d): %w", pid, err)
	}
	return &initProc{pid: pid, pidfd: fd}, nil
}

// wait waits for init to exit by polling its pidfd, then reaps it with wait4
// (it is our child since its creator exited and we are the subreaper) and
// returns its status.
func (p *initProc) wait(timeout time.Duration) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	exited, err := pollPidfd(p.pidfd, timeout)
	if err != nil {
		return ws, fmt.Errorf("poll pidfd of %d: %w", p.pid, err)
	}
	if !exited {
		return ws, fmt.Errorf("process %d still running after %v", p.pid, timeout)
	}
	for {
		_, err := unix.Wait4(p.pid, &ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return ws, fmt.Errorf("wait4 container init %d: %w (not reparented to us?)", p.pid, err)
		}
		p.reaped = true
		return ws, nil
	}
}

// pollPidfd waits up to timeout for the process of a pidfd to exit and
// reports whether it did.
func pollPidfd(pidfd int, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		left := max(time.Until(deadline), 0)
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int((left+time.Millisecond-1)/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, err
		}
		if n > 0 {
			return true, nil
		}
		if time.Until(deadline) <= 0 {
			return false, nil
		}
	}
}

// kill SIGKILLs init through its pidfd (never by a bare pid) and reaps it.
func (p *initProc) kill(timeout time.Duration) error {
	if p.reaped {
		return nil
	}
	if err := unix.PidfdSendSignal(p.pidfd, unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
		return fmt.Errorf("kill container init %d: %w", p.pid, err)
	}
	_, err := p.wait(timeout)
	return err
}

func (p *initProc) close() {
	if p != nil && p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
}

// Lifecycle creates the container, starts it, waits until it has stopped
// (pidfd + wait4, no runtime call) and deletes it.
func (r *Runtime) Lifecycle(c Container) (LifecycleSample, error) {
	return r.lifecycle(c, plainLifecycle)
}

// StateProbe creates the container, times one `state` call on it while it is
// created, then starts, waits and deletes it like Lifecycle (untimed).
func (r *Runtime) StateProbe(c Container) (time.Duration, error) {
	s, err := r.lifecycle(c, stateProbe)
	return s.State, err
}

// CreateRSS creates the container with create launched by GNU time (see
// rss.go), then starts, waits and deletes it like Lifecycle (untimed), and
// returns the peak RSS of create in KiB.
func (r *Runtime) CreateRSS(c Container) (int64, error) {
	s, err := r.lifecycle(c, rssProbe)
	return s.CreateMaxRSS, err
}

// lifecycleMode says what a lifecycle measures besides its own steps.
type lifecycleMode int

const (
	plainLifecycle lifecycleMode = iota
	// stateProbe times one `state` call on the created container.
	stateProbe
	// rssProbe launches create through GNU time to read its peak RSS.
	rssProbe
)

func (r *Runtime) lifecycle(c Container, mode lifecycleMode) (s LifecycleSample, err error) {
	var ini *initProc
	defer func() {
		if err != nil {
			err = errors.Join(err, r.abort(c.ID, ini))
		}
		ini.close()
	}()
	_ = os.Remove(c.PidFile)

	var launcher []string
	rssFile := filepath.Join(c.Bundle, "create.maxrss")
	if mode == rssProbe {
		_ = os.Remove(rssFile)
		launcher = rssLauncher(rssFile)
	}
	t0 := time.Now()
	res, err := r.stepVia(launcher, "create", "--bundle", c.Bundle, "--pid-file", c.PidFile, c.ID)
	if err != nil {
		return s, err
	}
	s.Create = res.Wall
	if ini, err = openInit(c.PidFile); err != nil {
		return s, err
	}
	if mode == rssProbe {
		if s.CreateMaxRSS, err = readGNUTimeMaxRSS(rssFile); err != nil {
			return s, fmt.Errorf("%s create: %w", r.Name, err)
		}
	}
	if mode == stateProbe {
		if res, err = r.step("state", c.ID); err != nil {
			return s, err
		}
		s.State = res.Wall
	}
	if res, err = r.step("start", c.ID); err != nil {
		return s, err
	}
	s.Start = res.Wall
	tw := time.Now()
	ws, err := ini.wait(r.WaitTimeout)
	if err != nil {
		return s, err
	}
	s.Wait = time.Since(tw)
	if !exitedZero(ws) {
		return s, fmt.Errorf("%s: container %s: /bin/true %s", r.Name, c.ID, describeStatus(ws))
	}
	if res, err = r.step("delete", c.ID); err != nil {
		return s, err
	}
	s.Delete = res.Wall
	s.Total = time.Since(t0)
	return s, nil
}

// Run runs the container in the foreground (the runtime waits for it and
// exits with its status) and deletes it. A foreground run of runc or crun
// already removes the container when it exits, so a plain delete would fail
// with "container does not exist"; the delete is --force, as callers that
// clean up after run issue it, which succeeds whether or not the container
// is still there.
func (r *Runtime) Run(c Container) (s RunSample, err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, r.abort(c.ID, nil))
		}
	}()
	t0 := time.Now()
	res, err := r.step("run", "--bundle", c.Bundle, c.ID)
	if err != nil {
		return s, err
	}
	s.Run = res.Wall
	if res, err = r.step("delete", "--force", c.ID); err != nil {
		return s, err
	}
	s.Delete = res.Wall
	s.Total = time.Since(t0)
	return s, nil
}

// abort is the error path: force-delete the container (untimed; a missing
// container is fine) and make sure its init, if we hold it, is dead and
// reaped.
func (r *Runtime) abort(id string, ini *initProc) error {
	var errs []error
	if _, err := execTimed(r.argv("delete", "--force", id)); err != nil {
		errs = append(errs, err)
	}
	if ini != nil && !ini.reaped {
		if err := ini.kill(r.WaitTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// list returns the ids of the containers in the runtime's root.
func (r *Runtime) list() ([]string, error) {
	var out bytes.Buffer
	cmd := exec.Command(r.Path, r.argv("list", "-q")[1:]...)
	cmd.Stdout = &out
	cmd.Env = childEnv
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s list: %w", r.Name, err)
	}
	return strings.Fields(out.String()), nil
}

// Close force-deletes every container left in the runtime's root (only
// ours: the root is private). Containers are deleted as they are measured and
// on every error path, so one found here leaked and is reported as an error.
// Stray children are reaped separately (reapStrays), once nothing of ours
// runs any more.
func (r *Runtime) Close() error {
	ids, err := r.list()
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		res, err := execTimed(r.argv("delete", "--force", id))
		if err == nil && !exitedZero(res.Status) {
			err = fmt.Errorf("%s delete --force %s: %s", r.Name, id, describeStatus(res.Status))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(ids) > 0 {
		errs = append(errs, fmt.Errorf("%s: %d container(s) left in its root: %s", r.Name, len(ids), strings.Join(ids, " ")))
	}
	return errors.Join(errs...)
}

// children lists this process's children from /proc/self/task/*/children
// (a reparented orphan may hang off any of our threads).
func children() ([]int, error) {
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread may have exited
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}

// reapStrays waits for every child of ours that is not in keep: orphans that
// were reparented to us because we are the subreaper (all descend from
// processes we started). Live ones are killed through a pidfd first: at this
// point every container has been deleted, so anything left running leaked.
func reapStrays(keep map[int]bool, timeout time.Duration) (int, error) {
	pids, err := children()
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, pid := range pids {
		if keep[pid] {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // already gone
		}
		p := &initProc{pid: pid, pidfd: fd}
		if _, err := p.wait(0); err != nil {
			// Not exited yet: it leaked.
			fmt.Fprintf(os.Stderr, "bench: killing leftover child %d\n", pid)
			err = p.kill(timeout)
			if err != nil {
				errs = append(errs, err)
			}
		}
		p.close()
		n++
	}
	return n, errors.Join(errs...)
}
