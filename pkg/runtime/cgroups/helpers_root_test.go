package cgroups

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Helpers for the tests that use the host's real cgroupfs. They create their
// cgroups below a unique top-level name and remove everything they created.

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
	return "xstack-cgtest-" + hex.EncodeToString(b)
}

// cleanupCgroups destroys m's cgroups at the end of the test and removes the
// parentLevels directories above each of them that the test created.
func cleanupCgroups(t *testing.T, m Manager, parentLevels int) {
	t.Helper()
	paths := m.Paths()
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup Destroy: %v", err)
		}
		dirs := slices.Sorted(func(yield func(string) bool) {
			for _, d := range paths {
				if !yield(d) {
					return
				}
			}
		})
		for _, dir := range slices.Compact(dirs) {
			for i := 0; i < parentLevels; i++ {
				dir = filepath.Dir(dir)
				if err := unix.Rmdir(dir); err != nil && err != unix.ENOENT {
					t.Errorf("cleanup rmdir %s: %v", dir, err)
				}
			}
		}
	})
}

// process is a child started for a test, killed and reaped at its end.
type process struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		// A frozen process only dies once thawed; the test thaws or
		// destroys first, but never hang the test binary on it.
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("pid %d did not exit", p.pid())
		}
	})
	return p
}

// startWorker starts a shell that, once released, burns some CPU inside
// whatever cgroup it was moved to, then becomes "sleep 60".
func startWorker(t *testing.T) *process {
	return startProcess(t, "sh", "-c", `read x; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; exec sleep 60`)
}

func (p *process) release(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "worker to exec sleep", func() bool {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.pid()))
		return err == nil && strings.TrimSpace(string(comm)) == "sleep"
	})
}

// startTicker starts a shell appending a line to a file every 20ms, so a test
// can see whether it really stops when frozen.
func startTicker(t *testing.T) (*process, string) {
	file := filepath.Join(t.TempDir(), "ticks")
	return startProcess(t, "sh", "-c", `while :; do echo x >> "$0"; sleep 0.02; done`, file), file
}

func fileSize(file string) int64 {
	st, err := os.Stat(file)
	if err != nil {
		return 0
	}
	return st.Size()
}

func requireTicking(t *testing.T, file string, want bool) {
	t.Helper()
	if want {
		before := fileSize(file)
		waitFor(t, 5*time.Second, "ticker to tick", func() bool { return fileSize(file) > before })
		return
	}
	before := fileSize(file)
	time.Sleep(300 * time.Millisecond)
	if after := fileSize(file); after != before {
		t.Errorf("ticker ran while frozen: %d -> %d bytes", before, after)
	}
}

// requireKilled waits for the process to die of SIGKILL.
func (p *process) requireKilled(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // leave it for the cleanup
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("pid %d ended with %v, want SIGKILL", p.pid(), err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("pid %d still running", p.pid())
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func procCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	content, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	own, err := parseProcCgroup(string(content))
	if err != nil {
		t.Fatal(err)
	}
	return own
}

func procState(t *testing.T, pid int) string {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if s, ok := strings.CutPrefix(line, "State:"); ok {
			return strings.TrimSpace(s)
		}
	}
	return ""
}

func readReal(t *testing.T, dir, name string) string {
	t.Helper()
	s, err := readFile(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(s)
}

// rootBlockDevice returns "major:minor" of the whole disk holding /, which
// the blkio throttle accepts (it refuses partitions), or "" if unknown.
func rootBlockDevice() string {
	var st unix.Stat_t
	if unix.Stat("/", &st) != nil {
		return ""
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	sys := "/sys/dev/block/" + dev
	if _, err := os.Stat(sys + "/partition"); err == nil {
		parent, err := os.ReadFile(sys + "/../dev")
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(parent))
	}
	if _, err := os.Stat(sys); err != nil {
		return ""
	}
	return dev
}

func containsPid(pids []int, pid int) bool { return slices.Contains(pids, pid) }
