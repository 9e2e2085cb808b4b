package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Main runs the tests of a package, then the after functions (reports),
// and removes the caches that the harness built for this test binary. Use
// it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M, after ...func()) {
	code := m.Run()
	for _, f := range after {
		f()
	}
	cacheMu.Lock()
	if cacheDir != "" {
		os.RemoveAll(cacheDir)
	}
	cacheMu.Unlock()
	os.Exit(code)
}

// RequireRoot skips the test with a printed reason when not running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("integration tests need root (euid 0); run them with sudo or as root in CI")
	}
}

// RandHex returns n random bytes, hex-encoded.
func RandHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// RepoRoot is the directory holding xstack's go.mod.
func RepoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	dirs := []string{}
	if ok {
		dirs = append(dirs, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		dirs = append(dirs, wd)
	}
	for _, d := range dirs {
		for dir := d; ; dir = filepath.Dir(dir) {
			b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && strings.Contains(string(b), "module github.com/xstack/xstack\n") {
				return dir, nil
			}
			if dir == filepath.Dir(dir) {
				break
			}
		}
	}
	return "", fmt.Errorf("cannot find the xstack module root (go.mod) from %v", dirs)
}

// BinDir is $XSTACK_BINDIR or <repo>/bin.
func BinDir() string {
	if d := os.Getenv("XSTACK_BINDIR"); d != "" {
		return d
	}
	root, err := RepoRoot()
	if err != nil {
		return "bin"
	}
	return filepath.Join(root, "bin")
}

// registry holds what one test created, cleaned in a fixed order by a single
// t.Cleanup: containers first, then processes, cgroups, and directories.
type registry struct {
	t        testing.TB
	mu       sync.Mutex
	runtimes []*Runtime
	pids     []procRef
	cgroups  []string
	dirs     []string
	funcs    []func()
	cgParent string
}

type procRef struct {
	pid   int
	start string
}

var (
	liveMu       sync.Mutex
	liveRuntimes = map[*Runtime]bool{}
)

func liveRuntimeList() []*Runtime {
	liveMu.Lock()
	defer liveMu.Unlock()
	var out []*Runtime
	for rt := range liveRuntimes {
		out = append(out, rt)
	}
	return out
}

var (
	regMu      sync.Mutex
	registries = map[testing.TB]*registry{}
)

func reg(t testing.TB) *registry {
	regMu.Lock()
	defer regMu.Unlock()
	if r, ok := registries[t]; ok {
		return r
	}
	// testing removes TempDirs in a cleanup registered at the first
	// TempDir call. Make that happen before ours, so our cleanup (which
	// needs the runtime state dirs) runs first.
	_ = t.TempDir()
	r := &registry{t: t}
	registries[t] = r
	t.Cleanup(func() {
		r.cleanup()
		regMu.Lock()
		delete(registries, t)
		regMu.Unlock()
	})
	return r
}

func (r *registry) cleanup() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.funcs) - 1; i >= 0; i-- {
		r.funcs[i]()
	}
	// Containers made from this test's bundles, whichever test owns the
	// runtime (a subtest may use its parent's runtime).
	for _, rt := range liveRuntimeList() {
		rt.deleteBundles(r.dirs)
	}
	for _, rt := range r.runtimes {
		rt.mu.Lock()
		rt.deleteAll()
		rt.closed = true
		rt.mu.Unlock()
		liveMu.Lock()
		delete(liveRuntimes, rt)
		liveMu.Unlock()
	}
	for _, p := range r.pids {
		if procStartTime(p.pid) == p.start && p.start != "" {
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	for _, cg := range r.cgroups {
		if err := RemoveCgroup(cg); err != nil {
			r.t.Errorf("cleanup: %v", err)
		}
	}
	for _, d := range r.dirs {
		os.RemoveAll(d)
	}
}

// OnCleanup registers f to run at the start of the harness cleanup, before
// the containers are deleted (last registered runs first).
func OnCleanup(t testing.TB, f func()) {
	r := reg(t)
	r.mu.Lock()
	r.funcs = append(r.funcs, f)
	r.mu.Unlock()
}

// KillOnCleanup records a process started by the test; it is SIGKILLed at
// cleanup if it still runs (same pid and start time).
func KillOnCleanup(t testing.TB, pid int) {
	r := reg(t)
	r.mu.Lock()
	r.pids = append(r.pids, procRef{pid, procStartTime(pid)})
	r.mu.Unlock()
}

// procStartTime is field 22 of /proc/PID/stat, "" if the process is gone.
func procStartTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// ProcState is the state letter of /proc/PID/stat (R, S, Z...), "" if gone.
func ProcState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// ProcAlive reports whether pid exists and is not a zombie.
func ProcAlive(pid int) bool {
	st := ProcState(pid)
	return st != "" && st != "Z" && st != "X"
}

// WaitProcGone waits until pid is gone or a zombie.
func WaitProcGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !ProcAlive(pid) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return !ProcAlive(pid)
}

// TempDir makes a directory with a short path (unix socket paths are
// limited to 108 bytes) and the given mode, removed at cleanup after the
// containers are deleted.
func TempDir(t testing.TB, mode os.FileMode) string {
	t.Helper()
	r := reg(t)
	d, err := os.MkdirTemp("", "xit-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.dirs = append(r.dirs, d)
	r.mu.Unlock()
	return d
}
