package oom

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/cgroups"
)

// Tests against the host's real cgroupfs, as root. Every cgroup is created
// below a unique top-level name and removed again; every process started is
// killed and reaped by its pid.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func uniqueName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "xstack-oom-test-" + hex.EncodeToString(b)
}

// newV1Cgroup creates an empty v1 (hybrid) cgroup set, removed at the end.
func newV1Cgroup(t *testing.T) cgroups.Manager {
	t.Helper()
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("cgroup v2 host: no v1 memory hierarchy")
	}
	m, err := cgroups.New("/"+uniqueName(t)+"/c", "c")
	if err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	if _, ok := paths["memory"]; !ok {
		t.Skip("no v1 memory hierarchy")
	}
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("destroy: %v", err)
		}
		for _, dir := range paths {
			if err := unix.Rmdir(filepath.Dir(dir)); err != nil && err != unix.ENOENT {
				t.Errorf("rmdir %s: %v", filepath.Dir(dir), err)
			}
		}
	})
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	return m
}

// hog is a command that touches 64 MiB of anonymous memory: python3 (its
// real executable, not a pyenv shim) or else perl, both of which fill a
// string byte by byte.
func hog(t *testing.T) []string {
	t.Helper()
	if out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output(); err == nil {
		if exe := strings.TrimSpace(string(out)); exe != "" {
			return []string{exe, "-c", "b = b'x' * (64 << 20)"}
		}
	}
	if perl, err := exec.LookPath("perl"); err == nil {
		return []string{perl, "-e", `my $x = "x" x (64 << 20);`}
	}
	t.Skip("neither python3 nor perl to allocate memory with")
	return nil
}

// gated is a process that waits for a line on stdin, then execs argv.
type gated struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan error
}

func startGated(t *testing.T, argv []string) *gated {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", `read x; exec "$0" "$@"`}, argv...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gated{cmd: cmd, stdin: stdin, exited: make(chan error, 1)}
	go func() { g.exited <- cmd.Wait() }()
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		select {
		case err := <-g.exited:
			g.exited <- err
		case <-time.After(10 * time.Second):
			t.Errorf("pid %d did not exit", pid)
		}
	})
	return g
}

func (g *gated) release(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(g.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
}

// TestWatchRealV1OOM runs a process past a 16 MiB memory (and memory+swap)
// limit of a real v1 memory cgroup and expects the OOM killer to kill it
// and Watch to report it.
func TestWatchRealV1OOM(t *testing.T) {
	requireRoot(t)
	argv := hog(t)
	m := newV1Cgroup(t)
	memDir := m.Paths()["memory"]
	limit := int64(16 << 20)
	res := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	if _, err := os.Stat(filepath.Join(memDir, "memory.memsw.limit_in_bytes")); err == nil {
		res.Memory.Swap = &limit // swap must not absorb the excess
	}
	if err := m.Set(res); err != nil {
		t.Fatal(err)
	}

	warmUpPoller(t)
	before := openFDs(t)

	g := startGated(t, argv)
	if err := m.Enter(g.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	var c counter
	stop, err := Watch(m, c.onOOM)
	if err != nil {
		t.Fatal(err)
	}
	c.requireCalls(t, 0, 50*time.Millisecond)
	g.release(t)
	c.waitCalls(t, 1, 10*time.Second)

	select {
	case err := <-g.exited:
		g.exited <- err
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("%s ended with %v, want SIGKILL by the OOM killer", argv[0], err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running", argv[0])
	}
	if n, err := m.OOMKillCount(); err != nil || n < 1 {
		t.Errorf("oom_kill = %d, %v; want >= 1", n, err)
	}
	t.Logf("onOOM called %d times", c.calls())

	stop()
	stop() // twice is safe
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before, %d after (process reaped, watch stopped)", before, after)
	}
}

// TestWatchRealV1Removal: removing the cgroup makes the kernel signal the
// eventfd once more; that is not an OOM, and the goroutine ends.
func TestWatchRealV1Removal(t *testing.T) {
	requireRoot(t)
	m := newV1Cgroup(t)
	var c counter
	w, err := watchV1(m.Paths()["memory"], c.onOOM)
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop()
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		t.Fatal("watch goroutine still running after the cgroup was removed")
	}
	if c.calls() != 0 {
		t.Errorf("onOOM called %d times for a removal", c.calls())
	}
}

// TestWatchRealV2NoMemory: the hybrid host's cgroup2 tree has no memory
// controller, so a cgroup there has no memory.events and Watch says so.
func TestWatchRealV2NoMemory(t *testing.T) {
	requireRoot(t)
	if cgroups.DetectMode() != cgroups.Hybrid {
		t.Skip("not a hybrid host")
	}
	root := "/sys/fs/cgroup/unified"
	if content, err := os.ReadFile(filepath.Join(root, "cgroup.subtree_control")); err != nil {
		t.Fatal(err)
	} else if strings.Contains(string(content), "memory") {
		t.Skip("this host's cgroup2 tree has a memory controller")
	}
	dir := filepath.Join(root, uniqueName(t))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Rmdir(dir); err != nil {
			t.Errorf("rmdir %s: %v", dir, err)
		}
	})
	before := openFDs(t)
	_, err := Watch(cgroups.Load(map[string]string{"": dir}), func() {})
	if !errors.Is(err, cgroups.ErrControllerMissing) || !strings.Contains(err.Error(), "memory") {
		t.Fatalf("err = %v, want ErrControllerMissing naming memory", err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("failed Watch leaked descriptors: %d -> %d", before, after)
	}
}
