package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestVersion: `--version` prints "<name> version X" first, then a "spec:"
// line with the OCI spec version (go-runc parses both).
func TestVersion(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		for _, flag := range []string{"--version", "-v"} {
			r := rt.Exec(t, testenv.Opts{NoGlobal: true}, flag)
			if r.Code != 0 {
				t.Fatalf("%s", r)
			}
			lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
			name := filepath.Base(rt.Path)
			re := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + ` version [0-9][^ ]*$`)
			if !re.MatchString(lines[0]) {
				t.Errorf("%s: first line %q does not match %s", flag, lines[0], re)
			}
			spec := regexp.MustCompile(`(?m)^spec: 1\.[0-9]+\.[0-9]+`)
			if !spec.MatchString(r.Stdout) {
				t.Errorf("%s: no \"spec: 1.x.y\" line in %q", flag, r.Stdout)
			}
		}
	})
}

// TestRootFlag: --root chooses the state directory; another root does not
// see the container.
func TestRootFlag(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t)
		c := rt.Create(t, b)
		st, err := os.Stat(filepath.Join(rt.Root, c.ID, "state.json"))
		if err != nil || !st.Mode().IsRegular() {
			t.Fatalf("no state.json in %s/%s: %v", rt.Root, c.ID, err)
		}
		other := testenv.TempDir(t, 0o700)
		r := rt.Exec(t, testenv.Opts{NoGlobal: true}, "--root", other, "state", c.ID)
		if r.Code != 1 || !strings.Contains(r.Stderr, "container does not exist") {
			t.Errorf("state in another root: want exit 1 \"container does not exist\", got %s", r)
		}
		r = rt.Exec(t, testenv.Opts{NoGlobal: true}, "--root", other, "list", "-q")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "" {
			t.Errorf("list in another root: want empty, got %s", r)
		}
		// --root=DIR and the single-dash -root DIR are the same flag.
		for _, args := range [][]string{{"--root=" + rt.Root}, {"-root", rt.Root}, {"--root", rt.Root}} {
			r := rt.Exec(t, testenv.Opts{NoGlobal: true}, append(args, "list", "-q")...)
			if r.Code != 0 || strings.TrimSpace(r.Stdout) != c.ID {
				t.Errorf("%q list -q: want %q, got %s", args, c.ID, r)
			}
		}
	})
}

// TestLogJSON: --log FILE --log-format json appends one JSON object per
// line {"level","msg","time"} with an RFC3339 time, the way containerd
// reads it; stderr carries the message too.
func TestLogJSON(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		const old = `{"level":"info","msg":"line from before","time":"2020-01-01T00:00:00Z"}` + "\n"
		if err := os.WriteFile(rt.LogFile, []byte(old), 0o644); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			r := rt.Run(t, "state", "no-such-container")
			if r.Code != 1 {
				t.Fatalf("want exit 1, got %s", r)
			}
			if !strings.Contains(r.Stderr, "container does not exist") {
				t.Errorf("stderr %q lacks the error", r.Stderr)
			}
		}
		lines := rt.LogLines(t)
		if len(lines) < 3 || lines[0].Msg != "line from before" {
			t.Fatalf("log not appended to: %q", lines)
		}
		var errs int
		for _, l := range lines[1:] {
			if l.Err != nil {
				t.Errorf("log line %q is not JSON: %v", l.Raw, l.Err)
				continue
			}
			var m map[string]any
			json.Unmarshal([]byte(l.Raw), &m)
			for _, k := range []string{"level", "msg", "time"} {
				if _, ok := m[k]; !ok {
					t.Errorf("log line %q has no %q", l.Raw, k)
				}
			}
			if _, err := time.Parse(time.RFC3339, l.Time); err != nil {
				t.Errorf("log time %q is not RFC3339: %v", l.Time, err)
			}
			if l.Level == "error" {
				errs++
				if l.Msg != "container does not exist" {
					t.Errorf("error msg %q, want \"container does not exist\"", l.Msg)
				}
			}
		}
		if errs != 2 {
			t.Errorf("want 2 error lines, got %d: %q", errs, lines)
		}
	})
}

