package podman_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xstack/xstack/integration/internal/testenv"
)

const podmanBin = "/usr/bin/podman"

func TestMain(m *testing.M) { testenv.Main(m) }

// podman is a private podman whose containers run on one runtime under test.
type podman struct {
	t      *testing.T
	rt     *testenv.Runtime
	dir    string
	parent string // cgroup parent of the containers (and of conmon)
	cli    *testenv.Runtime
	global []string
}

// newPodman sets up a private podman for rt. At cleanup it removes every
// container, then checks that no process, mount or runtime state is left.
func newPodman(t *testing.T, rt *testenv.Runtime) *podman {
	t.Helper()
	if _, err := os.Stat(podmanBin); err != nil {
		t.Fatalf("%s missing: apt-get install podman (%v)", podmanBin, err)
	}
	dir := testenv.TempDir(t, 0o755)
	p := &podman{
		t: t, rt: rt, dir: dir,
		parent: testenv.CgroupParent(t),
		// Runtime.Exec runs any CLI with its output in files, never pipes,
		// which conmon would inherit and hold open.
		cli: &testenv.Runtime{Name: "podman", Path: podmanBin},
	}
	p.global = []string{
		"--root", filepath.Join(dir, "storage"),
		"--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"),
		"--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
		"--runtime", rt.Path,
		// podman adds "--" to each: the runtime gets --log=FILE and
		// --log-format=json before its commands. Not --root: podman 4.3
		// leaves its runtime flags out of `delete --force`, which would
		// then miss the state; the runtime keeps its default root and the
		// checks pick the test's containers out by bundle.
		"--runtime-flag", "log=" + rt.LogFile,
		"--runtime-flag", "log-format=json",
	}
	testenv.OnCleanup(t, p.cleanup)
	return p
}

// run runs podman with the private globals and args.
func (p *podman) run(args ...string) testenv.Result {
	p.t.Helper()
	return p.cli.Exec(p.t, testenv.Opts{NoGlobal: true, Timeout: 90 * time.Second}, append(append([]string{}, p.global...), args...)...)
}

func (p *podman) mustRun(args ...string) testenv.Result {
	p.t.Helper()
	r := p.run(args...)
	if r.Code != 0 {
		p.t.Fatalf("%s\nruntime log: %s", r, p.rt.LastError(p.t))
	}
	return r
}

