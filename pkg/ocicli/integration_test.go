package ocicli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The runtimes the integration tests drive: runc when installed, and xrunc
// always (a missing build is a failure, not a skip).
func runtimeBinaries(t *testing.T) map[string]string {
	bins := map[string]string{}
	if _, err := os.Stat("/usr/sbin/runc"); err == nil {
		bins["runc"] = "/usr/sbin/runc"
	} else {
		t.Logf("runc not installed: testing xrunc only")
	}
	dir := os.Getenv("XSTACK_BINDIR")
	if dir == "" {
		dir = "../../bin"
	}
	xrunc, err := filepath.Abs(filepath.Join(dir, "xrunc"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(xrunc); err != nil {
		t.Fatalf("%s not built: run make build (%v)", xrunc, err)
	}
	bins["xrunc"] = xrunc
	return bins
}

// requireRoot skips without root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (containers, cgroups)")
	}
}

// TestMain makes the test process a child subreaper, as the shim is: the
// containers' inits, detached exec processes and a fake runtime's orphans
// become its children, so the tests can reap exactly what they started.
func TestMain(m *testing.M) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestRuntimeLifecycle(t *testing.T) {
	requireRoot(t)
	bins := runtimeBinaries(t)
	for _, name := range []string{"runc", "xrunc"} {
		bin, ok := bins[name]
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) { testLifecycle(t, name, bin) })
	}
}

// env is one runtime's private world: state root, log, bundle, cgroup.
type env struct {
	t        *testing.T
	rt       *Runtime
	dir      string
	bundle   string
	cgParent string // /xstack-ocicli-<rand>
	spec     *specs.Spec
}

func newEnv(t *testing.T, bin string) *env {
	dir := t.TempDir()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	e := &env{
		t:        t,
		dir:      dir,
		rt:       &Runtime{Binary: bin, Root: filepath.Join(dir, "root"), LogFile: filepath.Join(dir, "log.json")},
		cgParent: "/xstack-ocicli-" + hex.EncodeToString(rnd[:]),
	}
	t.Cleanup(e.removeCgroups)
	e.bundle, e.spec = makeBundle(t, dir, bin, e.cgParent+"/c1")
	return e
}

// makeBundle builds a busybox-static bundle with `<runtime> spec`'s config,
// edited: no terminal, sleep 100, the given cgroupsPath.
func makeBundle(t *testing.T, dir, bin, cgroupsPath string) (string, *specs.Spec) {
	t.Helper()
	bundle := filepath.Join(dir, "bundle")
	rootBin := filepath.Join(bundle, "rootfs", "bin")
	if err := os.MkdirAll(rootBin, 0o755); err != nil {
		t.Fatal(err)
	}
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static: %v", err)
	}
	if err := os.WriteFile(filepath.Join(rootBin, "busybox"), busybox, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"sh", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(rootBin, l)); err != nil {
			t.Fatal(err)
		}
	}
	specBin := "/usr/sbin/runc"
	if _, err := os.Stat(specBin); err != nil {
		specBin = bin
	}
	cmd := exec.Command(specBin, "spec")
	cmd.Dir = bundle
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s spec: %v: %s", specBin, err, out)
	}
	var s specs.Spec
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.Process.Terminal = false
	s.Process.Args = []string{"sleep", "100"}
	s.Linux.CgroupsPath = cgroupsPath
	if b, err = json.MarshalIndent(&s, "", "  "); err == nil {
		err = os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return bundle, &s
}

// create creates id and registers its forced deletion and the reaping of
// its init (a child of this subreaper) at cleanup.
func (e *env) create(id string, o CreateOpts) (int, error) {
	if err := e.rt.Create(context.Background(), id, e.bundle, o); err != nil {
		return 0, err
	}
	pid := 0
	if o.PidFile != "" {
		pid = readPid(e.t, o.PidFile)
	}
	e.t.Cleanup(func() {
		if err := e.rt.Delete(context.Background(), id, true); err != nil {
			e.t.Errorf("cleanup: delete --force %s: %v", id, err)
		}
		if pid > 0 {
			killOwn(e.t, pid)
		}
	})
	return pid, nil
}

