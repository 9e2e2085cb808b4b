package shim

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/shim/reaper"
)

// Tests that need a real reaper run in a child test binary: reaper.New
// makes the process a child subreaper that reaps every child with
// wait4(-1), which would break os/exec's Wait in every other test of this
// package. In the child only TestReaperChild runs, and it never calls
// Wait: every process is started with cmd.Start and collected by the
// reaper.

const reaperChildEnv = "XSTACK_SHIM_TEST_REAPER_CHILD"

func TestReaperChild(t *testing.T) {
	if os.Getenv(reaperChildEnv) == "1" {
		reaperChild(t)
		return
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReaperChild$", "-test.count=1", "-test.v", "-test.timeout=300s")
	cmd.Env = append(os.Environ(), reaperChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the reaper tests failed (%v):\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestReaperChild") {
		t.Fatalf("the reaper tests did not run:\n%s", out)
	}
	if testing.Verbose() {
		t.Logf("child:\n%s", out)
	}
}

func reaperChild(t *testing.T) {
	r, err := reaper.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("exit of a running process", func(t *testing.T) { childRunningExit(t, r) })
	t.Run("exit before the pid is known", func(t *testing.T) { childExitBeforePid(t, r) })
	t.Run("exit while starting", func(t *testing.T) { childExitWhileStarting(t, r) })
	t.Run("unknown children are ignored", func(t *testing.T) { childUnknownExit(t, r) })
	t.Run("binary logger", func(t *testing.T) { childBinaryLogger(t, r) })
	t.Run("binary logger ended by close", func(t *testing.T) { childLoggerTerminated(t, r) })
	t.Run("binary logger missing", func(t *testing.T) { childLoggerMissing(t, r) })
	t.Run("binary logger never ready", func(t *testing.T) { childLoggerNeverReady(t, r) })
}

// childService is a Service on the real reaper, as NewService makes it.
func childService(t *testing.T, r *reaper.Reaper) (*exitTest, *container) {
	t.Helper()
	es := newEventServer(t)
	s := NewService(Config{Namespace: "testns", EventsAddress: es.address(), Log: discardLog(), Reaper: r})
	t.Cleanup(s.Close)
	x := &exitTest{t: t, s: s, es: es, ns: "testns"}
	return x, x.container("c1")
}

// startChild starts a process that the reaper alone collects.
func startChild(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		// Killed by pid if still there (the reaper collects it), then the
		// handle is released; never waited for.
		if cmd.Process.Signal(unix.Signal(0)) == nil {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		_ = cmd.Process.Release()
	})
	return cmd
}

func waitExited(t *testing.T, p *process) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the process's Wait channel did not close")
	}
}

func childRunningExit(t *testing.T, r *reaper.Reaper) {
	x, c := childService(t, r)
	cmd := startChild(t, "sleep", "60")
	pid := cmd.Process.Pid
	x.create(c, pid, nil)
	x.start(c, nil)
	if exited(c.init) {
		t.Fatal("exited before the kill")
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExited(t, c.init)
	// The exit is recorded (Wait returns) before its event is queued.
	x.expectEventually(fmt.Sprintf("create(c1 pid=%d)", pid), fmt.Sprintf("start(c1 pid=%d)", pid), fmt.Sprintf("exit(c1/c1 pid=%d status=137)", pid))
}

func childExitBeforePid(t *testing.T, r *reaper.Reaper) {
	x, c := childService(t, r)
	w := x.s.watchStart()
	cmd := startChild(t, "/bin/sh", "-c", "exit 3")
	pid := cmd.Process.Pid
	waitFor(t, "the exit in the start watch", func() bool {
		x.s.exitMu.Lock()
		defer x.s.exitMu.Unlock()
		for _, e := range w.exits {
			if e.Pid == pid {
				return true
			}
		}
		return false
	})
	x.s.started(w, c.init, pid)
	x.expect()
	x.s.events.Publish(c.namespace, TopicCreate, &eventstypes.TaskCreate{ContainerID: c.id, Pid: uint32(pid)})
	x.s.finishStart(c.init)
	waitExited(t, c.init)
	x.expect(fmt.Sprintf("create(c1 pid=%d)", pid), fmt.Sprintf("exit(c1/c1 pid=%d status=3)", pid))
}

func childExitWhileStarting(t *testing.T, r *reaper.Reaper) {
	x, c := childService(t, r)
	w := x.s.watchStart()
	cmd := startChild(t, "sleep", "60")
	pid := cmd.Process.Pid
	x.s.started(w, c.init, pid)
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the exit held back", func() bool {
		c.init.mu.Lock()
		defer c.init.mu.Unlock()
		return c.init.pendingExit != nil
	})
	x.expect()
	if exited(c.init) {
		t.Error("exit recorded while starting")
	}
	x.s.events.Publish(c.namespace, TopicCreate, &eventstypes.TaskCreate{ContainerID: c.id, Pid: uint32(pid)})
	x.s.finishStart(c.init)
	waitExited(t, c.init)
	x.expect(fmt.Sprintf("create(c1 pid=%d)", pid), fmt.Sprintf("exit(c1/c1 pid=%d status=143)", pid))
}

