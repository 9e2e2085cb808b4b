package xd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/integration/internal/testenv"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// testImage is the name the archives built for the tests carry.
const testImage = "xstack.local/busybox:latest"

var (
	imagesOnce sync.Once
	imagesDir  string
	imagesErr  error
)

func TestMain(m *testing.M) {
	// Shims started by a test's xd are reparented here when xd dies, so
	// the tests can reap them, as the shim does its containers.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	// testenv.Main also removes the rootfs and /xtest it built (they were
	// left in /tmp by every run).
	testenv.Main(m, func() {
		if imagesDir != "" {
			os.RemoveAll(imagesDir)
		}
	})
}

// images builds the test image once, as an OCI layout tar and a
// docker-archive tar, with /xtest (integration/inside) in it (and as an
// OCI layout with a zstd layer, see zstdImage).
func images(t *testing.T) (oci, docker string) {
	t.Helper()
	imagesOnce.Do(func() {
		imagesDir, imagesErr = os.MkdirTemp("", "xd-images-")
		if imagesErr != nil {
			return
		}
		repo, err := testenv.RepoRoot()
		if err != nil {
			imagesErr = err
			return
		}
		xtest := testenv.XtestBinary(t)
		for _, v := range []struct{ file, format, compression string }{
			{"oci.tar", "oci", "gzip"}, {"docker.tar", "docker", "gzip"}, {"oci-zstd.tar", "oci", "zstd"},
		} {
			cmd := exec.Command("go", "run", "./contrib/busybox-image", "-format", v.format, "-compression", v.compression,
				"-o", filepath.Join(imagesDir, v.file), "-name", testImage, "-add", xtest+":/xtest")
			cmd.Dir = repo
			if out, err := cmd.CombinedOutput(); err != nil {
				imagesErr = fmt.Errorf("build %s image: %v\n%s", v.file, err, out)
				return
			}
		}
	})
	if imagesErr != nil {
		t.Fatal(imagesErr)
	}
	return filepath.Join(imagesDir, "oci.tar"), filepath.Join(imagesDir, "docker.tar")
}

// zstdImage is the test image as an OCI layout whose layer is zstd.
func zstdImage(t *testing.T) string {
	t.Helper()
	images(t)
	return filepath.Join(imagesDir, "oci-zstd.tar")
}

func binary(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(testenv.BinDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not built: run make build (%v)", p, err)
	}
	return p
}

// daemon is one xd under test.
type daemon struct {
	t       *testing.T
	dir     string
	root    string
	state   string
	address string
	config  string
	bin     string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}

	cgroupParent string
	// rootTmpfs is the size of a tmpfs mounted on root, if any.
	rootTmpfs string
}

type daemonOption func(*daemon)

// withRootOnTmpfs puts xd's root on a tmpfs of this size (a disk that
// fills up).
func withRootOnTmpfs(size string) daemonOption {
	return func(d *daemon) { d.rootTmpfs = size }
}

// withConfig adds to xd's config file.
func withConfig(toml string) daemonOption {
	return func(d *daemon) { d.writeConfig(toml) }
}

func (d *daemon) writeConfig(extra string) {
	body := fmt.Sprintf("cgroup_parent = %q\n%s", d.cgroupParent, extra)
	if err := os.WriteFile(d.config, []byte(body), 0o600); err != nil {
		d.t.Fatal(err)
	}
}