func (e *env) state(id string) *State {
	e.t.Helper()
	s, err := e.rt.State(context.Background(), id)
	if err != nil {
		e.t.Fatalf("state %s: %v", id, err)
	}
	return s
}

func (e *env) waitStatus(id, want string) {
	e.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s := e.state(id)
		if s.Status == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("state %s: status %q, want %q", id, s.Status, want)
		}
	}
}

// cgroupMounts lists the mount points of every cgroup hierarchy (v1
// controllers, named ones and the v2 unified one).
func cgroupMounts(t *testing.T) map[string]string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mounts := map[string]string{} // mount point -> super options (controllers)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, pf := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(pf) < 3 {
			continue
		}
		if pf[0] == "cgroup" || pf[0] == "cgroup2" {
			mounts[fields[4]] = pf[0] + "," + pf[2]
		}
	}
	return mounts
}

// pidsDir is the container's cgroup directory of the pids controller.
func (e *env) pidsDir(id string) string {
	for mp, opts := range cgroupMounts(e.t) {
		if slices.Contains(strings.Split(opts, ","), "pids") {
			return filepath.Join(mp, e.cgParent, id)
		}
	}
	for mp, opts := range cgroupMounts(e.t) {
		if strings.HasPrefix(opts, "cgroup2,") {
			return filepath.Join(mp, e.cgParent, id)
		}
	}
	e.t.Fatal("no pids cgroup")
	return ""
}

// removeCgroups removes what is left of the test's cgroup parent in every
// hierarchy (the runtime removes the container's own on delete).
func (e *env) removeCgroups() {
	for mp := range cgroupMounts(e.t) {
		parent := filepath.Join(mp, e.cgParent)
		ents, _ := os.ReadDir(parent)
		for _, ent := range ents {
			if ent.IsDir() {
				_ = os.Remove(filepath.Join(parent, ent.Name()))
			}
		}
		if err := os.Remove(parent); err != nil && !errors.Is(err, os.ErrNotExist) {
			e.t.Errorf("cleanup: rmdir %s: %v", parent, err)
		}
	}
}