func childUnknownExit(t *testing.T, r *reaper.Reaper) {
	x, _ := childService(t, r)
	sub := r.Subscribe()
	defer sub.Close()
	cmd := startChild(t, "/bin/sh", "-c", "exit 9")
	pid := cmd.Process.Pid
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e.Pid == pid {
			break
		}
	}
	x.expect()
}

// loggerScript is a binary:// logger: it records its id, namespace and
// arguments, reports ready (closes fd 5), then copies fd 3 and 4 to files.
const loggerScript = `#!/bin/sh
d=$(dirname "$0")
printf '%s\n' "$CONTAINER_ID" "$CONTAINER_NAMESPACE" "$@" > "$d/info"
echo $$ > "$d/pid"
exec 5>&-
cat <&3 > "$d/out"
cat <&4 > "$d/err"
echo done > "$d/done"
`

func fileHas(path, want string) func() bool {
	return func() bool {
		b, err := os.ReadFile(path)
		return err == nil && string(b) == want
	}
}

func childBinaryLogger(t *testing.T, r *reaper.Reaper) {
	dir := t.TempDir()
	logger := filepath.Join(dir, "logger")
	writeExecutable(t, logger, loggerScript)
	pio, err := openIO(stdioPaths{Stdout: "binary://" + logger + "?level=debug"}, "ns1", "c1", r)
	if err != nil {
		t.Fatal(err)
	}
	defer pio.close()
	// Ready means it ran up to closing fd 5.
	if b, err := os.ReadFile(filepath.Join(dir, "info")); err != nil || string(b) != "c1\nns1\nlevel\ndebug\n" {
		t.Errorf("logger saw %q, %v; want id, namespace and the query as arguments", b, err)
	}
	c := pio.container
	if c.Stdout == nil || c.Stderr == nil || c.Stdout == c.Stderr {
		t.Fatalf("container stdio %+v: want two pipes", c)
	}
	if _, err := c.Stdout.Write([]byte("out line\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stderr.Write([]byte("err line\n")); err != nil {
		t.Fatal(err)
	}
	pio.containerFilesHandedOver()
	waitFor(t, "the logger to finish", fileHas(filepath.Join(dir, "done"), "done\n"))
	if b, _ := os.ReadFile(filepath.Join(dir, "out")); string(b) != "out line\n" {
		t.Errorf("logger's stdout %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "err")); string(b) != "err line\n" {
		t.Errorf("logger's stderr %q", b)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitFor(t, "the logger to be reaped", func() bool { return pid > 0 && unix.Kill(pid, 0) == unix.ESRCH })
}

func childLoggerTerminated(t *testing.T, r *reaper.Reaper) {
	dir := t.TempDir()
	logger := filepath.Join(dir, "logger")
	writeExecutable(t, logger, `#!/bin/sh
d=$(dirname "$0")
echo $$ > "$d/pid"
trap 'echo term > "$d/term"; exit 0' TERM
exec 5>&-
while :; do sleep 0.05; done
`)
	pio, err := openIO(stdioPaths{Stdout: "binary://" + logger}, "ns1", "c1", r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		t.Fatalf("logger pid %q", b)
	}
	t.Cleanup(func() {
		if unix.Kill(pid, 0) == nil {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	})
	pio.containerFilesHandedOver()
	pio.close()
	waitFor(t, "the logger to get SIGTERM", fileHas(filepath.Join(dir, "term"), "term\n"))
	waitFor(t, "the logger to be reaped", func() bool { return unix.Kill(pid, 0) == unix.ESRCH })
}

func childLoggerMissing(t *testing.T, r *reaper.Reaper) {
	pio, err := openIO(stdioPaths{Stdout: "binary:///nonexistent/logger"}, "ns1", "c1", r)
	if err == nil {
		pio.close()
		t.Fatal("openIO with a missing logger succeeded")
	}
}

// childLoggerNeverReady: a logger that never closes fd 5 makes openIO
// fail after its wait (shortened here); the logger is not left running.
func childLoggerNeverReady(t *testing.T, r *reaper.Reaper) {
	// Not parallel: the subtests of the reaper child run one by one.
	defer func(d time.Duration) { loggerReadyTimeout = d }(loggerReadyTimeout)
	loggerReadyTimeout = 300 * time.Millisecond
	dir := t.TempDir()
	logger := filepath.Join(dir, "logger")
	writeExecutable(t, logger, `#!/bin/sh
echo $$ > "$(dirname "$0")/pid"
exec sleep 60
`)
	_, err := openIO(stdioPaths{Stdout: "binary://" + logger}, "ns1", "c1", r)
	if err == nil {
		t.Fatal("openIO succeeded with a logger that never got ready")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		t.Fatalf("logger pid %q", b)
	}
	defer func() {
		if unix.Kill(pid, 0) == nil {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	if unix.Kill(pid, 0) == nil {
		t.Errorf("logger %d still running after openIO gave up on it", pid)
	}
}
