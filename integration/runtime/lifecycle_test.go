package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestCreateStartState walks a container through created, running and
// stopped and checks the state JSON at each step.
func TestCreateStartState(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t, testenv.WithArgs("/xtest", "pause"))
		pidFile := filepath.Join(b.Dir, "init.pid")
		before := time.Now()
		c := rt.Create(t, b, "--pid-file", pidFile)
		if c.Create.Stdout != "" || c.Create.Stderr != "" {
			t.Errorf("create printed output: stdout %q stderr %q", c.Create.Stdout, c.Create.Stderr)
		}
		st := rt.MustState(t, c.ID)
		for _, k := range []string{"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"} {
			if _, ok := st.Raw[k]; !ok {
				t.Errorf("state has no %q field: %v", k, st.Raw)
			}
		}
		if st.ID != c.ID || st.Status != "created" || st.Pid <= 0 {
			t.Errorf("after create: %+v", st)
		}
		if st.Bundle != b.Dir || st.Rootfs != b.Rootfs {
			t.Errorf("bundle %q rootfs %q, want %q %q", st.Bundle, st.Rootfs, b.Dir, b.Rootfs)
		}
		if !strings.HasPrefix(st.OCIVersion, "1.") {
			t.Errorf("ociVersion %q", st.OCIVersion)
		}
		created, err := st.CreatedTime()
		if err != nil {
			t.Errorf("created %q is not RFC3339Nano: %v", st.Created, err)
		} else if created.Before(before.Add(-time.Second)) || created.After(time.Now().Add(time.Second)) {
			t.Errorf("created %v is not between %v and now", created, before)
		}
		pb, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatalf("pid file: %v", err)
		}
		if p, err := strconv.Atoi(strings.TrimSpace(string(pb))); err != nil || p != st.Pid {
			t.Errorf("pid file %q, state pid %d", pb, st.Pid)
		}
		if !testenv.ProcAlive(st.Pid) {
			t.Errorf("init %d not alive after create", st.Pid)
		}
		// The process has not run yet: no output.
		if out := c.Output(t); out != "" {
			t.Errorf("created container already ran: %q", out)
		}
		r := rt.MustRun(t, "start", c.ID)
		if r.Stdout != "" {
			t.Errorf("start printed %q", r.Stdout)
		}
		c.WaitOutput(t, "ready", shortWait)
		st2 := rt.MustState(t, c.ID)
		if st2.Status != "running" || st2.Pid != st.Pid || st2.Created != st.Created {
			t.Errorf("after start: %+v (was %+v)", st2, st)
		}
		r = rt.Run(t, "start", c.ID)
		if r.Code != 1 || !strings.Contains(rt.ErrorText(t, r), "cannot start an already running container") {
			t.Errorf("start on running: %s", r)
		}
		rt.MustRun(t, "kill", c.ID, "KILL")
		st3 := rt.WaitStatus(t, c.ID, "stopped", shortWait)
		if st3.Pid != 0 {
			t.Errorf("stopped container has pid %d, want 0", st3.Pid)
		}
		r = rt.Run(t, "start", c.ID)
		if r.Code != 1 || !strings.Contains(rt.ErrorText(t, r), "cannot start a container that has stopped") {
			t.Errorf("start on stopped: %s\nlog: %s", r, rt.LastError(t))
		}
		rt.MustRun(t, "delete", c.ID)
		if _, r, err := rt.State(t, c.ID); err == nil || r.Code != 1 || !strings.Contains(rt.ErrorText(t, r), "container does not exist") {
			t.Errorf("state after delete: %s", r)
		}
	})
}