// TestLogText: --log-format text writes logfmt lines
// time="..." level=error msg="...".
func TestLogText(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		logf := filepath.Join(testenv.TempDir(t, 0o700), "text.log")
		for _, args := range [][]string{
			{"--root", rt.Root, "--log", logf, "--log-format", "text", "state", "nope"},
			{"--root", rt.Root, "--log", logf, "state", "nope"}, // text is the default
		} {
			r := rt.Exec(t, testenv.Opts{NoGlobal: true}, args...)
			if r.Code != 1 {
				t.Fatalf("want exit 1, got %s", r)
			}
		}
		b, err := os.ReadFile(logf)
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`^time="([^"]+)" level=error msg="container does not exist"$`)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 {
			t.Fatalf("want 2 log lines, got %q", b)
		}
		for _, l := range lines {
			m := re.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("text log line %q does not match %s", l, re)
				continue
			}
			if _, err := time.Parse(time.RFC3339, m[1]); err != nil {
				t.Errorf("time %q: %v", m[1], err)
			}
		}
		// Without --log, errors go to stderr in the chosen format.
		r := rt.Exec(t, testenv.Opts{NoGlobal: true}, "--root", rt.Root, "state", "nope")
		if !re.MatchString(strings.TrimSpace(r.Stderr)) {
			t.Errorf("stderr without --log: %q does not match %s", r.Stderr, re)
		}
		r = rt.Exec(t, testenv.Opts{NoGlobal: true}, "--root", rt.Root, "--log-format", "json", "state", "nope")
		l, err := testenv.ReadLogString(r.Stderr)
		if err != nil || len(l) != 1 || l[0].Level != "error" || l[0].Msg != "container does not exist" {
			t.Errorf("stderr with --log-format json: %q (%v)", r.Stderr, err)
		}
	})
}

// TestSystemdCgroup: there is no systemd on this machine, so
// --systemd-cgroup must fail clearly and leave nothing behind.
func TestSystemdCgroup(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd is running on this host: the test needs a host without systemd")
	}
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t)
		b.Edit(t, func(s *specs.Spec) { s.Linux.CgroupsPath = "system.slice:xstack-it:" + b.ID })
		snap := testenv.TakeSnapshot(t)
		r := rt.Exec(t, testenv.Opts{NoGlobal: true},
			"--root", rt.Root, "--log", rt.LogFile, "--log-format", "json", "--systemd-cgroup",
			"create", "--bundle", b.Dir, b.ID)
		if r.Code != 1 {
			t.Fatalf("want exit 1, got %s", r)
		}
		if msg := rt.ErrorText(t, r); !strings.Contains(msg, "systemd") {
			t.Errorf("error does not mention systemd: %q", msg)
		}
		snap.AssertNoLeaks(t, rt, b, b.ID)
		if len(testenv.CgroupDirsUnder("/system.slice/xstack-it-"+b.ID+".scope")) != 0 {
			t.Errorf("a systemd-style cgroup was created")
		}
	})
}

// TestFlagSyntax: urfave/cli syntax: --flag value, --flag=value, the
// single-dash long form -flag value, and short aliases.
func TestFlagSyntax(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		for _, form := range [][]string{
			{"--bundle", "B"}, {"--bundle=B"}, {"-bundle", "B"}, {"-b", "B"}, {"-b=B"},
		} {
			b := testenv.NewBundle(t)
			var args []string
			for _, a := range form {
				args = append(args, strings.ReplaceAll(a, "B", b.Dir))
			}
			pidFile := filepath.Join(b.Dir, "pid")
			r := rt.Run(t, append(append([]string{"create"}, args...), "--pid-file="+pidFile, b.ID)...)
			if r.Code != 0 {
				t.Errorf("create %q: %s\n%s", form, r, rt.LastError(t))
				continue
			}
			st := rt.MustState(t, b.ID)
			if st.Bundle != b.Dir || st.Status != "created" {
				t.Errorf("create %q: state %+v", form, st)
			}
			if _, err := os.Stat(pidFile); err != nil {
				t.Errorf("--pid-file=: %v", err)
			}
			rt.MustRun(t, "delete", "-f", b.ID)
		}
		for _, form := range [][]string{
			{"--format", "json"}, {"--format=json"}, {"-format", "json"}, {"-f", "json"}, {"-f=json"},
		} {
			r := rt.Run(t, append([]string{"list"}, form...)...)
			if r.Code != 0 || !strings.HasPrefix(strings.TrimSpace(r.Stdout), "[") && strings.TrimSpace(r.Stdout) != "null" {
				t.Errorf("list %q: want JSON, got %s", form, r)
			}
		}
		// Boolean flags: --force, -f, --force=true.
		for _, form := range []string{"--force", "-f", "--force=true"} {
			b := testenv.NewBundle(t)
			c := rt.CreateStart(t, b)
			if r := rt.Run(t, "delete", form, c.ID); r.Code != 0 {
				t.Errorf("delete %s: %s", form, r)
			}
			if _, _, err := rt.State(t, c.ID); err == nil {
				t.Errorf("delete %s: container still exists", form)
			}
		}
		// An unknown flag is an error, not ignored.
		if r := rt.Run(t, "list", "--no-such-flag"); r.Code == 0 {
			t.Errorf("unknown flag accepted: %s", r)
		}
	})
}