func testLifecycle(t *testing.T, name, bin string) {
	defer checkFds(t)()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where Exec's --process files go
	ctx := context.Background()
	e := newEnv(t, bin)
	r := e.rt

	v, err := r.Version(ctx)
	if err != nil || !strings.HasPrefix(v, name+" version ") {
		t.Errorf("version = %q, %v", v, err)
	}

	// Errors for an unknown id.
	err = r.Start(ctx, "missing")
	var rerr *Error
	if !errors.As(err, &rerr) {
		t.Fatalf("start missing: err = %#v, want *Error", err)
	}
	if rerr.Command != "start" || rerr.ExitStatus == 0 || rerr.LogMessage != "container does not exist" || !IsNotFound(err) || !IsNotExist(err) {
		t.Errorf("start missing: %+v", rerr)
	}
	if got := err.Error(); got != "start: container does not exist" {
		t.Errorf("start missing: Error() = %q", got)
	}
	t.Logf("%s: start missing: exit %d, output %q", name, rerr.ExitStatus, rerr.Output)
	if _, err := r.State(ctx, "missing"); !IsNotExist(err) {
		t.Errorf("state missing: %v", err)
	}
	if err := r.Delete(ctx, "missing", false); !IsNotFound(err) {
		t.Errorf("delete missing: %v", err)
	}
	if err := r.Delete(ctx, "missing", true); err != nil {
		t.Errorf("delete --force missing: %v, want nil", err)
	}

	// Create, with stdio /dev/null and a pid file.
	pidFile := filepath.Join(e.dir, "init.pid")
	before := time.Now()
	pid, err := e.create("c1", CreateOpts{PidFile: pidFile})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	st := e.state("c1")
	if st.ID != "c1" || st.Status != "created" || st.Pid != pid || st.Bundle != e.bundle ||
		st.Rootfs != filepath.Join(e.bundle, "rootfs") || st.Created.Before(before.Add(-time.Second)) {
		t.Errorf("state after create = %+v, pid file %d", st, pid)
	}
	if err := r.Create(ctx, "c1", e.bundle, CreateOpts{}); !IsAlreadyExists(err) {
		t.Errorf("duplicate create: %v", err)
	} else {
		t.Logf("%s: duplicate create: %v", name, err)
	}

	if err := r.Start(ctx, "c1"); err != nil {
		t.Fatalf("start: %v", err)
	}
	if st := e.state("c1"); st.Status != "running" || st.Pid != pid {
		t.Errorf("state after start = %+v", st)
	}
	if pids, err := r.Ps(ctx, "c1"); err != nil || !slices.Contains(pids, pid) {
		t.Errorf("ps = %v, %v; want it to contain %d", pids, err, pid)
	}

	// Concurrent commands on one Runtime.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if st, err := r.State(ctx, "c1"); err != nil || st.Status != "running" {
				t.Errorf("concurrent state: %+v, %v", st, err)
			}
		})
	}
	wg.Wait()

	// Exec without --detach: the runtime's status is the process's.
	proc := *e.spec.Process
	proc.Args = []string{"sh", "-c", "exit 3"}
	err = r.Exec(ctx, "c1", &proc, ExecOpts{})
	if !errors.As(err, &rerr) || rerr.ExitStatus != 3 || rerr.Command != "exec" {
		t.Errorf("exec exit 3: err = %#v", err)
	} else {
		t.Logf("%s: exec exit 3: %v (log message %q)", name, err, rerr.LogMessage)
	}
	proc.Args = []string{"sh", "-c", "exit 0"}
	if err := r.Exec(ctx, "c1", &proc, ExecOpts{}); err != nil {
		t.Errorf("exec exit 0: %v", err)
	}
	// Exec with --detach: returns once the process runs; its pid in the pid file.
	proc.Args = []string{"sleep", "100"}
	execPidFile := filepath.Join(e.dir, "e1.pid")
	if err := r.Exec(ctx, "c1", &proc, ExecOpts{Detach: true, PidFile: execPidFile}); err != nil {
		t.Fatalf("exec --detach: %v", err)
	}
	execPid := readPid(t, execPidFile)
	// The pid file may name the process before it has finished its execve
	// (seen with runc: an empty cmdline for a moment).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(execPid) + "/cmdline")
		if err == nil && strings.HasPrefix(string(cmdline), "sleep\x00100") {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Errorf("exec'd process %d: cmdline %q, %v", execPid, cmdline, err)
			break
		}
	}
	if ppid := parentOf(execPid); ppid != os.Getpid() {
		t.Logf("%s: detached exec process %d has parent %d, not this subreaper %d", name, execPid, ppid, os.Getpid())
	}
	if pids, err := r.Ps(ctx, "c1"); err != nil || !slices.Contains(pids, execPid) || !slices.Contains(pids, pid) {
		t.Errorf("ps = %v, %v; want %d and %d", pids, err, pid, execPid)
	}
	killOwn(t, execPid)
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("exec left behind in TMPDIR: %v", ents)
	}

	if err := r.Pause(ctx, "c1"); err != nil {
		t.Fatalf("pause: %v", err)
	}
	if st := e.state("c1"); st.Status != "paused" {
		t.Errorf("state after pause: %q", st.Status)
	}
	if err := r.Resume(ctx, "c1"); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if st := e.state("c1"); st.Status != "running" {
		t.Errorf("state after resume: %q", st.Status)
	}

	t.Run("update", func(t *testing.T) {
		limit := int64(42)
		err := r.Update(ctx, "c1", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}})
		if err != nil && name == "xrunc" && strings.Contains(err.Error(), `"update" does not exist`) {
			t.Skipf("skipped for xrunc: no update command yet (%v)", err)
		}
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		b, err := os.ReadFile(filepath.Join(e.pidsDir("c1"), "pids.max"))
		if err != nil || strings.TrimSpace(string(b)) != "42" {
			t.Errorf("pids.max = %q, %v; want 42", b, err)
		}
	})

	// SIGKILL; the init is our child (subreaper) and reads as stopped while
	// it is a zombie.
	if err := r.Kill(ctx, "c1", int(unix.SIGKILL), false); err != nil {
		t.Fatalf("kill: %v", err)
	}
	e.waitStatus("c1", "stopped")
	err = r.Kill(ctx, "c1", int(unix.SIGKILL), false)
	if !IsNotFound(err) || !IsAlreadyStopped(err) {
		t.Errorf("kill of a stopped container: %v, want IsNotFound", err)
	}
	t.Logf("%s: kill of a stopped container: %v", name, err)
	if err := r.Kill(ctx, "c1", int(unix.SIGKILL), true); err != nil {
		t.Errorf("kill --all of a stopped container: %v, want nil", err)
	}
	if err := r.Start(ctx, "c1"); !IsAlreadyStopped(err) {
		t.Errorf("start of a stopped container: %v", err)
	}
	if err := r.Pause(ctx, "c1"); !IsNotFound(err) {
		t.Errorf("pause of a stopped container: %v", err)
	}
	if pids, err := r.Ps(ctx, "c1"); err != nil || len(pids) != 0 {
		t.Errorf("ps of a stopped container = %v, %v; want none", pids, err)
	}
	killOwn(t, pid) // reap the zombie
	if st := e.state("c1"); st.Status != "stopped" {
		t.Errorf("state after reaping: %q", st.Status)
	}

	if err := r.Delete(ctx, "c1", false); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := r.State(ctx, "c1"); !IsNotExist(err) {
		t.Errorf("state after delete: %v", err)
	}
	if err := r.Delete(ctx, "c1", false); !IsNotFound(err) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.pidsDir("c1"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("container cgroup left after delete: %v", err)
	}
}