// TestRun covers run: exit code propagation, -d, --pid-file, --keep.
func TestRun(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		t.Run("exit code", func(t *testing.T) {
			for _, code := range []int{0, 1, 7, 42, 255} {
				b := testenv.NewBundle(t, testenv.WithArgs("/xtest", "exit", strconv.Itoa(code)))
				r := runFG(t, rt, b)
				if r.Code != code {
					t.Errorf("exit %d: run returned %s", code, r)
				}
				if _, _, err := rt.State(t, b.ID); err == nil {
					t.Errorf("state of %s kept after run without --keep", b.ID)
				}
				if d := b.CgroupDirs(); len(d) != 0 {
					t.Errorf("cgroup dirs left after run: %q", d)
				}
			}
		})
		t.Run("stdout", func(t *testing.T) {
			b := testenv.NewBundle(t, testenv.WithArgs("/bin/sh", "-c", "echo out; echo err >&2"))
			r := runFG(t, rt, b)
			if r.Code != 0 || r.Stdout != "out\n" || r.Stderr != "err\n" {
				t.Errorf("got %s", r)
			}
		})
		t.Run("signal", func(t *testing.T) {
			// An init killed by a signal: run exits 128+sig.
			b := testenv.NewBundle(t, testenv.WithArgs("/xtest", "pause"))
			done := make(chan testenv.Result, 1)
			go func() { done <- runFG(t, rt, b) }()
			deadline := time.Now().Add(shortWait)
			for {
				if st, _, err := rt.State(t, b.ID); err == nil && st.Status == "running" && st.Pid > 0 {
					syscall.Kill(st.Pid, syscall.SIGKILL)
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("container never ran")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if r := <-done; r.Code != 128+9 {
				t.Errorf("want exit 137, got %s", r)
			}
		})
		t.Run("keep", func(t *testing.T) {
			b := testenv.NewBundle(t, testenv.WithArgs("/xtest", "exit", "3"))
			r := runFG(t, rt, b, "--keep")
			if r.Code != 3 {
				t.Fatalf("run --keep: %s", r)
			}
			st := rt.MustState(t, b.ID)
			if st.Status != "stopped" || st.Pid != 0 {
				t.Errorf("kept state: %+v", st)
			}
			rt.MustRun(t, "delete", b.ID)
		})
		t.Run("detach", func(t *testing.T) {
			b := testenv.NewBundle(t, testenv.WithArgs("/xtest", "pause"))
			pidFile := filepath.Join(b.Dir, "pid")
			start := time.Now()
			c := rt.RunDetached(t, b, "--pid-file", pidFile)
			if time.Since(start) > 20*time.Second {
				t.Errorf("run -d did not return promptly")
			}
			st := rt.MustState(t, c.ID)
			if st.Status != "running" {
				t.Errorf("after run -d: %+v", st)
			}
			pb, _ := os.ReadFile(pidFile)
			if strings.TrimSpace(string(pb)) != strconv.Itoa(st.Pid) {
				t.Errorf("pid file %q, state pid %d", pb, st.Pid)
			}
			c.WaitOutput(t, "ready", shortWait)
			rt.MustRun(t, "kill", c.ID, "TERM")
			c.WaitOutput(t, "SIGTERM", shortWait)
			// A detached container keeps its state after it exits.
			rt.WaitStatus(t, c.ID, "stopped", shortWait)
			rt.MustRun(t, "delete", c.ID)
		})
	})
}

