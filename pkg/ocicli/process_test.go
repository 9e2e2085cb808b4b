package ocicli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// fakeRuntime writes a shell script that plays the runtime and returns its
// path. The script gets the argv exactly as a runtime would.
func fakeRuntime(t *testing.T, dir, body string) string {
	t.Helper()
	// While the file is open for writing no fork may happen (the child
	// would hold the fd until its exec, and running the script would fail
	// with "text file busy"): create fds under ForkLock, as the syscall
	// package documents.
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	f, err := os.CreateTemp(dir, "fake-runtime-")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("#!/bin/sh\n" + body)
	if err == nil {
		err = f.Chmod(0o755)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// readPid reads a pid file written by a fake runtime, waiting for it.
func readPid(t *testing.T, path string) int {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", path)
		}
	}
}

// killOwn kills and reaps pid if it is a child of this process (TestMain
// made it a subreaper, so the processes the tests start end up as its
// children). A pid that is not our child is left alone: it may have been
// reaped and reused by someone else's process. An unreaped child's pid
// cannot be reused, so the check cannot race.
func killOwn(t *testing.T, pid int) {
	t.Helper()
	if parentOf(pid) != os.Getpid() {
		return
	}
	_ = unix.Kill(pid, unix.SIGKILL)
	var ws unix.WaitStatus
	_, _ = unix.Wait4(pid, &ws, 0, nil)
}

func gone(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return errors.Is(err, os.ErrNotExist)
}

func TestContextKillsRuntime(t *testing.T) {
	defer checkFds(t)()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	// exec keeps the pid: the process we time out is the one we check.
	bin := fakeRuntime(t, dir, "echo $$ >"+pidFile+"\nexec sleep 60\n")
	r := &Runtime{Binary: bin}
	for _, call := range []struct {
		name string
		fn   func(context.Context) error
	}{
		{"state", func(ctx context.Context) error { _, err := r.State(ctx, "c1"); return err }},
		{"create", func(ctx context.Context) error { return r.Create(ctx, "c1", dir, CreateOpts{}) }},
		{"update", func(ctx context.Context) error { return r.Update(ctx, "c1", &specs.LinuxResources{}) }},
	} {
		t.Run(call.name, func(t *testing.T) {
			os.Remove(pidFile)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := call.fn(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want it to wrap context.DeadlineExceeded", err)
			}
			if !strings.HasPrefix(err.Error(), call.name+": ") {
				t.Errorf("err = %q, want the command name first", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("returned after %v", d)
			}
			pid := readPid(t, pidFile)
			if !gone(pid) {
				killOwn(t, pid)
				t.Errorf("runtime process %d survived the cancellation", pid)
			}
		})
	}
}

// A plain Spawner (not a Starter) cannot be interrupted, but a context that
// is already done still stops the command before it starts.
func TestPlainSpawnerContext(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	bin := fakeRuntime(t, dir, "touch "+marker+"\n")
	r := &Runtime{Binary: bin, Spawner: plainSpawner{}}
	if err := r.Start(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	os.Remove(marker)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Start(ctx, "c1"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran with a cancelled context")
	}
}

// plainSpawner hides ExecSpawner's Start.
type plainSpawner struct{}

func (plainSpawner) Run(cmd *exec.Cmd) (int, error) { return ExecSpawner{}.Run(cmd) }

// A descendant that keeps the output pipe open (a hook's daemon) must not
// hold the call until it exits.
func TestOutputHeldByDescendant(t *testing.T) {
	defer checkFds(t)()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	bin := fakeRuntime(t, dir, "sleep 30 </dev/null &\necho $! >"+pidFile+"\necho '[1,2]'\n")
	start := time.Now()
	pids, err := (&Runtime{Binary: bin}).Ps(context.Background(), "c1")
	killOwn(t, readPid(t, pidFile))
	if err != nil || !slices.Equal(pids, []int{1, 2}) {
		t.Fatalf("ps = %v, %v", pids, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ps took %v: waited for the descendant", d)
	}
}

// Output beyond maxOutput is dropped, and never blocks the runtime.
func TestOutputBound(t *testing.T) {
	defer checkFds(t)()
	dir := t.TempDir()
	bin := fakeRuntime(t, dir, "head -c 300000 /dev/zero | tr '\\0' x; echo; echo 'tail' >&2; exit 1\n")
	err := (&Runtime{Binary: bin}).Delete(context.Background(), "c1", false)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	if len(e.Output) != maxOutput || strings.Trim(e.Output, "x") != "" {
		t.Errorf("output: %d bytes, want %d x's", len(e.Output), maxOutput)
	}
}

// update's stdin: the runtime reads it all; or reads nothing at all and
// exits, which must not leave the writer blocked.
func TestUpdatePipe(t *testing.T) {
	defer checkFds(t)()
	dir := t.TempDir()
	got := filepath.Join(dir, "stdin")
	limit := int64(7)
	res := &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}
	// Big enough to exceed any pipe buffer.
	for i := range 4000 {
		major := int64(i)
		res.Devices = append(res.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Access: "rwm"})
	}
	r := &Runtime{Binary: fakeRuntime(t, dir, "cat >"+got+"\n")}
	if err := r.Update(context.Background(), "c1", res); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(got)
	if len(b) < 128<<10 || !strings.HasPrefix(string(b), `{"devices":[`) || !strings.HasSuffix(string(b), `"pids":{"limit":7}}`) {
		t.Errorf("stdin: %d bytes: %.60s...", len(b), b)
	}
	r.Binary = fakeRuntime(t, dir, "exit 0\n")
	done := make(chan error, 1)
	go func() { done <- r.Update(context.Background(), "c1", res) }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Update blocked on a runtime that does not read its stdin")
	}
}

