package containerd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xstack/xstack/integration/internal/testenv"
)

const (
	containerdBin = "/usr/bin/containerd"
	ctrBin        = "/usr/bin/ctr"
	// cmdTimeout bounds every ctr command.
	cmdTimeout = 60 * time.Second
)

func TestMain(m *testing.M) { testenv.Main(m) }

// daemon is a private containerd in a private mount namespace.
type daemon struct {
	t      *testing.T
	c      testenv.ShimCombo
	dir    string // temp dir: config, root, state, socket, logs, rootfs copies
	addr   string // grpc socket
	ns     string // containerd namespace of the test
	config string
	logf   *os.File
	anchor *exec.Cmd // holds the mount namespace (tmpfs on /run)
	cmd    *exec.Cmd // containerd
	events []*exec.Cmd
}

// startDaemon sets up the mount namespace and starts containerd, with the
// shim under test first in its PATH as containerd-shim-runc-v2 and the
// runtime under test as runc. Everything is torn down at cleanup.
func startDaemon(t *testing.T, c testenv.ShimCombo) *daemon {
	t.Helper()
	testenv.RequireRoot(t)
	for _, b := range []string{containerdBin, ctrBin, "/usr/bin/nsenter", "/usr/bin/unshare"} {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%s missing: apt-get install containerd util-linux (%v)", b, err)
		}
	}
	dir, err := os.MkdirTemp("", "xct-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	d := &daemon{
		t:      t,
		c:      c,
		dir:    dir,
		addr:   filepath.Join(dir, "c.sock"),
		ns:     "xstack-ctr-" + testenv.RandHex(4),
		config: filepath.Join(dir, "config.toml"),
	}
	t.Cleanup(d.cleanup)
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(c.Shim, filepath.Join(bin, testenv.ReferenceShim)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(c.Runtime, filepath.Join(bin, "runc")); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
]

[grpc]
  address = %q

[debug]
  level = "debug"

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), d.addr, filepath.Join(dir, "opt"))
	if err := os.WriteFile(d.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if d.logf, err = os.OpenFile(filepath.Join(dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		t.Fatal(err)
	}
	d.startAnchor(t)
	d.startContainerd(t)
	return d
}

// startAnchor makes the private mount namespace with a tmpfs on /run.
func (d *daemon) startAnchor(t *testing.T) {
	t.Helper()
	cmd := exec.Command("/usr/bin/unshare", "--mount", "--propagation", "private",
		"sh", "-c", "mount -t tmpfs -o mode=0755 tmpfs /run && exec sleep infinity")
	cmd.Stdout, cmd.Stderr = d.logf, d.logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.anchor = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		mi, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", cmd.Process.Pid))
		if strings.TrimSpace(string(comm)) == "sleep" && strings.Contains(string(mi), " /run ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("anchor %d not ready (comm %q): %s", cmd.Process.Pid, comm, d.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nsenter is the argv prefix that enters the anchor's mount namespace.
func (d *daemon) nsenter() []string {
	return []string{"/usr/bin/nsenter", "-t", strconv.Itoa(d.anchor.Process.Pid), "-m", "--"}
}

// env is containerd's environment: the test's, with the shim and runtime
// under test first in PATH.
func (d *daemon) env() []string {
	var out []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PATH=") {
			out = append(out, e)
		}
	}
	return append(out, "PATH="+filepath.Join(d.dir, "bin")+":"+os.Getenv("PATH"))
}

// startContainerd starts containerd (nsenter execs it: the pid is
// containerd's) and waits until it answers.
func (d *daemon) startContainerd(t *testing.T) {
	t.Helper()
	args := append(d.nsenter(), containerdBin, "--config", d.config)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = d.dir
	cmd.Env = d.env()
	cmd.Stdout, cmd.Stderr = d.logf, d.logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := d.ctrNS(t, false, "version")
		if r.code == 0 {
			return
		}
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("containerd not ready: %s\n%s", r, d.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killContainerd SIGKILLs containerd and reaps it.
func (d *daemon) killContainerd() {
	if d.cmd == nil || d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.cmd.Wait()
}

// stopContainerd SIGTERMs containerd, then SIGKILLs it after 10 s.
func (d *daemon) stopContainerd() {
	if d.cmd == nil || d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

func (d *daemon) logText() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "containerd.log"))
	s := string(b)
	if len(s) > 8000 {
		s = "...\n" + s[len(s)-8000:]
	}
	return s
}

// result is one ctr command's outcome.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("ctr %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// ctr runs ctr in the mount namespace against the private containerd, in
// the test's containerd namespace.
func (d *daemon) ctr(t *testing.T, args ...string) result {
	t.Helper()
	return d.ctrNS(t, true, args...)
}

func (d *daemon) ctrNS(t *testing.T, withNS bool, args ...string) result {
	t.Helper()
	full := append(d.nsenter(), ctrBin, "--address", d.addr)
	if withNS {
		full = append(full, "--namespace", d.ns)
	}
	full = append(full, args...)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		r.code = -1
		r.stderr += "\n" + err.Error()
	}
	if ctx.Err() != nil {
		t.Errorf("ctr %q timed out after %v", args, cmdTimeout)
	}
	return r
}

// mustCtr is ctr that fails the test unless it exits 0.
func (d *daemon) mustCtr(t *testing.T, args ...string) result {
	t.Helper()
	r := d.ctr(t, args...)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	return r
}