// TestList covers list in table, json and -q forms.
func TestList(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		r := rt.MustRun(t, "list", "--format", "json")
		if s := strings.TrimSpace(r.Stdout); s != "null" && s != "[]" {
			t.Errorf("empty list json: %q", s)
		}
		b1 := testenv.NewBundle(t)
		b2 := testenv.NewBundle(t)
		c1 := rt.Create(t, b1)
		c2 := rt.CreateStart(t, b2)
		pid1 := rt.MustState(t, c1.ID).Pid
		pid2 := rt.MustState(t, c2.ID).Pid

		r = rt.MustRun(t, "list")
		lines := strings.Split(strings.TrimRight(r.Stdout, "\n"), "\n")
		if got := strings.Fields(lines[0]); strings.Join(got, " ") != "ID PID STATUS BUNDLE CREATED OWNER" {
			t.Errorf("table header %q", lines[0])
		}
		rows := map[string][]string{}
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) == 6 {
				rows[f[0]] = f
			}
		}
		for _, want := range [][]string{
			{c1.ID, strconv.Itoa(pid1), "created", b1.Dir},
			{c2.ID, strconv.Itoa(pid2), "running", b2.Dir},
		} {
			row := rows[want[0]]
			if row == nil || row[1] != want[1] || row[2] != want[2] || row[3] != want[3] || row[5] != "root" {
				t.Errorf("table row for %s: %q, want %q ... root", want[0], row, want)
			}
			if row != nil {
				if _, err := time.Parse(time.RFC3339Nano, row[4]); err != nil {
					t.Errorf("CREATED column %q: %v", row[4], err)
				}
			}
		}
		if len(lines) != 3 {
			t.Errorf("want header + 2 rows, got %q", lines)
		}

		r = rt.MustRun(t, "list", "--format", "json")
		var arr []map[string]any
		if err := json.Unmarshal([]byte(r.Stdout), &arr); err != nil {
			t.Fatalf("list json %q: %v", r.Stdout, err)
		}
		got := map[string]map[string]any{}
		for _, o := range arr {
			id, _ := o["id"].(string)
			got[id] = o
		}
		if len(arr) != 2 || got[c1.ID]["status"] != "created" || got[c2.ID]["status"] != "running" {
			t.Errorf("list json: %s", r.Stdout)
		}
		for _, o := range arr {
			for _, k := range []string{"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"} {
				if _, ok := o[k]; !ok {
					t.Errorf("list json object lacks %q: %v", k, o)
				}
			}
			if o["owner"] != "root" {
				t.Errorf("list json owner %v, want root", o["owner"])
			}
		}

		r = rt.MustRun(t, "list", "-q")
		ids := strings.Fields(r.Stdout)
		if len(ids) != 2 || !(ids[0] == c1.ID && ids[1] == c2.ID || ids[0] == c2.ID && ids[1] == c1.ID) {
			t.Errorf("list -q: %q", r.Stdout)
		}
	})
}

// TestKill: default signal, names with and without SIG, numbers; errors
// on a stopped container.
func TestKill(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{nil, "SIGTERM"},
			{[]string{"TERM"}, "SIGTERM"},
			{[]string{"SIGUSR1"}, "SIGUSR1"},
			{[]string{"USR2"}, "SIGUSR2"},
			{[]string{"10"}, "SIGUSR1"},
			{[]string{"1"}, "SIGHUP"},
			{[]string{"SIGINT"}, "SIGINT"},
		} {
			b := testenv.NewBundle(t, testenv.WithArgs("/xtest", "pause"))
			c := rt.CreateStart(t, b)
			c.WaitOutput(t, "ready", shortWait)
			r := rt.Run(t, append([]string{"kill", c.ID}, tc.args...)...)
			if r.Code != 0 {
				t.Errorf("kill %q: %s", tc.args, r)
				continue
			}
			c.WaitOutput(t, tc.want, shortWait)
			rt.WaitStatus(t, c.ID, "stopped", shortWait)
		}
		t.Run("stopped", func(t *testing.T) {
			b := testenv.NewBundle(t, testenv.WithArgs("/xtest", "exit", "0"))
			c := rt.CreateStart(t, b)
			rt.WaitStatus(t, c.ID, "stopped", shortWait)
			r := rt.Run(t, "kill", c.ID, "KILL")
			if r.Code != 1 || !strings.Contains(rt.ErrorText(t, r), "container not running") {
				t.Errorf("kill stopped: want exit 1 \"container not running\", got %s", r)
			}
			r = rt.Run(t, "kill", "--all", c.ID, "KILL")
			if r.Code != 0 {
				t.Errorf("kill --all stopped: want exit 0, got %s", r)
			}
		})
		t.Run("all", func(t *testing.T) {
			// kill --all signals every process of the container.
			b := testenv.NewBundle(t, testenv.WithArgs("/bin/sh", "-c", "/xtest sleep 600 & /xtest sleep 600 & echo started; wait"))
			c := rt.CreateStart(t, b)
			c.WaitOutput(t, "started", shortWait)
			var pids []int
			deadline := time.Now().Add(shortWait)
			for len(pids) < 3 && time.Now().Before(deadline) {
				pids = psPids(t, rt, c.ID)
				time.Sleep(20 * time.Millisecond)
			}
			if len(pids) < 3 {
				t.Fatalf("ps: want 3 pids, got %v", pids)
			}
			rt.MustRun(t, "kill", "--all", c.ID, "KILL")
			for _, p := range pids {
				if !testenv.WaitProcGone(p, shortWait) {
					t.Errorf("pid %d survived kill --all", p)
				}
			}
			rt.WaitStatus(t, c.ID, "stopped", shortWait)
		})
		t.Run("bad signal", func(t *testing.T) {
			b := testenv.NewBundle(t)
			c := rt.CreateStart(t, b)
			if r := rt.Run(t, "kill", c.ID, "SIGNOPE"); r.Code == 0 {
				t.Errorf("kill with an unknown signal name succeeded")
			}
			if rt.MustState(t, c.ID).Status != "running" {
				t.Errorf("container not running after a bad kill")
			}
		})
	})
}

