package shim

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/xstack/xstack/pkg/shim/launch"
)

// socketInSocketDir reserves a unique socket path in launch.SocketDir (root
// only), removed at the end. Nothing else in SocketDir is touched.
func socketInSocketDir(t *testing.T, address, ns, group string) string {
	t.Helper()
	requireRoot(t)
	path := launch.SocketPath(address, ns, group)
	// On a fresh machine no shim has made the directory yet; the shims
	// share it, so it stays.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); err == nil {
		t.Fatalf("%s already exists", path)
	}
	t.Cleanup(func() { os.Remove(path) })
	return path
}

func TestStartBadInput(t *testing.T) {
	t.Parallel()
	bundle := t.TempDir()
	tests := []struct {
		name string
		f    Flags
		raw  []byte
	}{
		{"no id", Flags{Namespace: "ns", Bundle: bundle}, nil},
		{"no namespace", Flags{ID: "c1", Bundle: bundle}, nil},
		{"options not an Any", Flags{Namespace: "ns", ID: "c1", Bundle: bundle}, []byte{0xff, 0xff, 0xff}},
		{"options of another type", Flags{Namespace: "ns", ID: "c1", Bundle: bundle}, mustMarshal(t, mustAny(t, &options.ProcessDetails{ExecID: "x"}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if addr, err := Start(tt.f, tt.raw); err == nil {
				t.Fatalf("Start = %q, want an error", addr)
			}
		})
	}
	if ents, _ := os.ReadDir(bundle); len(ents) != 0 {
		t.Errorf("a failed Start left %d files in the bundle", len(ents))
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStartOptions(t *testing.T) {
	t.Parallel()
	opts := &options.Options{BinaryName: "runc", SystemdCgroup: true}
	got, err := startOptions(mustMarshal(t, mustAny(t, opts)))
	if err != nil || !proto.Equal(got, opts) {
		t.Errorf("startOptions = %v, %v; want %v", got, err, opts)
	}
	if got, err := startOptions(nil); got != nil || err != nil {
		t.Errorf("startOptions(nil) = %v, %v; want nil, nil", got, err)
	}
	if _, err := startOptions([]byte("garbage that is no protobuf \xff")); err == nil {
		t.Error("startOptions of garbage succeeded")
	}
}

// deleteRuntime is a fake runtime for Delete: it appends its argv (one
// line, space-separated) to argv beside itself, appends log-lines to the
// --log file, prints stderr and exits with exit.
const deleteRuntime = `#!/bin/sh
d=$(dirname "$0")
echo "$*" >> "$d/argv"
log= prev=
for a in "$@"; do
	[ "$prev" = --log ] && log=$a
	prev=$a
done
if [ -n "$log" ] && [ -f "$d/log-lines" ]; then cat "$d/log-lines" >> "$log"; fi
if [ -f "$d/stderr" ]; then cat "$d/stderr" >&2; fi
if [ -f "$d/exit" ]; then exit "$(cat "$d/exit")"; fi
exit 0
`

func TestDelete(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		pidFile  *string
		logLines string
		exit     string
		wantPid  uint32
		wantWarn string // "" = no warning
	}{
		{name: "no pid file", wantPid: 0},
		{name: "pid file", pidFile: ptr("4242\n"), wantPid: 4242},
		{name: "broken pid file", pidFile: ptr("garbage"), wantPid: 0},
		{name: "container already gone", pidFile: ptr("17"), wantPid: 17, exit: "1",
			logLines: `{"level":"error","msg":"container does not exist","time":"2026-01-01T00:00:00Z"}` + "\n"},
		{name: "runtime failure is a warning", exit: "1", wantWarn: "cgroup is frozen",
			logLines: `{"level":"error","msg":"cgroup is frozen","time":"2026-01-01T00:00:00Z"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rtDir := t.TempDir()
			rt := filepath.Join(rtDir, "runtime")
			writeExecutable(t, rt, deleteRuntime)
			if tt.exit != "" {
				os.WriteFile(filepath.Join(rtDir, "exit"), []byte(tt.exit), 0o600)
			}
			if tt.logLines != "" {
				os.WriteFile(filepath.Join(rtDir, "log-lines"), []byte(tt.logLines), 0o600)
			}
			bundle := t.TempDir()
			root := filepath.Join(t.TempDir(), "root")
			if err := launch.WriteOptions(bundle, &options.Options{BinaryName: rt, Root: root}); err != nil {
				t.Fatal(err)
			}
			if tt.pidFile != nil {
				os.WriteFile(filepath.Join(bundle, "init.pid"), []byte(*tt.pidFile), 0o600)
			}
			f := Flags{Namespace: "testns", ID: "c1", Bundle: bundle}
			for run := 1; run <= 2; run++ { // idempotent
				var warn bytes.Buffer
				before := time.Now()
				resp, err := Delete(context.Background(), f, &warn)
				if err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				if resp.Pid != tt.wantPid || resp.ExitStatus != 137 {
					t.Errorf("run %d: pid %d status %d, want %d and 137", run, resp.Pid, resp.ExitStatus, tt.wantPid)
				}
				if resp.ExitedAt == nil || resp.ExitedAt.AsTime().Before(before.Add(-time.Second)) || resp.ExitedAt.AsTime().After(time.Now().Add(time.Second)) {
					t.Errorf("run %d: exited_at %v, want about now", run, resp.ExitedAt)
				}
				if tt.wantWarn == "" && warn.Len() != 0 {
					t.Errorf("run %d: warnings %q", run, warn.String())
				}
				if tt.wantWarn != "" && !strings.Contains(warn.String(), tt.wantWarn) {
					t.Errorf("run %d: warnings %q, want %q in them", run, warn.String(), tt.wantWarn)
				}
			}
			argv, _ := os.ReadFile(filepath.Join(rtDir, "argv"))
			one := "--root " + filepath.Join(root, "testns") + " --log " + filepath.Join(bundle, "log.json") + " --log-format json delete --force c1\n"
			if string(argv) != one+one {
				t.Errorf("the runtime ran as\n%s\nwant twice\n%s", argv, one)
			}
		})
	}
}

// TestDeleteWithoutOptions: no options.json and no runtime to be found:
// Delete warns and still reports the container killed. Not parallel: it
// sets PATH.
func TestDeleteWithoutOptions(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(self), DefaultRuntime)); err == nil {
		t.Skip("skipped: xrunc is installed beside the test binary")
	}
	t.Setenv("PATH", t.TempDir())
	bundle := t.TempDir()
	os.WriteFile(filepath.Join(bundle, "init.pid"), []byte("99"), 0o600)
	for run := 1; run <= 2; run++ {
		var warn bytes.Buffer
		resp, err := Delete(context.Background(), Flags{Namespace: "ns", ID: "c1", Bundle: bundle}, &warn)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Pid != 99 || resp.ExitStatus != 137 || resp.ExitedAt == nil {
			t.Errorf("run %d: %v", run, resp)
		}
		if !strings.Contains(warn.String(), DefaultRuntime) {
			t.Errorf("run %d: warnings %q do not say the runtime is missing", run, warn.String())
		}
	}
}

func TestDeleteBadOptions(t *testing.T) {
	t.Parallel()
	bundle := t.TempDir()
	os.WriteFile(filepath.Join(bundle, "options.json"), []byte("{broken"), 0o600)
	var warn bytes.Buffer
	resp, err := Delete(context.Background(), Flags{Namespace: "ns", ID: "c1", Bundle: bundle}, &warn)
	if err != nil || resp.ExitStatus != 137 {
		t.Fatalf("Delete = %v, %v", resp, err)
	}
	if !strings.Contains(warn.String(), "options") {
		t.Errorf("warnings %q do not mention the options", warn.String())
	}
}

func TestDeleteNeedsIDAndNamespace(t *testing.T) {
	t.Parallel()
	bundle := t.TempDir()
	for _, f := range []Flags{{ID: "c1", Bundle: bundle}, {Namespace: "ns", Bundle: bundle}} {
		if _, err := Delete(context.Background(), f, &bytes.Buffer{}); err == nil {
			t.Errorf("Delete(%+v) succeeded", f)
		}
	}
}

// TestDeleteUnmountsRootfs: the rootfs mounts (stacked) go.
func TestDeleteUnmountsRootfs(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	rtDir := t.TempDir()
	rt := filepath.Join(rtDir, "runtime")
	writeExecutable(t, rt, deleteRuntime)
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := unix.Mount("tmpfs", rootfs, "tmpfs", 0, "size=1m"); err != nil {
			t.Skipf("skipped: cannot mount tmpfs: %v", err)
		}
	}
	t.Cleanup(func() {
		for unix.Unmount(rootfs, unix.MNT_DETACH) == nil {
		}
	})
	if err := launch.WriteOptions(bundle, &options.Options{BinaryName: rt, Root: filepath.Join(rtDir, "root")}); err != nil {
		t.Fatal(err)
	}
	var warn bytes.Buffer
	if _, err := Delete(context.Background(), Flags{Namespace: "ns", ID: "c1", Bundle: bundle}, &warn); err != nil {
		t.Fatal(err)
	}
	if warn.Len() != 0 {
		t.Errorf("warnings %q", warn.String())
	}
	if err := unix.Unmount(rootfs, 0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("rootfs still mounted after Delete (unmount: %v)", err)
	}
}

func TestRemoveDeadSocket(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	outside := shortTempDir(t)
	tests := []struct {
		name    string
		setup   func(t *testing.T) (socket, address string)
		removed bool
	}{
		{"dead socket in SocketDir", func(t *testing.T) (string, string) {
			p := socketInSocketDir(t, "/test/"+randomName(t), "ns", "c1")
			deadSocket(t, p)
			return p, "unix://" + p
		}, true},
		{"dead socket, address with a newline", func(t *testing.T) (string, string) {
			p := socketInSocketDir(t, "/test/"+randomName(t), "ns", "c1")
			deadSocket(t, p)
			return p, "unix://" + p + "\n"
		}, true},
		{"live socket in SocketDir", func(t *testing.T) (string, string) {
			p := socketInSocketDir(t, "/test/"+randomName(t), "ns", "c1")
			l, err := launch.Listen(p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return p, "unix://" + p
		}, false},
		{"dead socket outside SocketDir", func(t *testing.T) (string, string) {
			p := filepath.Join(outside, randomName(t))
			deadSocket(t, p)
			return p, "unix://" + p
		}, false},
		{"outside SocketDir through ..", func(t *testing.T) (string, string) {
			p := filepath.Join(outside, randomName(t))
			deadSocket(t, p)
			return p, "unix://" + launch.SocketDir + "/../../.." + p
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			socket, address := tt.setup(t)
			bundle := t.TempDir()
			if err := os.WriteFile(filepath.Join(bundle, "address"), []byte(address), 0o600); err != nil {
				t.Fatal(err)
			}
			removeDeadSocket(bundle)
			_, err := os.Lstat(socket)
			if gone := errors.Is(err, os.ErrNotExist); gone != tt.removed {
				t.Errorf("socket removed: %v, want %v", gone, tt.removed)
			}
		})
	}
	// No address file: nothing happens.
	removeDeadSocket(t.TempDir())
}

// TestDeleteRemovesDeadSocket: Delete cleans the socket of a killed shim.
func TestDeleteRemovesDeadSocket(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	rtDir := t.TempDir()
	rt := filepath.Join(rtDir, "runtime")
	writeExecutable(t, rt, deleteRuntime)
	bundle := t.TempDir()
	if err := launch.WriteOptions(bundle, &options.Options{BinaryName: rt, Root: filepath.Join(rtDir, "root")}); err != nil {
		t.Fatal(err)
	}
	p := socketInSocketDir(t, "/test/"+randomName(t), "ns", "c1")
	deadSocket(t, p)
	os.WriteFile(filepath.Join(bundle, "address"), []byte("unix://"+p), 0o600)
	if _, err := Delete(context.Background(), Flags{Namespace: "ns", ID: "c1", Bundle: bundle}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dead shim socket %s left: %v", p, err)
	}
}

// deadSocket leaves a socket file nobody listens on, as a killed shim does
// (a closed shim listener leaves its path).
func deadSocket(t *testing.T, path string) {
	t.Helper()
	l, err := launch.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}
