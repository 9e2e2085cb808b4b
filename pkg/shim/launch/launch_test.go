package launch

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

func TestSocketPath(t *testing.T) {
	t.Parallel()
	base := SocketPath("/run/containerd/containerd.sock", "default", "c1")
	if base != SocketPath("/run/containerd/containerd.sock", "default", "c1") {
		t.Fatal("socketPath is not deterministic")
	}
	if filepath.Dir(base) != SocketDir {
		t.Errorf("%s is not directly under %s", base, SocketDir)
	}
	name := filepath.Base(base)
	if len(name) != 64 || strings.Trim(name, "0123456789abcdef") != "" {
		t.Errorf("socket name %q is not a hex sha256", name)
	}
	// sun_path holds 108 bytes with the terminating NUL.
	if len(base) >= 108 {
		t.Errorf("%s is %d bytes, too long for sun_path", base, len(base))
	}
	// Even for long inputs.
	long := SocketPath("/"+strings.Repeat("a", 500), strings.Repeat("n", 200), strings.Repeat("g", 300))
	if len(long) != len(base) {
		t.Errorf("path length depends on the inputs: %d vs %d", len(long), len(base))
	}
	others := map[string]string{
		"address":   SocketPath("/run/other/containerd.sock", "default", "c1"),
		"namespace": SocketPath("/run/containerd/containerd.sock", "k8s.io", "c1"),
		"group":     SocketPath("/run/containerd/containerd.sock", "default", "c2"),
	}
	seen := map[string]string{base: "base"}
	for what, p := range others {
		if prev, ok := seen[p]; ok {
			t.Errorf("a different %s gives the same path as %s", what, prev)
		}
		seen[p] = what
	}
}

func TestShimGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config *string
		want   string
	}{
		{"no annotations", ptr(`{"ociVersion":"1.0.2"}`), "c1"},
		{"containerd group", ptr(`{"annotations":{"io.containerd.runc.v2.group":"pod1"}}`), "pod1"},
		{"CRI sandbox", ptr(`{"annotations":{"io.kubernetes.cri.sandbox-id":"sb1"}}`), "sb1"},
		{"group preferred over sandbox", ptr(`{"annotations":{"io.kubernetes.cri.sandbox-id":"sb1","io.containerd.runc.v2.group":"pod1"}}`), "pod1"},
		{"empty group falls through to sandbox", ptr(`{"annotations":{"io.containerd.runc.v2.group":"","io.kubernetes.cri.sandbox-id":"sb1"}}`), "sb1"},
		{"unrelated annotations", ptr(`{"annotations":{"org.example":"x"}}`), "c1"},
		{"missing config", nil, "c1"},
		{"broken config", ptr(`{"annotations":`), "c1"},
		{"annotations of the wrong type", ptr(`{"annotations":["io.containerd.runc.v2.group"]}`), "c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bundle := t.TempDir()
			if tt.config != nil {
				if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(*tt.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if got := Group(bundle, "c1"); got != tt.want {
				t.Errorf("Group = %q, want %q", got, tt.want)
			}
		})
	}
}

// deadSocket leaves a socket file nobody listens on, as a killed shim does.
func deadSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("dead socket: %v", err)
	}
}

