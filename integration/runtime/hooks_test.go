package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// hookLine makes a hook that appends "<kind> <netns> <state json>" to log.
// The shell is the host's /bin/sh for hooks that resolve on the host, the
// container's busybox for startContainer.
func hookLine(kind, log string) specs.Hook {
	return specs.Hook{
		Path: "/bin/sh",
		Args: []string{"sh", "-c", `echo "$0 $(readlink /proc/self/ns/net) $(cat)" >> "$1"`, kind, log},
		Env:  []string{"PATH=/bin:/usr/bin"},
	}
}

type hookRecord struct {
	kind  string
	netns string
	state specs.State
}

func readHookLog(t *testing.T, path string) []hookRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("hook log: %v", err)
	}
	var out []hookRecord
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(l, " ", 3)
		if len(f) != 3 {
			t.Fatalf("malformed hook log line %q", l)
		}
		r := hookRecord{kind: f[0], netns: f[1]}
		if err := json.Unmarshal([]byte(f[2]), &r.state); err != nil {
			t.Fatalf("hook %s got no state JSON on stdin: %q", f[0], f[2])
		}
		out = append(out, r)
	}
	return out
}

// TestHooks: every hook kind runs once, in lifecycle order, with the
// container's state on stdin, in the right network namespace (createRuntime
// and poststart in the runtime's, createContainer and startContainer in
// the container's).
func TestHooks(t *testing.T) {
	t.Parallel()
	hostNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		log := filepath.Join(testenv.TempDir(t, 0o755), "hooks.log")
		b := testenv.NewBundle(t, testenv.WithWritableRoot(), testenv.WithArgs("/bin/sh", "-c", "cat /hooks.log"),
			testenv.WithSpec(func(s *specs.Spec) {
				s.Annotations = map[string]string{"hook-test": "yes"}
				s.Hooks = &specs.Hooks{
					Prestart:        []specs.Hook{hookLine("prestart", log)},
					CreateRuntime:   []specs.Hook{hookLine("createRuntime", log)},
					CreateContainer: []specs.Hook{hookLine("createContainer", log)},
					// Resolved and run inside the container: log inside it.
					StartContainer: []specs.Hook{hookLine("startContainer", "/hooks.log")},
					Poststart:      []specs.Hook{hookLine("poststart", log)},
					Poststop:       []specs.Hook{hookLine("poststop", log)},
				}
			}))
		inside := runOK(t, rt, b)
		if !strings.HasPrefix(inside, "startContainer ") {
			t.Fatalf("startContainer hook did not run in the container: %q", inside)
		}
		recs := readHookLog(t, log)
		var kinds []string
		for _, r := range recs {
			kinds = append(kinds, r.kind)
			if r.state.ID != b.ID || r.state.Bundle != b.Dir || r.state.Annotations["hook-test"] != "yes" {
				t.Errorf("%s hook got state %+v", r.kind, r.state)
			}
			inHost := r.netns == hostNS
			switch r.kind {
			case "prestart", "createRuntime", "poststart", "poststop":
				if !inHost {
					t.Errorf("%s hook ran in netns %s, want the runtime's %s", r.kind, r.netns, hostNS)
				}
			case "createContainer":
				if inHost {
					t.Errorf("createContainer hook ran in the host's network namespace")
				}
			}
			if r.kind != "poststop" && r.state.Pid <= 0 {
				t.Errorf("%s hook got no pid", r.kind)
			}
		}
		want := "prestart createRuntime createContainer poststart poststop"
		if got := strings.Join(kinds, " "); got != want {
			t.Errorf("hook order %q, want %q", got, want)
		}
	})
}

// TestHookFailure: a failing createRuntime hook fails create with the
// hook's output in the error, and leaves nothing behind.
func TestHookFailure(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo hook-said-no >&2; exit 7"}}}}
		}))
		snap := testenv.TakeSnapshot(t)
		r := rt.Run(t, "create", "--bundle", b.Dir, b.ID)
		if r.Code == 0 {
			t.Fatalf("create succeeded with a failing hook")
		}
		if msg := rt.LastError(t); !strings.Contains(msg, "hook-said-no") && !strings.Contains(r.Stderr, "exit status 7") {
			t.Errorf("error does not mention the hook: %q / %q", msg, r.Stderr)
		}
		snap.AssertNoLeaks(t, rt, b, b.ID)
	})
}

// TestPoststartFailure: a failing poststart hook fails start with the
// hook's output in the error and stops the container (runtime-spec 1.3:
// "generate an error, stop the container"); delete then leaves nothing.
func TestPoststartFailure(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		rt.SkipIf(t, "runc", "runc 1.1.5 runs poststart hooks in create, not after the program started (runc 1.2 fixed it)")
		b := testenv.NewBundle(t, testenv.WithArgs("/bin/sleep", "60"), testenv.WithSpec(func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo poststart-said-no >&2; exit 5"}}}}
		}))
		snap := testenv.TakeSnapshot(t)
		c, r := rt.TryCreate(t, b)
		if r.Code != 0 {
			t.Fatalf("create: %s", r)
		}
		r = rt.Run(t, "start", c.ID)
		if r.Code == 0 {
			t.Fatalf("start succeeded with a failing poststart hook")
		}
		if msg := rt.ErrorText(t, r); !strings.Contains(msg, "poststart-said-no") && !strings.Contains(msg, "exit status 5") {
			t.Errorf("error does not mention the hook: %q", msg)
		}
		rt.WaitStatus(t, c.ID, "stopped", shortWait)
		if r := rt.Run(t, "delete", c.ID); r.Code != 0 {
			t.Fatalf("delete after the failed start: %s", r)
		}
		snap.AssertNoLeaks(t, rt, b, c.ID)
	})
}

// TestPoststopFailureWarns: a failing poststop hook does not fail delete,
// and (runtime-spec: log a warning, continue as if it had succeeded) the
// hooks after it still run and the failure is a warning in the log.
func TestPoststopFailureWarns(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		log := filepath.Join(testenv.TempDir(t, 0o755), "after.log")
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{Poststop: []specs.Hook{
				{Path: "/bin/sh", Args: []string{"sh", "-c", "echo poststop-failed >&2; exit 3"}},
				{Path: "/bin/sh", Args: []string{"sh", "-c", "echo ran > " + log}},
			}}
		}))
		c := rt.CreateStart(t, b)
		rt.MustRun(t, "kill", c.ID, "KILL")
		rt.WaitStatus(t, c.ID, "stopped", shortWait)
		if r := rt.Run(t, "delete", c.ID); r.Code != 0 {
			t.Fatalf("delete with a failing poststop hook: %s", r)
		}
		if _, _, err := rt.State(t, c.ID); err == nil {
			t.Errorf("container still there after delete")
		}
		if rt.Is("runc") {
			t.Logf("runc 1.1.5 stops at the failing poststop hook and logs an error: the rest is xrunc's")
			return
		}
		if got, err := os.ReadFile(log); err != nil || strings.TrimSpace(string(got)) != "ran" {
			t.Errorf("the poststop hook after the failing one: %q, %v", got, err)
		}
		warned := false
		for _, l := range rt.LogLines(t) {
			if l.Level == "warning" || l.Level == "warn" {
				warned = true
			}
		}
		if !warned {
			t.Errorf("no warning logged for the failing poststop hook: %v", rt.LogLines(t))
		}
	})
}