// newDaemon starts xd in fresh temp dirs and registers its cleanup: every
// container removed, xd stopped, leftover shims (found by xd's unique
// address on their command line) killed, no mount left under its dirs.
func newDaemon(t *testing.T, opts ...daemonOption) *daemon {
	t.Helper()
	testenv.RequireRoot(t)
	dir, err := os.MkdirTemp("", "xd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{
		t: t, dir: dir, root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state"),
		address: filepath.Join(dir, "xd.sock"), bin: binary(t, "xd"), logPath: filepath.Join(dir, "xd.log"),
	}
	// Containers' cgroups go under a parent of this xd's own, removed at
	// cleanup (xd, like runc, removes only each container's leaf).
	d.cgroupParent = "/xd-test-" + testenv.RandHex(4)
	d.config = filepath.Join(d.dir, "xd.toml")
	d.writeConfig("")
	for _, o := range opts {
		o(d)
	}
	t.Cleanup(d.cleanup)
	if d.rootTmpfs != "" {
		if err := os.Mkdir(d.root, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", d.root, "tmpfs", 0, "size="+d.rootTmpfs+",mode=0700"); err != nil {
			t.Fatal(err)
		}
	}
	d.start()
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	args := []string{"--root", d.root, "--state", d.state, "--address", d.address, "--log-level", "debug"}
	if d.config != "" {
		args = append(args, "--config", d.config)
	}
	logf, err := os.OpenFile(d.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	defer logf.Close()
	d.cmd = exec.Command(d.bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.exited = make(chan struct{})
	cmd, exited := d.cmd, d.exited
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", d.address); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			d.t.Fatalf("xd exited at start:\n%s", d.logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.t.Fatalf("xd did not listen on %s:\n%s", d.address, d.logs())
}

func (d *daemon) logs() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// signal sends sig to xd and waits for it to exit.
func (d *daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(sig)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		d.t.Errorf("xd ignored %v", sig)
	}
	d.cmd = nil
}

func (d *daemon) restart() {
	d.t.Helper()
	d.signal(syscall.SIGTERM)
	d.start()
}

// shimPids are the shims of this xd: their command line names its address.
func (d *daemon) shimPids() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		for i, a := range args {
			if a == "-address" && i+1 < len(args) && args[i+1] == d.address && testenv.ProcAlive(pid) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func (d *daemon) cleanup() {
	t := d.t
	if d.cmd == nil {
		d.start()
	}
	if out, _, code := d.xctl("ps", "-a", "-q"); code == 0 {
		for _, id := range strings.Fields(out) {
			if _, stderr, code := d.xctl("rm", "-f", id); code != 0 {
				t.Errorf("cleanup: rm -f %s: %s", id, stderr)
			}
		}
	}
	d.signal(syscall.SIGTERM)
	// A shim told to shut down exits a moment after it closed its
	// connection.
	for deadline := time.Now().Add(5 * time.Second); len(d.shimPids()) > 0 && time.Now().Before(deadline); {
		reapChildren()
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range d.shimPids() {
		t.Errorf("cleanup: shim %d left running; killing it", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	reapChildren()
	if d.rootTmpfs != "" {
		if err := unix.Unmount(d.root, 0); err != nil {
			t.Errorf("cleanup: unmount the root's tmpfs: %v", err)
		}
	}
	if mounts := mountsUnder(d.dir); len(mounts) > 0 {
		t.Errorf("cleanup: mounts left under %s: %v", d.dir, mounts)
		for i := len(mounts) - 1; i >= 0; i-- {
			unix.Unmount(mounts[i], unix.MNT_DETACH)
		}
	}
	if err := testenv.RemoveCgroup(d.cgroupParent); err != nil {
		t.Errorf("cleanup: cgroups under %s: %v", d.cgroupParent, err)
	}
	if t.Failed() {
		t.Logf("xd log:\n%s", d.logs())
	}
	os.RemoveAll(d.dir)
}

// reapChildren collects exited processes reparented to the test.
func reapChildren() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// xctl runs the client against this xd.
func (d *daemon) xctl(args ...string) (stdout, stderr string, code int) {
	return d.xctlIn(nil, args...)
}

func (d *daemon) xctlIn(stdin []byte, args ...string) (stdout, stderr string, code int) {
	d.t.Helper()
	cmd := exec.Command(binary(d.t, "xctl"), append([]string{"--address", d.address}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return o.String(), e.String(), ee.ExitCode()
		} else if err != nil {
			d.t.Fatalf("xctl %v: %v", args, err)
		}
		return o.String(), e.String(), 0
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		d.t.Fatalf("xctl %v hung; stdout %q stderr %q", args, o.String(), e.String())
		return "", "", -1
	}
}

// ok runs xctl and fails the test unless it exits 0; returns stdout.
func (d *daemon) ok(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.xctl(args...)
	if code != 0 {
		d.t.Fatalf("xctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// importImage imports the OCI test image.
func (d *daemon) importImage() {
	d.t.Helper()
	oci, _ := images(d.t)
	d.ok("images", "import", oci)
}

// api dials xd's ttrpc API.
func (d *daemon) api() *ttrpc.Client {
	d.t.Helper()
	conn, err := net.Dial("unix", d.address)
	if err != nil {
		d.t.Fatal(err)
	}
	c := ttrpc.NewClient(conn)
	d.t.Cleanup(func() { c.Close() })
	return c
}

func (d *daemon) task(id string) *xdv1.Task {
	d.t.Helper()
	tk, err := xdv1.NewTasksClient(d.api()).Get(context.Background(), &xdv1.ContainerRequest{ContainerId: id})
	if err != nil {
		d.t.Fatalf("task %s: %v", id, err)
	}
	return tk
}

// waitStatus waits until the task of id has status want.
func (d *daemon) waitStatus(id string, want xdv1.Status) *xdv1.Task {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var tk *xdv1.Task
	for time.Now().Before(deadline) {
		tk = d.task(id)
		if tk.Status == want {
			return tk
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("task %s: status %v, want %v", id, tk.GetStatus(), want)
	return nil
}