func canDial(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func TestListen(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	path := filepath.Join(dir, "s", "sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	st, err := os.Stat(filepath.Dir(path))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("socket dir: %v, %v; want mode 0700", st, err)
	}
	st, err = os.Stat(path)
	if err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("socket: %v, %v; want a socket of mode 0600", st, err)
	}
	if !canDial(path) {
		t.Error("cannot connect to the new socket")
	}

	// A second shim for the same path: the first one is alive.
	l2, err := Listen(path)
	if !errors.Is(err, unix.EADDRINUSE) {
		if l2 != nil {
			l2.Close()
		}
		t.Fatalf("listen on a live socket: %v, want EADDRINUSE", err)
	}
	if !canDial(path) {
		t.Error("the live shim's socket was disturbed")
	}

	// The serving shim owns the path: closing the listener leaves it.
	l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("socket file gone after the listener closed: %v", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	path := filepath.Join(dir, "sock")
	deadSocket(t, path)
	l, err := Listen(path)
	if err != nil {
		t.Fatalf("listen over a dead socket: %v", err)
	}
	defer os.Remove(path)
	defer l.Close()
	if !canDial(path) {
		t.Error("cannot connect to the replacing socket")
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
}

func TestListenErrors(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := Listen(filepath.Join(file, "sock")); err == nil {
		l.Close()
		t.Error("listen under a regular file succeeded")
	}
	if l, err := Listen(filepath.Join(dir, strings.Repeat("x", 120))); err == nil {
		l.Close()
		t.Error("listen on a path longer than sun_path succeeded")
	}
}

func TestOptionsRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts *options.Options
		// keys that must show in options.json, as containerd writes them
		keys []string
	}{
		{"empty", &options.Options{}, nil},
		{"binary and root", &options.Options{BinaryName: "/usr/sbin/runc", Root: "/run/r"}, []string{`"binary_name":"/usr/sbin/runc"`, `"root":"/run/r"`}},
		{"every field", &options.Options{
			NoPivotRoot: true, NoNewKeyring: true, ShimCgroup: "/shim", IoUid: 1000, IoGid: 1001,
			BinaryName: "runc", Root: "/r", SystemdCgroup: true, CriuImagePath: "/img", CriuWorkPath: "/work",
		}, []string{`"no_pivot_root":true`, `"no_new_keyring":true`, `"systemd_cgroup":true`, `"io_uid":1000`, `"binary_name":"runc"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bundle := t.TempDir()
			if err := WriteOptions(bundle, tt.opts); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(bundle, "options.json")
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("options.json mode %v, want 0600", st.Mode().Perm())
			}
			raw, _ := os.ReadFile(path)
			for _, k := range tt.keys {
				if !strings.Contains(string(raw), k) {
					t.Errorf("options.json %s lacks %s", raw, k)
				}
			}
			got, err := ReadOptions(bundle)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tt.opts) {
				t.Errorf("read back %v, want %v", got, tt.opts)
			}
			// Rewriting replaces it.
			if err := WriteOptions(bundle, &options.Options{Root: "/other"}); err != nil {
				t.Fatal(err)
			}
			if got, err := ReadOptions(bundle); err != nil || got.Root != "/other" || got.BinaryName != "" {
				t.Errorf("after a rewrite: %v, %v", got, err)
			}
			ents, _ := os.ReadDir(bundle)
			if len(ents) != 1 {
				t.Errorf("bundle holds %d files after writes, want only options.json", len(ents))
			}
		})
	}
}

func TestReadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content *string // nil: no file
		want    *options.Options
		wantErr bool
	}{
		{name: "missing: defaults", content: nil, want: &options.Options{}},
		{name: "written by containerd", content: ptr(`{"binary_name":"/usr/bin/runc","root":"/run/containerd/runc","systemd_cgroup":true}`),
			want: &options.Options{BinaryName: "/usr/bin/runc", Root: "/run/containerd/runc", SystemdCgroup: true}},
		{name: "empty object", content: ptr(`{}`), want: &options.Options{}},
		{name: "unknown keys ignored", content: ptr(`{"binary_name":"x","future":1}`), want: &options.Options{BinaryName: "x"}},
		{name: "broken", content: ptr(`{"binary_name":`), wantErr: true},
		{name: "wrong type", content: ptr(`{"binary_name":5}`), wantErr: true},
		{name: "empty file", content: ptr(``), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bundle := t.TempDir()
			if tt.content != nil {
				if err := os.WriteFile(filepath.Join(bundle, "options.json"), []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ReadOptions(bundle)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ReadOptions = %v, want an error", got)
				}
				if !strings.Contains(err.Error(), filepath.Join(bundle, "options.json")) {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			if err != nil || !proto.Equal(got, tt.want) {
				t.Fatalf("ReadOptions = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestStartJoinsLiveShim: Start for a container whose group already has a
// live shim writes that shim's address in the bundle and starts nothing.
func TestStartJoinsLiveShim(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	address := shortTempDir(t) + "/xd.sock"
	const ns = "testns"
	path := SocketPath(address, ns, "pod1")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	defer l.Close()
	if !canDial(path) {
		// Start would fork a shim (this test binary): do not call it.
		t.Fatal("the group's shim socket is not live")
	}
	opts := &options.Options{BinaryName: "/usr/sbin/runc", Root: "/run/r"}
	for _, id := range []string{"c1", "c2"} {
		bundle := t.TempDir()
		cfg := `{"annotations":{"io.containerd.runc.v2.group":"pod1"}}`
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		shim, err := Start(Request{Binary: "/nonexistent/xshim", Namespace: ns, ID: id, Address: address, Bundle: bundle, Options: opts})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if shim.Process != nil {
			t.Errorf("%s: a process was started (pid %d)", id, shim.Process.Pid)
		}
		got := shim.Address
		if got != "unix://"+path {
			t.Errorf("%s: address %q, want unix://%s", id, got, path)
		}
		b, err := os.ReadFile(filepath.Join(bundle, "address"))
		if err != nil || string(b) != got {
			t.Errorf("%s: bundle address %q, %v; want %q", id, b, err, got)
		}
		if st, err := os.Stat(filepath.Join(bundle, "address")); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: address file %v, %v", id, st, err)
		}
		if read, err := ReadOptions(bundle); err != nil || !proto.Equal(read, opts) {
			t.Errorf("%s: options.json %v, %v; want %v", id, read, err, opts)
		}
	}
	if !canDial(path) {
		t.Error("the live shim's socket was disturbed")
	}
}

func ptr[T any](v T) *T { return &v }

// shortTempDir is a temp dir whose paths fit in sun_path.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "xlaunch-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (the socket directory is root's)")
	}
}

// The test binary doubles as the shim server and as a daemon that
// launches one.
const (
	roleEnv   = "LAUNCH_TEST_ROLE"
	bundleEnv = "LAUNCH_TEST_BUNDLE"
	addrEnv   = "LAUNCH_TEST_ADDRESS"
)

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "shim":
		os.Exit(fakeShim())
	case "daemon":
		os.Exit(fakeDaemon())
	}
	os.Exit(m.Run())
}

// report is what the fake shim tells the test about itself.
type report struct {
	Args       []string
	Dir        string
	Pid, Ppid  int
	Pgid       int
	Listener   string   // the address of the listener on fd 3
	OpenFds    []string // "fd=target" at its start
	RoleEnvSet bool
	GOMAXPROCS string
}

// fakeShim answers one connection on the inherited listener with a report.
func fakeShim() int {
	// Before this process opens anything itself.
	var fds []string
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fds = append(fds, e.Name()+"="+target)
	}
	f := os.NewFile(3, "listener")
	l, err := net.FileListener(f)
	if err != nil {
		return 3
	}
	f.Close()
	conn, err := l.Accept()
	if err != nil {
		return 4
	}
	defer conn.Close()
	dir, _ := os.Getwd()
	pgid, _ := unix.Getpgid(0)
	r := report{Args: os.Args[1:], Dir: dir, Pid: os.Getpid(), Ppid: os.Getppid(), Pgid: pgid,
		Listener: l.Addr().String(), OpenFds: fds, RoleEnvSet: os.Getenv(roleEnv) == "shim", GOMAXPROCS: os.Getenv("GOMAXPROCS")}
	if err := json.NewEncoder(conn).Encode(r); err != nil {
		return 5
	}
	return 0
}

// fakeDaemon launches a detached shim (this binary) and prints its pid.
func fakeDaemon() int {
	self, _ := os.Executable()
	shim, err := Start(Request{
		Binary: self, Namespace: "testns", ID: "c1", Address: os.Getenv(addrEnv), Bundle: os.Getenv(bundleEnv),
		Env: append(os.Environ(), roleEnv+"=shim"), Detach: true,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(shim.Process.Pid)
	return 0
}

// askShim reads the fake shim's report over its socket.
func askShim(t *testing.T, address string) report {
	t.Helper()
	conn, err := net.DialTimeout("unix", strings.TrimPrefix(address, "unix://"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var r report
	if err := json.NewDecoder(conn).Decode(&r); err != nil {
		t.Fatalf("the shim's report: %v", err)
	}
	return r
}

// TestStartServer: the server gets the command line, the bundle as its
// cwd, its own process group, the given environment (with GOMAXPROCS=1)
// and the listener as fd 3 (no other socket); the bundle records the
// address and the options; the socket is 0600.
func TestStartServer(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	address := shortTempDir(t) + "/xd.sock"
	bundle := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	opts := &options.Options{BinaryName: "/usr/sbin/runc", Root: "/run/r"}
	shim, err := Start(Request{
		Binary: self, Namespace: "testns", ID: "c1", Address: address, PublishBinary: "/usr/bin/xd",
		Bundle: bundle, Debug: true, Options: opts, Env: append(os.Environ(), roleEnv+"=shim", "GOMAXPROCS=2"),
	})
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimPrefix(shim.Address, "unix://")
	t.Cleanup(func() { os.Remove(path) })
	if shim.Process == nil {
		t.Fatal("no process started")
	}
	r := askShim(t, shim.Address)
	if st, err := shim.Process.Wait(); err != nil || !st.Success() {
		t.Errorf("the fake shim ended with %v, %v", st, err)
	}
	if path != SocketPath(address, "testns", "c1") || filepath.Dir(path) != SocketDir {
		t.Errorf("address %s, want the socket for testns/c1 in %s", shim.Address, SocketDir)
	}
	want := []string{"-namespace", "testns", "-id", "c1", "-address", address, "-publish-binary", "/usr/bin/xd", "-debug"}
	if strings.Join(r.Args, " ") != strings.Join(want, " ") {
		t.Errorf("args %q, want %q", r.Args, want)
	}
	if r.Dir != bundle || r.Pgid != r.Pid || r.Ppid != os.Getpid() || !r.RoleEnvSet {
		t.Errorf("cwd %s (want %s), pgid %d (want its pid %d), ppid %d (want %d), env given: %v",
			r.Dir, bundle, r.Pgid, r.Pid, r.Ppid, os.Getpid(), r.RoleEnvSet)
	}
	if r.GOMAXPROCS != "1" {
		t.Errorf("the shim runs with GOMAXPROCS=%q, want 1", r.GOMAXPROCS)
	}
	if r.Listener != path {
		t.Errorf("fd 3 listens on %q, want %s", r.Listener, path)
	}
	// Go's runtime opens files of its own; of the caller's, only the
	// listener may be there.
	for _, fd := range r.OpenFds {
		if num, target, _ := strings.Cut(fd, "="); strings.HasPrefix(target, "socket:") != (num == "3") {
			t.Errorf("the shim started with fd %s (all: %v)", fd, r.OpenFds)
		}
	}
	if b, err := os.ReadFile(filepath.Join(bundle, AddressFile)); err != nil || string(b) != shim.Address {
		t.Errorf("address file %q, %v", b, err)
	}
	if got, err := ReadOptions(bundle); err != nil || !proto.Equal(got, opts) {
		t.Errorf("options %v, %v; want %v", got, err, opts)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("socket %v, %v; want mode 0600", st, err)
	}
}

// TestStartDetached: a detached server is a child of the caller's parent,
// as if a start process had launched it and exited. Here a daemon (this
// binary) launches it, so the test becomes its parent and reaps it.
func TestStartDetached(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	address := shortTempDir(t) + "/xd.sock"
	bundle := t.TempDir()
	t.Cleanup(func() { os.Remove(SocketPath(address, "testns", "c1")) })
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"=daemon", bundleEnv+"="+bundle, addrEnv+"="+address)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("daemon: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("daemon printed %q", out)
	}
	addr, err := os.ReadFile(filepath.Join(bundle, AddressFile))
	if err != nil {
		unix.Kill(pid, unix.SIGKILL)
		t.Fatal(err)
	}
	r := askShim(t, string(addr))
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		t.Errorf("wait for the shim %d: %v (not the test's child?)", pid, err)
	} else if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("the fake shim ended with %v", ws)
	}
	if r.Pid != pid || r.Ppid != os.Getpid() {
		t.Errorf("shim pid %d ppid %d; want pid %d, ppid the test's %d", r.Pid, r.Ppid, pid, os.Getpid())
	}
}

func TestStartBadRequest(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	bundle := t.TempDir()
	address := shortTempDir(t) + "/xd.sock"
	var setupPid int
	tests := []struct {
		name string
		r    Request
	}{
		{"no id", Request{Binary: "/bin/true", Namespace: "ns", Bundle: bundle, Address: address}},
		{"no namespace", Request{Binary: "/bin/true", ID: "c1", Bundle: bundle, Address: address}},
		{"relative bundle", Request{Binary: "/bin/true", Namespace: "ns", ID: "c1", Bundle: "b", Address: address}},
		{"missing binary", Request{Binary: "/nonexistent/xshim", Namespace: "ns", ID: "c1", Bundle: bundle, Address: address,
			Options: &options.Options{BinaryName: "runc"}}},
		{"setup fails", Request{Binary: "/bin/sleep", Namespace: "ns", ID: "c1", Bundle: bundle, Address: address,
			Options: &options.Options{BinaryName: "runc"}, Setup: func(pid int) error {
				setupPid = pid
				return errors.New("no cgroup for you")
			}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setupPid = 0
			if shim, err := Start(tt.r); err == nil {
				t.Fatalf("Start = %+v, want an error", shim)
			}
			if tt.r.Setup != nil {
				if setupPid == 0 {
					t.Fatal("Setup was not called")
				}
				if _, err := os.Stat(fmt.Sprintf("/proc/%d", setupPid)); err == nil {
					t.Errorf("the server %d outlived its failed setup", setupPid)
				}
			}
			if ents, _ := os.ReadDir(bundle); len(ents) != 0 {
				t.Errorf("a failed Start left %d files in the bundle", len(ents))
			}
			if _, err := os.Lstat(SocketPath(address, tt.r.Namespace, "c1")); err == nil {
				t.Error("a failed Start left its socket")
			}
		})
	}
}