// runArgs is the start of a `podman run` on a fresh copy of the test
// rootfs. The limits are explicit: podman's default raises RLIMIT_NOFILE
// to the host's maximum, which needs CAP_SYS_RESOURCE (not every CI
// sandbox's root has it) and fails with runc as with xrunc.
func (p *podman) runArgs(name string, flags ...string) []string {
	p.t.Helper()
	rootfs := filepath.Join(p.dir, "rootfs-"+name)
	testenv.NewRootfs(p.t, rootfs)
	args := []string{"run", "--name", name, "--cgroup-parent", p.parent,
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
	if !slices.Contains(flags, "--network") {
		args = append(args, "--network", "none")
	}
	args = append(args, flags...)
	return append(args, "--rootfs", rootfs)
}

// inspect returns the container's podman state.
func (p *podman) inspect(name string) containerState {
	p.t.Helper()
	r := p.mustRun("inspect", "--type", "container", name)
	var out []struct{ State containerState }
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil || len(out) != 1 {
		p.t.Fatalf("podman inspect %s: %v\n%s", name, err, r.Stdout)
	}
	return out[0].State
}

type containerState struct {
	Status   string
	Running  bool
	Paused   bool
	Pid      int
	ExitCode int
}

// waitStatus polls podman until the container has the status.
func (p *podman) waitStatus(name, want string) containerState {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := p.inspect(name)
		if st.Status == want {
			return st
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("container %s is %q, want %q", name, st.Status, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cgroupFile reads a controller file of a container (podman's cgroupfs
// manager names its cgroup libpod-<id> below the parent): v1 is
// "controller/file", v2 the unified file that holds the same setting.
func (p *podman) cgroupFile(name, v1, v2 string) string {
	p.t.Helper()
	id := strings.TrimSpace(p.mustRun("inspect", "--type", "container", "--format", "{{.Id}}", name).Stdout)
	dir, file := filepath.Join(testenv.CgroupRoot, p.parent, "libpod-"+id), v2
	if !testenv.IsCgroupV2Only() {
		controller, f, _ := strings.Cut(v1, "/")
		dir, file = filepath.Join(testenv.CgroupV1Dir(controller), p.parent, "libpod-"+id), f
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		p.t.Fatalf("cgroup of %s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}

// cleanup removes every container; then nothing of the test may be left:
// no conmon or container process (in the test's cgroup or rooted in its
// dir), no mount below its dir, no state in the runtime's root. Leftovers
// are errors, removed (by pid, by mount point) so the next test starts clean.
func (p *podman) cleanup() {
	t := p.t
	if r := p.run("rm", "--all", "--force", "--time", "0"); r.Code != 0 {
		t.Errorf("podman rm --all --force: %s", r)
	}
	// conmon runs podman's cleanup after an exit, in the background.
	deadline := time.Now().Add(10 * time.Second)
	var left []int
	for {
		left = testenv.ProcsUsing(p.dir, p.parent)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range left {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		t.Errorf("process %d left after podman rm: %q", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		var under []string
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], p.dir+"/") {
				under = append(under, f[4])
			}
		}
		for i := len(under) - 1; i >= 0; i-- {
			t.Errorf("mount left after podman rm: %s", under[i])
			syscall.Unmount(under[i], syscall.MNT_DETACH)
		}
	}
	for _, id := range p.runtimeContainers() {
		t.Errorf("%s state of %s left after podman rm", p.rt.Name, id)
		p.rt.Exec(t, testenv.Opts{NoGlobal: true}, "delete", "--force", id)
	}
}

// runtimeContainers lists the containers in the runtime's default root
// whose bundle is below the test's dir (podman keeps bundles there).
func (p *podman) runtimeContainers() []string {
	p.t.Helper()
	r := p.rt.Exec(p.t, testenv.Opts{NoGlobal: true}, "list", "--format", "json")
	if r.Code != 0 {
		p.t.Fatalf("%s list: %s", p.rt.Name, r)
	}
	var list []struct{ ID, Bundle string }
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
		p.t.Fatalf("%s list --format json: %v\n%s", p.rt.Name, err, r.Stdout)
	}
	var ids []string
	for _, c := range list {
		if strings.HasPrefix(c.Bundle, p.dir+"/") {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// TestPodmanRun: `podman run` returns the container's exit code and output,
// applies the user, workdir, env and hostname, runs in a user namespace
// with --uidmap, mounts a read-only root with tmpfs (tmpcopyup), hands the container only fds 0-2, gives it a terminal
// with -t (conmon's console socket), and --rm leaves no container behind.
func TestPodmanRun(t *testing.T) {
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		p := newPodman(t, rt)

		r := p.run(append(p.runArgs("exit7", "--rm"), "/bin/sh", "-c", "echo out-$((6*7)); exit 7")...)
		if r.Code != 7 || strings.TrimSpace(r.Stdout) != "out-42" {
			t.Errorf("%s\nwant exit 7 and out-42", r)
		}

		r = p.mustRun(append(p.runArgs("opts", "--rm", "-u", "1000:1000", "-w", "/tmp", "-e", "XSTACK_K=v1", "--hostname", "pmhost"),
			"/bin/sh", "-c", `echo "$(id -u):$(id -g) $(pwd) $XSTACK_K $(hostname)"`)...)
		if got, want := strings.TrimSpace(r.Stdout), "1000:1000 /tmp v1 pmhost"; got != want {
			t.Errorf("user, workdir, env, hostname: got %q, want %q", got, want)
		}

		// In a user namespace the init cannot search podman's 0700 run
		// dir, where /etc/hosts and /etc/hostname come from. The rootfs
		// belongs to the mapped root, as podman's storage would make it.
		args := p.runArgs("userns", "--rm", "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536", "--hostname", "pmuserns")
		if err := testenv.ChownTree(filepath.Join(p.dir, "rootfs-userns"), 100000, 100000); err != nil {
			t.Fatal(err)
		}
		r = p.mustRun(append(args, "/bin/sh", "-c", "cat /proc/self/uid_map /etc/hostname; echo; grep -c pmuserns /etc/hosts")...)
		if f := strings.Fields(r.Stdout); len(f) != 5 || f[0] != "0" || f[1] != "100000" || f[2] != "65536" || f[3] != "pmuserns" || f[4] == "0" {
			t.Errorf("--uidmap: want the mapping 0 100000 65536, hostname pmuserns and it in /etc/hosts, got %q", r.Stdout)
		}

		// --read-only and --tmpfs: podman asks for tmpfs mounts with
		// "tmpcopyup" on /tmp, /var/tmp, /run and the --tmpfs path.
		r = p.mustRun(append(p.runArgs("ro", "--rm", "--read-only", "--tmpfs", "/scratch:size=1m"),
			"/bin/sh", "-c", "touch /x 2>/dev/null || echo root-ro; touch /tmp/y /scratch/z && echo tmpfs-rw")...)
		if r.Stdout != "root-ro\ntmpfs-rw\n" {
			t.Errorf("--read-only --tmpfs: %q, want a read-only root and writable tmpfs", r.Stdout)
		}

		r = p.mustRun(append(p.runArgs("fds", "--rm"), "/xtest", "fds")...)
		for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
			if fd, _, _ := strings.Cut(l, " "); fd != "0" && fd != "1" && fd != "2" {
				t.Errorf("fd beyond stdio reached the container: %q\n%s", l, r.Stdout)
			}
		}

		r = p.mustRun(append(p.runArgs("tty", "--rm", "-t"), "/xtest", "isatty")...)
		if out := strings.ReplaceAll(r.Stdout, "\r", ""); !strings.Contains(out, "0=1\n1=1\n2=1") {
			t.Errorf("run -t: stdio is not a terminal:\n%q", r.Stdout)
		}

		if r := p.mustRun("ps", "--all", "--quiet"); strings.TrimSpace(r.Stdout) != "" {
			t.Errorf("containers left after run --rm: %q", r.Stdout)
		}
	})
}

// TestPodmanDetached: a detached container through its life: inspect
// (running, pid), cgroup limits and update, exec (output, exit code,
// user, tty), top, a second container in its namespaces, pause and unpause, stop by signal with the exit status,
// restart, kill, rm.
func TestPodmanDetached(t *testing.T) {
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		p := newPodman(t, rt)
		p.mustRun(append(p.runArgs("c1", "-d", "--hostname", "c1host", "--memory", "64m", "--pids-limit", "42"), "/xtest", "pause")...)
		st := p.waitStatus("c1", "running")
		if st.Pid <= 0 || !testenv.ProcAlive(st.Pid) {
			t.Fatalf("running container has no live pid: %+v", st)
		}
		// The runtime's own view, which the checks for leftovers rely on.
		if ids := p.runtimeContainers(); len(ids) != 1 {
			t.Errorf("%s lists %d containers of the test, want 1: %q", rt.Name, len(ids), ids)
		}
		if got := p.cgroupFile("c1", "memory/memory.limit_in_bytes", "memory.max"); got != strconv.Itoa(64<<20) {
			t.Errorf("memory.limit_in_bytes = %s, want %d", got, 64<<20)
		}
		if got := p.cgroupFile("c1", "pids/pids.max", "pids.max"); got != "42" {
			t.Errorf("pids.max = %s, want 42", got)
		}
		// podman update hands the runtime `update --resources FILE`.
		p.mustRun("update", "--memory", "128m", "c1")
		if got := p.cgroupFile("c1", "memory/memory.limit_in_bytes", "memory.max"); got != strconv.Itoa(128<<20) {
			t.Errorf("after update: memory.limit_in_bytes = %s, want %d", got, 128<<20)
		}

		if r := p.mustRun("exec", "c1", "/bin/echo", "hi"); strings.TrimSpace(r.Stdout) != "hi" {
			t.Errorf("exec echo: %q", r.Stdout)
		}
		if r := p.run("exec", "c1", "/bin/sh", "-c", "exit 4"); r.Code != 4 {
			t.Errorf("exec exit 4: %s", r)
		}
		if r := p.mustRun("exec", "-u", "1000:1000", "c1", "/xtest", "id"); !strings.Contains(r.Stdout, "uid=1000\ngid=1000\n") {
			t.Errorf("exec -u 1000:1000:\n%s", r.Stdout)
		}
		if r := p.mustRun("exec", "-t", "c1", "/xtest", "isatty"); !strings.Contains(strings.ReplaceAll(r.Stdout, "\r", ""), "1=1") {
			t.Errorf("exec -t: stdout is not a terminal:\n%q", r.Stdout)
		}
		if r := p.mustRun("top", "c1"); !strings.Contains(r.Stdout, "/xtest pause") {
			t.Errorf("top does not show the init:\n%s", r.Stdout)
		}
		// Another container in c1's namespaces, joined by path.
		r := p.mustRun(append(p.runArgs("joiner", "--rm", "--pid", "container:c1", "--uts", "container:c1", "--ipc", "container:c1", "--network", "container:c1"),
			"/bin/sh", "-c", "hostname; tr '\\0' ' ' < /proc/1/cmdline")...)
		if r.Stdout != "c1host\n/xtest pause " {
			t.Errorf("in c1's namespaces: %q, want c1's hostname and its init as pid 1", r.Stdout)
		}

		p.mustRun("pause", "c1")
		if st := p.inspect("c1"); st.Status != "paused" {
			t.Errorf("after pause: status %q", st.Status)
		}
		frozen := "FROZEN"
		if testenv.IsCgroupV2Only() {
			frozen = "1"
		}
		if got := p.cgroupFile("c1", "freezer/freezer.state", "cgroup.freeze"); got != frozen {
			t.Errorf("after pause: the freezer reads %s, want %s", got, frozen)
		}
		p.mustRun("unpause", "c1")
		if st := p.inspect("c1"); st.Status != "running" {
			t.Errorf("after unpause: status %q", st.Status)
		}

		// /xtest pause exits 0 on SIGTERM, so podman needs no SIGKILL.
		p.mustRun("stop", "--time", "10", "c1")
		st = p.waitStatus("c1", "exited")
		if st.ExitCode != 0 {
			t.Errorf("stopped by SIGTERM: exit code %d, want 0", st.ExitCode)
		}
		if r := p.mustRun("logs", "c1"); r.Stdout != "ready\nSIGTERM\n" {
			t.Errorf("logs: %q, want ready and SIGTERM", r.Stdout)
		}

		p.mustRun(append(p.runArgs("c2", "-d"), "/bin/sleep", "300")...)
		first := p.waitStatus("c2", "running")
		// A restart deletes the container and creates it again, same id.
		p.mustRun("restart", "--time", "0", "c2")
		if st := p.waitStatus("c2", "running"); st.Pid == first.Pid || !testenv.ProcAlive(st.Pid) {
			t.Errorf("after restart: pid %d (was %d), want a new live one", st.Pid, first.Pid)
		}
		p.mustRun("kill", "--signal", "KILL", "c2")
		if st := p.waitStatus("c2", "exited"); st.ExitCode != 137 {
			t.Errorf("killed by SIGKILL: exit code %d, want 137", st.ExitCode)
		}

		p.mustRun("rm", "c1", "c2")
		if ids := p.runtimeContainers(); len(ids) != 0 {
			t.Errorf("%s still lists containers after podman rm: %q", rt.Name, ids)
		}
	})
}
