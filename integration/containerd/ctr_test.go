package containerd_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestCtrRun: `ctr run --rm` returns the container's exit code and prints
// its output, both through the default runtime with --runc-binary (the
// shim under test reached through PATH, getting Options{binary_name}) and
// through `--runtime <absolute path of the shim>` (no options: the shim
// runs its default `runc`, which PATH makes the runtime under test).
func TestCtrRun(t *testing.T) {
	forEach(t, func(t *testing.T, d *daemon) {
		t.Run("runc-binary", func(t *testing.T) {
			args := append([]string{"run", "--rm"}, d.runtimeFlags()...)
			args = append(args, "--rootfs", d.rootfs(t, "r1"), "r1", "/bin/sh", "-c", "echo out-$((6*7)); exit 7")
			r := d.ctr(t, args...)
			if r.code != 7 || !strings.Contains(r.stdout, "out-42") {
				t.Errorf("%s\nwant exit 7 and out-42", r)
			}
		})
		// With --runtime ctr sends no options: containerd-shim-runc-v2
		// then runs "runc" from containerd's PATH (the runtime under
		// test), xshim its default, the xrunc installed beside it.
		t.Run("runtime-path", func(t *testing.T) {
			r := d.ctr(t, "run", "--runtime", d.c.Shim, "--rm", "--rootfs", d.rootfs(t, "r2"), "r2", "/bin/sh", "-c", "exit 7")
			if r.code != 7 {
				t.Errorf("%s\nwant exit 7", r)
			}
		})
		if tasks := d.tasks(t); len(tasks) != 0 {
			t.Errorf("tasks left after run --rm: %v", tasks)
		}
	})
}