// The --process file exists while the runtime runs and is gone after.
func TestExecFileLifetime(t *testing.T) {
	defer checkFds(t)()
	dir := t.TempDir()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	copyTo := filepath.Join(dir, "process.json")
	// argv: BIN exec --process FILE --detach c1
	bin := fakeRuntime(t, dir, `[ "$1 $2 $4" = "exec --process --detach" ] || exit 9
stat -c %a "$3" >`+copyTo+`.mode
cp "$3" `+copyTo+`
`)
	p := &specs.Process{Args: []string{"sleep", "1"}, Cwd: "/"}
	if err := (&Runtime{Binary: bin}).Exec(context.Background(), "c1", p, ExecOpts{Detach: true}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(copyTo); err != nil || !strings.Contains(string(b), `"args":["sleep","1"]`) {
		t.Errorf("process file as the runtime saw it: %s %v", b, err)
	}
	if b, _ := os.ReadFile(copyTo + ".mode"); strings.TrimSpace(string(b)) != "600" {
		t.Errorf("process file mode %q", b)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("left behind in TMPDIR: %v", ents)
	}
}

// checkFds snapshots /proc/self/fd; the returned func fails the test if
// the set of open fds changed. Call it first, defer the result.
func checkFds(t *testing.T) func() {
	t.Helper()
	warmUp(t)
	before := openFds(t)
	return func() {
		t.Helper()
		after := openFds(t)
		if !slices.Equal(before, after) {
			t.Errorf("fds changed:\nbefore %v\nafter  %v", before, after)
		}
	}
}

// warmUp makes the Go runtime open what it opens once per process (the
// netpoller's epoll fd, the pidfd probe), so that it is not taken for a
// leak.
func warmUp(t *testing.T) {
	t.Helper()
	_, _ = (&Runtime{Binary: "/bin/true"}).Version(context.Background())
}

func openFds(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory fd of ReadDir itself
		}
		fds = append(fds, e.Name()+"->"+target)
	}
	slices.Sort(fds)
	return fds
}

// waitSpawner follows the reaper rule as the shim does: os/exec starts the
// command but never waits for it; the exit is collected with wait4 on its
// pid (the shim's reaper does wait4(-1)), and the handle is released.
type waitSpawner struct{}

func (s waitSpawner) Run(cmd *exec.Cmd) (int, error) {
	wait, err := s.Start(cmd)
	if err != nil {
		return -1, err
	}
	return wait()
}

func (waitSpawner) Start(cmd *exec.Cmd) (func() (int, error), error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() (int, error) {
		defer cmd.Process.Release()
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(cmd.Process.Pid, &ws, 0, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return -1, err
			}
			if ws.Signaled() {
				return 128 + int(ws.Signal()), nil
			}
			return ws.ExitStatus(), nil
		}
	}, nil
}

func TestReaperRuleSpawner(t *testing.T) {
	defer checkFds(t)()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	bin := fakeRuntime(t, dir, `case "$1" in
state) echo '{"id":"c1","pid":42,"status":"running"}';;
kill) echo "container not running" >&2; exit 1;;
start) echo $$ >`+pidFile+`; exec sleep 60;;
esac
`)
	for _, s := range []Spawner{waitSpawner{}, plainWaitSpawner{}} {
		r := &Runtime{Binary: bin, Spawner: s}
		if st, err := r.State(context.Background(), "c1"); err != nil || st.Pid != 42 {
			t.Errorf("%T: state = %+v, %v", s, st, err)
		}
		if err := r.Kill(context.Background(), "c1", 9, false); !IsNotFound(err) || err.Error() != "kill: container not running" {
			t.Errorf("%T: kill = %v", s, err)
		}
	}
	os.Remove(pidFile)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := (&Runtime{Binary: bin, Spawner: waitSpawner{}}).Start(ctx, "c1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("start with a deadline: %v", err)
	}
	if pid := readPid(t, pidFile); !gone(pid) {
		killOwn(t, pid)
		t.Errorf("runtime process %d survived the cancellation", pid)
	}
}

// plainWaitSpawner is waitSpawner without Start: a plain Spawner.
type plainWaitSpawner struct{}

func (plainWaitSpawner) Run(cmd *exec.Cmd) (int, error) { return waitSpawner{}.Run(cmd) }