func psPids(t *testing.T, rt *testenv.Runtime, id string) []int {
	t.Helper()
	r := rt.MustRun(t, "ps", "--format", "json", id)
	var pids []int
	if err := json.Unmarshal([]byte(r.Stdout), &pids); err != nil {
		t.Fatalf("ps json %q: %v", r.Stdout, err)
	}
	return pids
}

// TestDelete: created and stopped containers delete without --force,
// running ones need it; missing ids.
func TestDelete(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		t.Run("created", func(t *testing.T) {
			b := testenv.NewBundle(t)
			c := rt.Create(t, b)
			pid := c.Pid(t)
			if len(b.CgroupDirs()) == 0 {
				t.Errorf("no cgroup dir at %s after create", b.CgroupsPath)
			}
			rt.MustRun(t, "delete", c.ID)
			if !testenv.WaitProcGone(pid, shortWait) {
				t.Errorf("init %d of a deleted created container still alive", pid)
			}
			if d := b.CgroupDirs(); len(d) != 0 {
				t.Errorf("cgroup dirs left after delete: %q", d)
			}
			if _, err := os.Stat(filepath.Join(rt.Root, c.ID)); !os.IsNotExist(err) {
				t.Errorf("state dir left after delete: %v", err)
			}
		})
		t.Run("stopped", func(t *testing.T) {
			b := testenv.NewBundle(t, testenv.WithArgs("/xtest", "exit", "0"))
			c := rt.CreateStart(t, b)
			rt.WaitStatus(t, c.ID, "stopped", shortWait)
			rt.MustRun(t, "delete", c.ID)
			if d := b.CgroupDirs(); len(d) != 0 {
				t.Errorf("cgroup dirs left after delete: %q", d)
			}
		})
		t.Run("running", func(t *testing.T) {
			b := testenv.NewBundle(t)
			c := rt.CreateStart(t, b)
			pid := c.Pid(t)
			r := rt.Run(t, "delete", c.ID)
			if r.Code != 1 || !strings.Contains(rt.ErrorText(t, r), "running") {
				t.Errorf("delete running without --force: want exit 1 mentioning \"running\", got %s", r)
			}
			if !testenv.ProcAlive(pid) {
				t.Fatalf("plain delete killed the container")
			}
			rt.MustRun(t, "delete", "--force", c.ID)
			if !testenv.WaitProcGone(pid, shortWait) {
				t.Errorf("delete --force left init %d alive", pid)
			}
			if d := b.CgroupDirs(); len(d) != 0 {
				t.Errorf("cgroup dirs left after delete --force: %q", d)
			}
		})
		t.Run("missing", func(t *testing.T) {
			r := rt.Run(t, "delete", "xit-missing")
			if r.Code != 1 || !strings.Contains(rt.ErrorText(t, r), "container does not exist") {
				t.Errorf("delete missing: %s", r)
			}
			if r := rt.Run(t, "delete", "--force", "xit-missing"); r.Code != 0 {
				t.Errorf("delete --force missing: want exit 0, got %s", r)
			}
		})
	})
}

// TestDuplicateID: a second create with the same id fails and leaves the
// first container alone.
func TestDuplicateID(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t)
		c := rt.Create(t, b)
		pid := c.Pid(t)
		b2 := testenv.NewBundle(t, testenv.WithID(b.ID))
		_, r := rt.TryCreate(t, b2)
		if r.Code != 1 || !strings.Contains(rt.ErrorText(t, r), "container with given ID already exists") {
			t.Errorf("duplicate create: %s", r)
		}
		st := rt.MustState(t, c.ID)
		if st.Pid != pid || st.Bundle != b.Dir || st.Status != "created" {
			t.Errorf("first container changed: %+v", st)
		}
		if r := runFG(t, rt, b2); r.Code == 0 || !strings.Contains(rt.ErrorText(t, r), "container with given ID already exists") {
			t.Errorf("duplicate run: %s", r)
		}
	})
}

