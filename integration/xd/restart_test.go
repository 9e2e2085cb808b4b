package xd

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xstack/xstack/integration/internal/testenv"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// TestRestartRecovery is the core promise: xd dies (SIGKILL, SIGTERM, or
// stopped and replaced by a new binary) and comes back; running containers
// are untouched, exits that happened meanwhile are learned, a shim that died
// meanwhile is cleaned up.
func TestRestartRecovery(t *testing.T) {
	for _, tc := range []struct {
		name    string
		how     syscall.Signal
		upgrade bool
	}{
		{"killed", syscall.SIGKILL, false},
		{"terminated", syscall.SIGTERM, false},
		{"upgraded", syscall.SIGTERM, true},
	} {
		how := tc.how
		t.Run(tc.name, func(t *testing.T) {
			d := newDaemon(t)
			d.importImage()
			d.ok("run", "-d", "--name", "keep", testImage, "sh", "-c", "echo before; exec sleep 1000")
			d.ok("run", "-d", "--name", "exits", testImage, "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo bye; exit 7")
			d.ok("run", "-d", "--name", "shimdies", testImage, "sleep", "1000")
			keep := d.waitStatus("keep", xdv1.Status_RUNNING)
			d.waitStatus("exits", xdv1.Status_RUNNING)
			dies := d.waitStatus("shimdies", xdv1.Status_RUNNING)
			shims := d.shimPids()
			if len(shims) != 3 {
				t.Fatalf("%d shims, want 3", len(shims))
			}
			// Two execs in keep: one exits while xd is down, one outlives
			// the restart.
			ctx := context.Background()
			tasks := xdv1.NewTasksClient(d.api())
			for _, e := range []struct{ id, script string }{
				{"exits", "while [ ! -e /tmp/exec-go ]; do sleep 0.05; done; exit 3"},
				{"stays", "exec sleep 1000"},
			} {
				if _, err := tasks.Exec(ctx, &xdv1.ExecRequest{ContainerId: "keep", ExecId: e.id, Args: []string{"sh", "-c", e.script}}); err != nil {
					t.Fatalf("exec %s: %v", e.id, err)
				}
				if _, err := tasks.Start(ctx, &xdv1.StartRequest{ContainerId: "keep", ExecId: e.id}); err != nil {
					t.Fatalf("start exec %s: %v", e.id, err)
				}
			}

			d.signal(how)
			// While xd is down: a container exits, and another's shim is killed.
			if err := os.WriteFile(filepath.Join(d.state, "bundles", "default", "exits", "rootfs", "tmp", "go"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d.state, "bundles", "default", "keep", "rootfs", "tmp", "exec-go"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			var deadShim int
			for _, pid := range shims {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
				if strings.Contains(string(b), "\x00shimdies\x00") {
					deadShim = pid
				}
			}
			if deadShim == 0 {
				t.Fatal("no shim names shimdies on its command line")
			}
			syscall.Kill(deadShim, syscall.SIGKILL)
			testenv.WaitProcGone(deadShim, 5*time.Second)
			syscall.Kill(int(dies.Pid), syscall.SIGKILL) // the container dies with its shim, as with a killed containerd shim
			testenv.WaitProcGone(int(dies.Pid), 5*time.Second)
			reapChildren()
			if !testenv.ProcAlive(int(keep.Pid)) {
				t.Fatal("xd's death killed a container")
			}
			time.Sleep(300 * time.Millisecond)

			if tc.upgrade {
				d.bin = newInstall(t)
			}
			d.start()
			got := d.waitStatus("keep", xdv1.Status_RUNNING)
			if got.Pid != keep.Pid {
				t.Fatalf("keep: pid %d after restart, was %d", got.Pid, keep.Pid)
			}
			ex := d.waitStatus("exits", xdv1.Status_STOPPED)
			if ex.ExitStatus != 7 {
				t.Fatalf("exits: exit %d, want 7", ex.ExitStatus)
			}
			if out, _, code := d.xctl("wait", "exits"); code != 7 || strings.TrimSpace(out) != "7" {
				t.Fatalf("wait exits: %d %q", code, out)
			}
			if logs := d.ok("logs", "exits"); logs != "bye\n" {
				t.Fatalf("output written while xd was down: %q", logs)
			}
			dead := d.waitStatus("shimdies", xdv1.Status_STOPPED)
			if dead.Error == "" {
				t.Fatalf("shimdies: no error recorded: %+v", dead)
			}
			// The dead shim's bundle and mount are cleaned, the others kept.
			if _, err := os.Stat(filepath.Join(d.state, "bundles", "default", "shimdies")); !os.IsNotExist(err) {
				t.Fatalf("dead shim's bundle remains: %v", err)
			}
			// Its execs are xd's again: the exit that happened meanwhile is
			// learned, the running one can be signalled and waited for.
			tasks = xdv1.NewTasksClient(d.api())
			if st, err := tasks.Wait(ctx, &xdv1.WaitRequest{ContainerId: "keep", ExecId: "exits"}); err != nil || st.ExitStatus != 3 {
				t.Fatalf("exec that exited while xd was down: %+v, %v; want exit 3", st, err)
			}
			if _, err := tasks.Delete(ctx, &xdv1.DeleteTaskRequest{ContainerId: "keep", ExecId: "exits"}); err != nil {
				t.Fatalf("delete exec: %v", err)
			}
			if _, err := tasks.Kill(ctx, &xdv1.KillRequest{ContainerId: "keep", ExecId: "stays", Signal: uint32(syscall.SIGKILL)}); err != nil {
				t.Fatalf("kill the exec that outlived the restart: %v", err)
			}
			if st, err := tasks.Wait(ctx, &xdv1.WaitRequest{ContainerId: "keep", ExecId: "stays"}); err != nil || st.ExitStatus != 137 {
				t.Fatalf("exec killed after the restart: %+v, %v; want exit 137", st, err)
			}
			// keep is still fully usable.
			if out := d.ok("exec", "keep", "echo", "alive"); out != "alive\n" {
				t.Fatalf("exec after restart: %q", out)
			}
			if logs := d.ok("logs", "keep"); logs != "before\n" {
				t.Fatalf("logs of keep: %q", logs)
			}
			d.ok("kill", "keep")
			if out, _, code := d.xctl("wait", "keep"); code != 137 || strings.TrimSpace(out) != "137" {
				t.Fatalf("wait keep after restart: %d %q", code, out)
			}
		})
	}
}

// TestEventsOrder: a subscriber sees a container's life in order.
func TestEventsOrder(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	cmd := exec.Command(binary(t, "xctl"), "--address", d.address, "events", "--format", "json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	time.Sleep(300 * time.Millisecond) // let the subscription start
	d.ok("run", "--rm", "--name", "ev", testImage, "true")

	want := []string{"/containers/create", "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete", "/containers/delete"}
	var got []string
	sc := bufio.NewScanner(stdout)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("event line %q: %v", sc.Text(), err)
				return
			}
			topic, _ := ev["topic"].(string)
			got = append(got, topic)
			if topic == "/containers/delete" {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// newInstall is another installation of xstack, as an upgrade leaves it: a
// new copy of xd in another directory, with the shim and runtime beside it.
func newInstall(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(binary(t, "xd"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "xd"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"xshim", "xrunc"} {
		if err := os.Symlink(binary(t, b), filepath.Join(dir, b)); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "xd")
}
