package shimmgr

// Test fixtures for driving real shims: binaries, a busybox rootfs, bundles
// laid out as containerd does (<dir>/<ns>/<id>), the events server on the
// Manager's address, and cleanup of everything a test made (processes,
// mounts, cgroups, sockets, the temp dir).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/xstack/xstack/pkg/events"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

const (
	testNS         = "shimmgrtest"
	runcShimBinary = "/usr/bin/containerd-shim-runc-v2"
	busyboxBinary  = "/bin/busybox"
)

// binDir is where `make build` puts xshim and xrunc.
func binDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("XSTACK_BINDIR"); d != "" {
		return d
	}
	d, err := filepath.Abs("../../bin")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// builtBinary is bin/<name>; missing is a failure, never a skip.
func builtBinary(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(binDir(t), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not built (%v): run make build", p, err)
	}
	return p
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: starting shims and containers needs root")
	}
}

// forEachShim runs fn for xshim (launched directly, as xd does, and
// through its start action) and containerd-shim-runc-v2 (skipped when not
// installed), all driving bin/xrunc.
func forEachShim(t *testing.T, fn func(t *testing.T, e *env)) {
	requireRoot(t)
	xrunc := builtBinary(t, "xrunc")
	xshim := builtBinary(t, "xshim")
	shims := []struct {
		name string
		rt   Runtime
	}{
		{"xshim-launched", Runtime{Name: "io.xstack.xshim.v1", Shim: xshim, Direct: true}},
		{"xshim-start", Runtime{Name: "io.xstack.xshim.v1", Shim: xshim}},
		{"containerd-shim-runc-v2", Runtime{Name: "io.containerd.runc.v2", Shim: runcShimBinary}},
	}
	for _, tc := range shims {
		rt := tc.rt
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(rt.Shim); err != nil {
				t.Skipf("skipped: %s is not installed (%v)", rt.Shim, err)
			}
			fn(t, newEnv(t, rt, xrunc))
		})
	}
}

// env is one test's daemon side: a temp dir, a Manager whose address is
// served by a ForwardService recording events, a rootfs, a cgroup parent.
type env struct {
	rt       Runtime
	xrunc    string
	dir      string
	m        *Manager
	rtRoot   string // Options.Root
	cgParent string
	pristine string // read-only rootfs, bind-mounted by the shim
	events   *recorder
	log      logBuffer

	mu    sync.Mutex
	procs []procRef // to SIGKILL at cleanup if still there
}