// TestPs: ps --format json lists host pids; the table runs ps(1).
func TestPs(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t, testenv.WithArgs("/bin/sh", "-c", "/xtest sleep 600 & echo started; wait"))
		c := rt.CreateStart(t, b)
		c.WaitOutput(t, "started", shortWait)
		initPid := c.Pid(t)
		var pids []int
		deadline := time.Now().Add(shortWait)
		for len(pids) < 2 && time.Now().Before(deadline) {
			pids = psPids(t, rt, c.ID)
		}
		if len(pids) != 2 {
			t.Fatalf("ps json: want 2 pids, got %v", pids)
		}
		found := false
		for _, p := range pids {
			if p == initPid {
				found = true
			}
			// Host pids: the process exists in our namespace and is
			// in the container's cgroup.
			cg, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cgroup")
			if err != nil || !strings.Contains(string(cg), b.CgroupsPath) {
				t.Errorf("pid %d is not a host pid in %s: %s %v", p, b.CgroupsPath, cg, err)
			}
		}
		if !found {
			t.Errorf("ps json %v lacks init pid %d", pids, initPid)
		}
		r := rt.MustRun(t, "ps", c.ID)
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(lines) != 3 || !strings.Contains(lines[0], "PID") {
			t.Errorf("ps table: %q", r.Stdout)
		}
		if !strings.Contains(r.Stdout, " "+strconv.Itoa(initPid)+" ") {
			t.Errorf("ps table lacks init pid %d: %q", initPid, r.Stdout)
		}
		// ps arguments after the id go to ps(1).
		r = rt.MustRun(t, "ps", c.ID, "-o", "pid,comm")
		if !strings.Contains(r.Stdout, "xtest") || !strings.Contains(r.Stdout, strconv.Itoa(initPid)) {
			t.Errorf("ps -o pid,comm: %q", r.Stdout)
		}
		syscall.Kill(initPid, syscall.SIGKILL)
		rt.WaitStatus(t, c.ID, "stopped", shortWait)
		// runc 1.1 lists no process (and exits 0) for a stopped container.
		if pids := psPids(t, rt, c.ID); len(pids) != 0 {
			t.Errorf("ps json on stopped: %v", pids)
		}
	})
}

// TestStateAnnotations: the spec's annotations are reported by state and
// list.
func TestStateAnnotations(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Annotations = map[string]string{"org.xstack.test": "value", "org.xstack.empty": ""}
		}))
		c := rt.Create(t, b)
		st := rt.MustState(t, c.ID)
		if st.Annotations["org.xstack.test"] != "value" || len(st.Annotations) != 2 {
			t.Errorf("state annotations: %v", st.Annotations)
		}
		r := rt.MustRun(t, "list", "--format", "json")
		if !strings.Contains(r.Stdout, `"org.xstack.test":"value"`) {
			t.Errorf("list json lacks the annotations: %s", r.Stdout)
		}
	})
}

// TestPausedStates: a created container can be paused (and then reads
// paused, and cannot start until resumed); SIGKILL to a paused container
// stops it, as runc thaws it for the kill.
func TestPausedStates(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t)
		c := rt.Create(t, b)
		rt.MustRun(t, "pause", c.ID)
		if st := rt.MustState(t, c.ID); st.Status != "paused" {
			t.Errorf("paused created container reads %q, want paused", st.Status)
		}
		if r := rt.Start(t, c.ID); r.Code == 0 {
			t.Errorf("start of a paused container succeeded: %s", r)
		}
		rt.MustRun(t, "resume", c.ID)
		if st := rt.MustState(t, c.ID); st.Status != "created" {
			t.Errorf("resumed created container reads %q, want created", st.Status)
		}
		rt.MustRun(t, "start", c.ID)
		rt.WaitStatus(t, c.ID, "running", 10*time.Second)
		rt.MustRun(t, "pause", c.ID)
		rt.MustRun(t, "kill", c.ID, "KILL")
		rt.WaitStatus(t, c.ID, "stopped", 10*time.Second)
		rt.MustRun(t, "delete", c.ID)
	})
}