// TestCreatedContainer covers the other paths out of "created": delete
// without force, and delete --force of a running container.
func TestCreatedContainer(t *testing.T) {
	requireRoot(t)
	for name, bin := range runtimeBinaries(t) {
		t.Run(name, func(t *testing.T) {
			defer checkFds(t)()
			ctx := context.Background()
			e := newEnv(t, bin)
			pidFile := filepath.Join(e.dir, "init.pid")
			pid, err := e.create("c1", CreateOpts{PidFile: pidFile})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.rt.Delete(ctx, "c1", false); err != nil {
				t.Errorf("delete of a created container: %v", err)
			}
			killOwn(t, pid) // reaped (the runtime killed it)
			if !gone(pid) {
				t.Errorf("init %d still exists after delete", pid)
			}
			// A running container needs --force.
			if pid, err = e.create("c1", CreateOpts{PidFile: pidFile}); err != nil {
				t.Fatal(err)
			}
			if err := e.rt.Start(ctx, "c1"); err != nil {
				t.Fatal(err)
			}
			if err := e.rt.Delete(ctx, "c1", false); err == nil {
				t.Error("delete of a running container without force succeeded")
			} else {
				t.Logf("%s: delete running: %v", name, err)
			}
			if err := e.rt.Delete(ctx, "c1", true); err != nil {
				t.Errorf("delete --force of a running container: %v", err)
			}
			killOwn(t, pid)
			if _, err := e.rt.State(ctx, "c1"); !IsNotExist(err) {
				t.Errorf("state after delete --force: %v", err)
			}
		})
	}
}

// parentOf is the ppid of pid, from /proc (0 if unknown).
func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