func newEnv(t *testing.T, rt Runtime, xrunc string) *env {
	t.Helper()
	dir, err := os.MkdirTemp("", "xst-shimmgr-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	e := &env{
		rt:       rt,
		xrunc:    xrunc,
		dir:      dir,
		rtRoot:   filepath.Join(dir, "rt"),
		cgParent: "/xstack-shimmgrtest-" + randHex(t),
		pristine: filepath.Join(dir, "pristine"),
		events:   &recorder{changed: make(chan struct{})},
	}
	e.m = &Manager{
		Address:       filepath.Join(dir, "xd.sock"),
		PublishBinary: "/nonexistent/xd",
		Debug:         true,
		Logger:        slog.New(slog.NewTextHandler(&e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	t.Cleanup(func() { e.cleanup(t) })
	makeRootfs(t, e.pristine)

	srv, err := ttrpc.NewServer(ttrpc.WithServerHandshaker(ttrpc.UnixSocketRequireSameUser()))
	if err != nil {
		t.Fatal(err)
	}
	events.NewForwardService(e.events.add).Register(srv)
	l, err := net.Listen("unix", e.m.Address)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(context.Background(), l)
	t.Cleanup(func() { srv.Close() })
	return e
}

// cleanup runs after the shims' own cleanups: it kills what leaked (an
// error), unmounts, removes cgroups and the temp dir.
func (e *env) cleanup(t *testing.T) {
	e.mu.Lock()
	procs := append([]procRef(nil), e.procs...)
	e.mu.Unlock()
	for _, p := range procs {
		if p.kill() {
			t.Errorf("cleanup: pid %d (%s) was still running", p.pid, p.what)
		}
	}
	for _, pid := range shimsOf(e.m.Address) {
		t.Errorf("cleanup: shim %d still running", pid)
		unix.Kill(pid, unix.SIGKILL)
	}
	if n := e.m.readers(); n != 0 {
		t.Errorf("cleanup: %d log readers left", n)
	}
	for _, mp := range mountsUnder(e.dir) {
		t.Errorf("cleanup: %s still mounted", mp)
		unix.Unmount(mp, unix.MNT_DETACH)
	}
	if err := removeCgroup(e.cgParent); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	os.RemoveAll(e.dir)
	if t.Failed() || testing.Verbose() {
		t.Logf("manager log:\n%s", e.log.String())
	}
}

// track records a process the test caused, killed at cleanup if alive.
func (e *env) track(pid int, what string) {
	if pid <= 0 {
		return
	}
	e.mu.Lock()
	e.procs = append(e.procs, procRef{pid: pid, start: procStart(pid), what: what})
	e.mu.Unlock()
}

// opts are the runc Options the tests send: bin/xrunc, a private root.
func (e *env) opts() *options.Options {
	return &options.Options{BinaryName: e.xrunc, Root: e.rtRoot}
}

func (e *env) optsAny(t *testing.T) *anypb.Any {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(e.opts())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// rootfsMounts is what CreateTaskRequest.rootfs carries: a read-only bind
// of the pristine rootfs, as a snapshotter would send.
func (e *env) rootfsMounts() []*types.Mount {
	return []*types.Mount{{Type: "bind", Source: e.pristine, Options: []string{"rbind", "ro"}}}
}

// newBundle makes <dir>/<ns>/<id> with an empty rootfs/ and config.json
// (from `xrunc spec`: no terminal, args, unique cgroupsPath).
func (e *env) newBundle(t *testing.T, id string, args ...string) string {
	t.Helper()
	b := filepath.Join(e.dir, testNS, id)
	if err := os.MkdirAll(filepath.Dir(b), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(b, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(b, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e.xrunc, "spec")
	cmd.Dir = b
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xrunc spec: %v: %s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(b, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	spec.Process.Terminal = false
	spec.Process.Args = args
	spec.Root = &specs.Root{Path: "rootfs", Readonly: true}
	spec.Linux.CgroupsPath = e.cgParent + "/" + id
	if data, err = json.MarshalIndent(&spec, "", "\t"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// runtimeState runs `xrunc --root <root>/<ns> state id`.
func (e *env) runtimeState(id string) (string, error) {
	out, err := exec.Command(e.xrunc, "--root", filepath.Join(e.rtRoot, testNS), "state", id).CombinedOutput()
	return string(out), err
}

// makeRootfs copies busybox into dir/bin with sh, sleep and true links.
func makeRootfs(t *testing.T, dir string) {
	t.Helper()
	data, err := os.ReadFile(busyboxBinary)
	if err != nil {
		t.Fatalf("busybox-static is needed at %s: %v", busyboxBinary, err)
	}
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"sh", "sleep", "true"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", l)); err != nil {
			t.Fatal(err)
		}
	}
}

// recorder keeps the events the ForwardService handled, in order.
type recorder struct {
	mu      sync.Mutex
	evs     []*xdv1.Event
	changed chan struct{}
}

func (r *recorder) add(_ context.Context, ev *xdv1.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// waitTopics waits until the events of container id (in ns testNS) start
// with want, in order, and returns them.
func (r *recorder) waitTopics(t *testing.T, id string, want ...string) []*xdv1.Event {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		var got []*xdv1.Event
		var topics []string
		for _, ev := range r.evs {
			if ev.ContainerId == id && ev.Namespace == testNS {
				got = append(got, ev)
				topics = append(topics, ev.Topic)
			}
		}
		ch := r.changed
		r.mu.Unlock()
		if len(topics) >= len(want) {
			if strings.Join(topics[:len(want)], " ") != strings.Join(want, " ") {
				t.Fatalf("events of %s: %q, want them to start with %q", id, topics, want)
			}
			return got
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("events of %s: %q after 20s, want %q", id, topics, want)
		}
	}
}

// readers is the number of log readers running (for tests).
func (m *Manager) readers() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.logs)
}

// shimsOf lists the live processes started with -address address.
func shimsOf(address string) []int {
	var out []int
	deadline := time.Now().Add(5 * time.Second)
	for {
		out = out[:0]
		ents, _ := os.ReadDir("/proc")
		for _, d := range ents {
			pid, err := strconv.Atoi(d.Name())
			if err != nil {
				continue
			}
			b, _ := os.ReadFile("/proc/" + d.Name() + "/cmdline")
			args := strings.Split(string(b), "\x00")
			for i := 0; i+1 < len(args); i++ {
				if args[i] == "-address" && args[i+1] == address && alive(pid) {
					out = append(out, pid)
					break
				}
			}
		}
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procRef is a process the test caused: pid and start time, so a recycled
// pid is never signalled.
type procRef struct {
	pid   int
	start string
	what  string
}

// kill SIGKILLs the process if it is still the same one and alive, and
// reports whether it was.
func (p procRef) kill() bool {
	if p.start == "" || procStart(p.pid) != p.start || !alive(p.pid) {
		return false
	}
	unix.Kill(p.pid, unix.SIGKILL)
	return true
}

// procStart is field 22 (starttime) of /proc/PID/stat, "" if gone.
func procStart(pid int) string {
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

// mountsUnder lists the mount points at or below dir, deepest last.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 {
			mp := strings.ReplaceAll(f[4], `\040`, " ")
			if mp == dir || strings.HasPrefix(mp, dir+"/") {
				out = append(out, mp)
			}
		}
	}
	return out
}

// removeCgroup rmdirs cgroup path and its children in every hierarchy,
// retrying while dying tasks keep them busy.
func removeCgroup(path string) error {
	hs, _ := filepath.Glob("/sys/fs/cgroup/*")
	hs = append(hs, "/sys/fs/cgroup")
	for _, h := range hs {
		d := filepath.Join(h, path)
		if _, err := os.Stat(d); err != nil {
			continue
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := rmdirTree(d)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("remove cgroup %s: %w", d, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func rmdirTree(d string) error {
	var dirs []string
	filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.Rmdir(dirs[i]); err != nil && err != unix.ENOENT {
			return err
		}
	}
	return nil
}

func randHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

// logBuffer collects the Manager's log; it is printed at cleanup when
// the test failed or runs with -v.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