// rootfs makes a copy of the test rootfs (busybox, /xtest) for one
// container.
func (d *daemon) rootfs(t *testing.T, id string) string {
	t.Helper()
	p := filepath.Join(d.dir, "rootfs-"+id)
	testenv.NewRootfs(t, p)
	return p
}

// runtimeFlags selects the runtime under test: --runc-binary, which ctr
// sends as containerd.runc.v1.Options{binary_name} to the default runtime
// (io.containerd.runc.v2, i.e. the shim under test through PATH).
func (d *daemon) runtimeFlags() []string {
	return []string{"--runc-binary", d.c.Runtime}
}

// runDetached runs `ctr run -d --runc-binary RT --rootfs DIR id args...`.
func (d *daemon) runDetached(t *testing.T, id string, args ...string) {
	t.Helper()
	a := append([]string{"run", "-d"}, d.runtimeFlags()...)
	a = append(a, "--rootfs", d.rootfs(t, id), id)
	d.mustCtr(t, append(a, args...)...)
}

// taskRow is one line of `ctr task ls`.
type taskRow struct {
	pid    int
	status string
}

// tasks parses `ctr task ls`.
func (d *daemon) tasks(t *testing.T) map[string]taskRow {
	t.Helper()
	r := d.mustCtr(t, "task", "ls")
	return parseTasks(r)
}

func parseTasks(r result) map[string]taskRow {
	out := map[string]taskRow{}
	for _, l := range strings.Split(r.stdout, "\n")[1:] {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		pid, _ := strconv.Atoi(f[1])
		out[f[0]] = taskRow{pid, f[2]}
	}
	return out
}

// waitStatus polls `ctr task ls` until id has status want.
func (d *daemon) waitStatus(t *testing.T, id, want string) taskRow {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		row, ok := d.tasks(t)[id]
		if ok && row.status == want {
			return row
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: %+v (listed %v), want %s", id, row, ok, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startEvents runs `ctr events` in the background into a file; it is
// stopped at cleanup. The returned func reads what it printed so far.
func (d *daemon) startEvents(t *testing.T) func() string {
	t.Helper()
	path := filepath.Join(d.dir, "events-"+testenv.RandHex(3)+".txt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	args := append(d.nsenter(), ctrBin, "--address", d.addr, "events")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	d.events = append(d.events, cmd)
	// ctr events subscribes asynchronously: give it a moment.
	time.Sleep(300 * time.Millisecond)
	return func() string {
		b, _ := os.ReadFile(path)
		return string(b)
	}
}

// shimPids lists the processes whose command line names our containerd's
// address: the shims it started (and nothing else).
func (d *daemon) shimPids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !testenv.ProcAlive(pid) {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-address" && args[i+1] == d.addr {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// cgroupPids lists the processes in the cgroups of the test's containerd
// namespace (/<ns>/... in every hierarchy): its containers.
func (d *daemon) cgroupPids() []int {
	seen := map[int]bool{}
	var out []int
	for _, dir := range testenv.CgroupDirsUnder("/" + d.ns) {
		b, _ := os.ReadFile(filepath.Join(testenv.CgroupRoot, dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			if pid > 0 && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out
}

// cleanup removes every task and container of the namespace through ctr,
// stops containerd, SIGKILLs shims it started and container processes
// left in the namespace's cgroups (by pid), kills the anchor (the tmpfs
// on /run goes with its mount namespace), and removes cgroups and files.
func (d *daemon) cleanup() {
	t := d.t
	if d.cmd != nil && d.cmd.ProcessState == nil {
		for id, row := range parseTasks(d.ctr(t, "task", "ls")) {
			if row.status != "STOPPED" {
				d.ctr(t, "task", "kill", "-s", "SIGKILL", id)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for id := range parseTasks(d.ctr(t, "task", "ls")) {
			for time.Now().Before(deadline) {
				if d.ctr(t, "task", "rm", "-f", id).code == 0 {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		for _, l := range strings.Split(d.ctr(t, "container", "ls", "-q").stdout, "\n") {
			if id := strings.TrimSpace(l); id != "" {
				d.ctr(t, "container", "rm", id)
			}
		}
	}
	for _, e := range d.events {
		e.Process.Signal(syscall.SIGKILL)
		e.Wait()
	}
	d.stopContainerd()
	// A shim leaves after its Shutdown reply, on its own time (containerd
	// does not wait for it): give it a moment, then it is a leak.
	for deadline := time.Now().Add(5 * time.Second); len(d.shimPids()) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if pids := d.shimPids(); len(pids) > 0 {
		t.Errorf("cleanup: shims still running after their containers were deleted: %v", pids)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, pid := range d.cgroupPids() {
		t.Errorf("cleanup: container process %d (%s) left", pid, cmdline(pid))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if d.anchor != nil && d.anchor.ProcessState == nil {
		d.anchor.Process.Signal(syscall.SIGKILL)
		d.anchor.Wait()
	}
	if err := testenv.RemoveCgroup("/" + d.ns); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	if t.Failed() {
		t.Logf("containerd log (tail):\n%s", d.logText())
	}
	if d.logf != nil {
		d.logf.Close()
	}
	os.RemoveAll(d.dir)
}

func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
}

// forEach runs fn for every shim and runtime with a fresh containerd.
func forEach(t *testing.T, fn func(t *testing.T, d *daemon)) {
	testenv.ForEachShimCombo(t, func(t *testing.T, c testenv.ShimCombo) {
		fn(t, startDaemon(t, c))
	})
}