// TestCtrTask: ctr task exec (output and exit code), ps, metrics,
// pause/resume with ls, kill (SIGTERM to an init that handles it, SIGKILL),
// rm (exit status warnings), and the events that `ctr events` shows, in
// order.
func TestCtrTask(t *testing.T) {
	forEach(t, func(t *testing.T, d *daemon) {
		events := d.startEvents(t)
		d.runDetached(t, "c1", "/xtest", "pause")
		row := d.waitStatus(t, "c1", "RUNNING")

		r := d.mustCtr(t, "task", "exec", "--exec-id", "e1", "c1", "/bin/echo", "hi")
		if strings.TrimSpace(r.stdout) != "hi" {
			t.Errorf("task exec echo: stdout %q, want hi", r.stdout)
		}
		r = d.ctr(t, "task", "exec", "--exec-id", "e2", "c1", "/bin/sh", "-c", "exit 4")
		if r.code != 4 {
			t.Errorf("task exec exit 4: %s", r)
		}
		r = d.ctr(t, "task", "exec", "--exec-id", "e3", "c1", "/nonexistent")
		if r.code == 0 {
			t.Errorf("task exec of a missing binary succeeded: %s", r)
		} else {
			t.Logf("task exec of a missing binary: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
		}

		r = d.mustCtr(t, "task", "ps", "c1")
		if !hasField(r.stdout, strconv.Itoa(row.pid)) {
			t.Errorf("task ps does not list the init %d:\n%s", row.pid, r.stdout)
		}
		r = d.mustCtr(t, "task", "metrics", "c1")
		if len(strings.Fields(r.stdout)) < 3 {
			t.Errorf("task metrics printed almost nothing: %q", r.stdout)
		}
		t.Logf("task metrics:\n%s", r.stdout)

		d.mustCtr(t, "task", "pause", "c1")
		if got := d.tasks(t)["c1"]; got.status != "PAUSED" || got.pid != row.pid {
			t.Errorf("after pause: %+v, want PAUSED %d", got, row.pid)
		}
		d.mustCtr(t, "task", "resume", "c1")
		if got := d.tasks(t)["c1"]; got.status != "RUNNING" {
			t.Errorf("after resume: %+v, want RUNNING", got)
		}

		// SIGTERM (ctr's default) to /xtest pause, which handles it and
		// exits 0.
		d.mustCtr(t, "task", "kill", "c1")
		d.waitStatus(t, "c1", "STOPPED")
		r = d.mustCtr(t, "task", "rm", "c1")
		if strings.Contains(r.stderr, "non-zero exit code") {
			t.Errorf("task rm after a clean exit: %s", r)
		}
		d.mustCtr(t, "container", "rm", "c1")

		d.runDetached(t, "c2", "/bin/sleep", "3600")
		d.waitStatus(t, "c2", "RUNNING")
		d.mustCtr(t, "task", "kill", "-s", "SIGKILL", "c2")
		d.waitStatus(t, "c2", "STOPPED")
		r = d.mustCtr(t, "task", "rm", "c2")
		if !strings.Contains(r.stderr, "exit code 137") {
			t.Errorf("task rm after SIGKILL: stderr %q, want the exit code 137 warning", r.stderr)
		}
		d.mustCtr(t, "container", "rm", "c2")

		// ctr events: one line per event, "TIME NS TOPIC JSON".
		want := []string{"/tasks/create", "/tasks/start",
			"/tasks/exec-added", "/tasks/exec-started", "/tasks/exit", // e1
			"/tasks/exec-added", "/tasks/exec-started", "/tasks/exit", // e2
			"/tasks/exec-added", // e3 (its start fails)
			"/tasks/paused", "/tasks/resumed", "/tasks/exit", "/tasks/delete"}
		var got []string
		deadline := time.Now().Add(10 * time.Second)
		for {
			got = taskTopics(events(), d.ns, "c1")
			if len(got) >= len(want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("ctr events for c1:\n got %q\nwant %q\n%s", got, want, events())
		}
		exit := eventJSON(events(), d.ns, "c1", "/tasks/exit", "c1")
		if exit == nil || exit["pid"] != float64(row.pid) {
			t.Errorf("init exit event %v, want pid %d", exit, row.pid)
		} else if _, ok := exit["exit_status"]; ok {
			t.Errorf("init exit event %v, want exit status 0 (omitted)", exit)
		}
		e2 := eventJSON(events(), d.ns, "c1", "/tasks/exit", "e2")
		if e2 == nil || e2["exit_status"] != float64(4) {
			t.Errorf("exec e2 exit event %v, want exit_status 4", e2)
		}
	})
}

// TestCtrDaemonRestart: containerd is SIGKILLed while two containers run
// and restarted: the shims survive, `ctr task ls` lists both RUNNING with
// the same pids, and they can still be killed and deleted.
func TestCtrDaemonRestart(t *testing.T) {
	forEach(t, func(t *testing.T, d *daemon) {
		d.runDetached(t, "k1", "/bin/sleep", "3600")
		d.runDetached(t, "k2", "/bin/sleep", "3600")
		before := d.tasks(t)
		shims := d.shimPids()
		if len(shims) != 2 {
			t.Errorf("%d shims for 2 containers: %v", len(shims), shims)
		}
		d.killContainerd()
		time.Sleep(300 * time.Millisecond)
		for _, pid := range shims {
			if !testenv.ProcAlive(pid) {
				t.Errorf("shim %d died with containerd", pid)
			}
		}
		for id, row := range before {
			if !testenv.ProcAlive(row.pid) {
				t.Errorf("container %s (pid %d) died with containerd", id, row.pid)
			}
		}
		d.startContainerd(t)
		after := d.tasks(t)
		for _, id := range []string{"k1", "k2"} {
			if after[id].status != "RUNNING" || after[id].pid != before[id].pid || before[id].pid == 0 {
				t.Errorf("after restart %s: %+v, before %+v", id, after[id], before[id])
			}
		}
		for _, id := range []string{"k1", "k2"} {
			d.mustCtr(t, "task", "kill", "-s", "SIGKILL", id)
			d.waitStatus(t, id, "STOPPED")
			r := d.mustCtr(t, "task", "rm", id)
			if !strings.Contains(r.stderr, "exit code 137") {
				t.Errorf("task rm %s: stderr %q, want the exit code 137 warning", id, r.stderr)
			}
			d.mustCtr(t, "container", "rm", id)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(d.shimPids()) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if pids := d.shimPids(); len(pids) > 0 {
			t.Errorf("shims still running after their containers were deleted: %v", pids)
		}
	})
}

// TestReferenceShimDrivesXrunc: containerd-shim-runc-v2 (the reference,
// whatever XSTACK_SHIMS says) driving bin/xrunc through `ctr run
// --runc-binary`: run, exec, kill, delete. A missing bin/xrunc fails.
func TestReferenceShimDrivesXrunc(t *testing.T) {
	testenv.RequireRoot(t)
	shim, err := testenv.ResolveShim(testenv.ReferenceShim)
	if err != nil {
		t.Fatal(err)
	}
	xrunc, err := testenv.ResolveRuntime("xrunc")
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, testenv.ShimCombo{ShimName: testenv.ReferenceShim, Shim: shim, RuntimeName: "xrunc", Runtime: xrunc})
	r := d.ctr(t, "run", "--runc-binary", xrunc, "--rm", "--rootfs", d.rootfs(t, "x1"), "x1", "/bin/sh", "-c", "echo via-xrunc; exit 3")
	if r.code != 3 || !strings.Contains(r.stdout, "via-xrunc") {
		t.Errorf("%s\nwant exit 3 and via-xrunc", r)
	}

	d.runDetached(t, "x2", "/bin/sleep", "3600")
	row := d.waitStatus(t, "x2", "RUNNING")
	bundle := filepath.Join(d.dir, "state", "io.containerd.runtime.v2.task", d.ns, "x2")
	b, err := os.ReadFile(filepath.Join(bundle, "options.json"))
	if err != nil {
		t.Fatal(err)
	}
	var opts struct {
		BinaryName string `json:"binary_name"`
	}
	if err := json.Unmarshal(b, &opts); err != nil || opts.BinaryName != xrunc {
		t.Errorf("options.json %s, want binary_name %s", b, xrunc)
	}
	r = d.mustCtr(t, "task", "exec", "--exec-id", "e1", "x2", "/bin/sh", "-c", "echo exec-$((1+1))")
	if strings.TrimSpace(r.stdout) != "exec-2" {
		t.Errorf("exec through xrunc: %q", r.stdout)
	}
	d.mustCtr(t, "task", "kill", "-s", "SIGKILL", "x2")
	d.waitStatus(t, "x2", "STOPPED")
	if !testenv.WaitProcGone(row.pid, 5*time.Second) {
		t.Errorf("init %d alive after kill", row.pid)
	}
	d.mustCtr(t, "task", "rm", "x2")
	d.mustCtr(t, "container", "rm", "x2")
	if _, err := os.Stat(bundle); err == nil {
		t.Errorf("bundle %s left after task rm", bundle)
	}
}

// hasField reports whether a whitespace-separated field of out equals f.
func hasField(out, f string) bool {
	for _, x := range strings.Fields(out) {
		if x == f {
			return true
		}
	}
	return false
}

// eventLine is one parsed `ctr events` line.
type eventLine struct {
	ns, topic string
	body      map[string]any
}

// parseEvents parses `ctr events` output: "DATE TIME +0000 UTC NS TOPIC JSON".
func parseEvents(out string) []eventLine {
	var evs []eventLine
	for _, l := range strings.Split(out, "\n") {
		i := strings.Index(l, " UTC ")
		if i < 0 {
			continue
		}
		rest := strings.SplitN(l[i+len(" UTC "):], " ", 3)
		if len(rest) < 2 {
			continue
		}
		ev := eventLine{ns: rest[0], topic: rest[1]}
		if len(rest) == 3 {
			json.Unmarshal([]byte(rest[2]), &ev.body)
		}
		evs = append(evs, ev)
	}
	return evs
}

// taskTopics lists the /tasks/ topics of container id in namespace ns.
func taskTopics(out, ns, id string) []string {
	var got []string
	for _, ev := range parseEvents(out) {
		if ev.ns == ns && strings.HasPrefix(ev.topic, "/tasks/") && ev.body["container_id"] == id {
			got = append(got, ev.topic)
		}
	}
	return got
}

// eventJSON is the body of the first event of container cid with topic
// and "id" (for exits: the exec id, or the container id for the init).
func eventJSON(out, ns, cid, topic, id string) map[string]any {
	for _, ev := range parseEvents(out) {
		if ev.ns == ns && ev.topic == topic && ev.body["container_id"] == cid && ev.body["id"] == id {
			return ev.body
		}
	}
	return nil
}
