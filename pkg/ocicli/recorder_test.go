package ocicli

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// recorder is a Spawner that runs nothing: it records each exec.Cmd as the
// Spawner receives it, writes out to the command's stdout and returns
// status. It proves the exact command lines without any runtime.
type recorder struct {
	status int
	out    string

	mu    sync.Mutex
	calls []recorded
}

type recorded struct {
	args                  []string
	stdin, stdout, stderr any // as set on the exec.Cmd
	extra                 []*os.File
	stdinData             []byte      // update: what the command would read on stdin
	process               []byte      // exec: the --process file's content
	processMode, dirMode  os.FileMode // exec: modes of that file and of its directory
	processPath           string
	pdeathsig             bool
}

func (r *recorder) Run(cmd *exec.Cmd) (int, error) {
	rec := recorded{
		args:   slices.Clone(cmd.Args),
		stdin:  cmd.Stdin,
		stdout: cmd.Stdout,
		stderr: cmd.Stderr,
		extra:  cmd.ExtraFiles,
	}
	rec.pdeathsig = cmd.SysProcAttr != nil && cmd.SysProcAttr.Pdeathsig != 0
	if i := slices.Index(cmd.Args, "--process"); i >= 0 {
		rec.processPath = cmd.Args[i+1]
		rec.process, _ = os.ReadFile(rec.processPath)
		if fi, err := os.Stat(rec.processPath); err == nil {
			rec.processMode = fi.Mode().Perm()
		}
		if fi, err := os.Stat(filepath.Dir(rec.processPath)); err == nil {
			rec.dirMode = fi.Mode().Perm()
		}
	}
	if slices.Contains(cmd.Args, "update") {
		rec.stdinData, _ = io.ReadAll(cmd.Stdin.(*os.File))
	}
	if r.out != "" {
		if _, err := cmd.Stdout.(*os.File).WriteString(r.out); err != nil {
			return -1, err
		}
	}
	r.mu.Lock()
	r.calls = append(r.calls, rec)
	r.mu.Unlock()
	return r.status, nil
}

func (r *recorder) last(t *testing.T) recorded {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		t.Fatal("no command was run")
	}
	return r.calls[len(r.calls)-1]
}

var (
	minimalGlobals = []string{"/usr/bin/rt"}
	fullGlobals    = []string{"/usr/bin/rt", "--root", "/run/rt", "--log", "/nonexistent/log.json", "--log-format", "json", "--systemd-cgroup", "--debug"}
)

func minimalRuntime(s Spawner) *Runtime { return &Runtime{Binary: "/usr/bin/rt", Spawner: s} }

func fullRuntime(s Spawner) *Runtime {
	return &Runtime{Binary: "/usr/bin/rt", Root: "/run/rt", LogFile: "/nonexistent/log.json", SystemdCgroup: true, Debug: true, Spawner: s}
}

// TestRecordedArgv: the exact argv of every command and option, with no
// global flag and with all of them.
func TestRecordedArgv(t *testing.T) {
	ctx := context.Background()
	extra1, extra2 := os.Stdin, os.Stdout // identities only; never used
	proc := &specs.Process{Args: []string{"true"}}
	tests := []struct {
		name string
		call func(*Runtime) error
		out  string   // printed by the "runtime"
		want []string // after the global flags; "FILE" stands for the --process file
	}{
		{"create", func(r *Runtime) error { return r.Create(ctx, "c1", "/b", CreateOpts{}) }, "",
			[]string{"create", "--bundle", "/b", "c1"}},
		{"create all options", func(r *Runtime) error {
			return r.Create(ctx, "c1", "/b", CreateOpts{PidFile: "/b/init.pid", ConsoleSocket: "/tmp/pty/pty.sock",
				NoPivot: true, NoNewKeyring: true, ExtraFiles: []*os.File{extra1, extra2}})
		}, "", []string{"create", "--bundle", "/b", "--pid-file", "/b/init.pid", "--console-socket", "/tmp/pty/pty.sock",
			"--no-pivot", "--no-new-keyring", "--preserve-fds", "2", "c1"}},
		{"create pid file", func(r *Runtime) error { return r.Create(ctx, "c1", "/b", CreateOpts{PidFile: "/b/init.pid"}) }, "",
			[]string{"create", "--bundle", "/b", "--pid-file", "/b/init.pid", "c1"}},
		{"start", func(r *Runtime) error { return r.Start(ctx, "c1") }, "", []string{"start", "c1"}},
		{"exec", func(r *Runtime) error { return r.Exec(ctx, "c1", proc, ExecOpts{}) }, "",
			[]string{"exec", "--process", "FILE", "c1"}},
		{"exec detach console", func(r *Runtime) error {
			return r.Exec(ctx, "c1", proc, ExecOpts{PidFile: "/b/e1.pid", ConsoleSocket: "/tmp/pty/pty.sock", Detach: true})
		}, "", []string{"exec", "--process", "FILE", "--console-socket", "/tmp/pty/pty.sock", "--detach", "--pid-file", "/b/e1.pid", "c1"}},
		{"exec pid file", func(r *Runtime) error { return r.Exec(ctx, "c1", proc, ExecOpts{PidFile: "/b/e1.pid"}) }, "",
			[]string{"exec", "--process", "FILE", "--pid-file", "/b/e1.pid", "c1"}},
		{"kill", func(r *Runtime) error { return r.Kill(ctx, "c1", 9, false) }, "", []string{"kill", "c1", "9"}},
		{"kill all", func(r *Runtime) error { return r.Kill(ctx, "c1", 15, true) }, "", []string{"kill", "--all", "c1", "15"}},
		{"delete", func(r *Runtime) error { return r.Delete(ctx, "c1", false) }, "", []string{"delete", "c1"}},
		{"delete force", func(r *Runtime) error { return r.Delete(ctx, "c1", true) }, "", []string{"delete", "--force", "c1"}},
		{"state", func(r *Runtime) error { _, err := r.State(ctx, "c1"); return err }, `{"id":"c1"}`, []string{"state", "c1"}},
		{"ps", func(r *Runtime) error { _, err := r.Ps(ctx, "c1"); return err }, "null", []string{"ps", "--format", "json", "c1"}},
		{"pause", func(r *Runtime) error { return r.Pause(ctx, "c1") }, "", []string{"pause", "c1"}},
		{"resume", func(r *Runtime) error { return r.Resume(ctx, "c1") }, "", []string{"resume", "c1"}},
		{"update", func(r *Runtime) error { return r.Update(ctx, "c1", &specs.LinuxResources{}) }, "",
			[]string{"update", "--resources", "-", "c1"}},
	}
	for _, rt := range []struct {
		name    string
		new     func(Spawner) *Runtime
		globals []string
	}{{"minimal", minimalRuntime, minimalGlobals}, {"full", fullRuntime, fullGlobals}} {
		for _, tt := range tests {
			t.Run(rt.name+"/"+tt.name, func(t *testing.T) {
				rec := &recorder{out: tt.out}
				if err := tt.call(rt.new(rec)); err != nil {
					t.Fatal(err)
				}
				got := rec.last(t).args
				if i := slices.Index(got, "--process"); i >= 0 {
					got = slices.Clone(got)
					got[i+1] = "FILE"
				}
				want := append(slices.Clone(rt.globals), tt.want...)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("argv\n got %q\nwant %q", got, want)
				}
			})
		}
	}
	t.Run("version", func(t *testing.T) {
		// --version takes no global flag (--log would create the log file)
		// and only its first line counts.
		rec := &recorder{out: "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n"}
		v, err := fullRuntime(rec).Version(ctx)
		if err != nil || v != "runc version 1.1.5+ds1" {
			t.Errorf("Version = %q, %v", v, err)
		}
		if got, want := rec.last(t).args, []string{"/usr/bin/rt", "--version"}; !reflect.DeepEqual(got, want) {
			t.Errorf("argv %q, want %q", got, want)
		}
		if _, err := fullRuntime(&recorder{out: "\n"}).Version(ctx); err == nil {
			t.Error("empty version output: no error")
		}
	})
}

// TestRecordedStdio: what each kind of command gets as stdio.
func TestRecordedStdio(t *testing.T) {
	ctx := context.Background()
	in, out, errf := os.Stdin, os.Stdout, os.Stderr // identities only
	rec := &recorder{}
	r := minimalRuntime(rec)

	// create and exec: the container's stdio.
	if err := r.Create(ctx, "c1", "/b", CreateOpts{IO: IO{Stdin: in, Stdout: out, Stderr: errf}, ExtraFiles: []*os.File{in}}); err != nil {
		t.Fatal(err)
	}
	c := rec.last(t)
	if c.stdin != any(in) || c.stdout != any(out) || c.stderr != any(errf) {
		t.Errorf("create stdio = %v %v %v, want the IO files", c.stdin, c.stdout, c.stderr)
	}
	if len(c.extra) != 1 || c.extra[0] != in {
		t.Errorf("create ExtraFiles = %v", c.extra)
	}
	if !c.pdeathsig {
		t.Error("no Pdeathsig: a runtime command would outlive the shim")
	}
	// A nil *os.File stored in the interface would be a closed fd in the
	// child: what is not given must stay an untyped nil (/dev/null).
	if err := r.Exec(ctx, "c1", &specs.Process{}, ExecOpts{IO: IO{Stdout: out}}); err != nil {
		t.Fatal(err)
	}
	c = rec.last(t)
	if c.stdin != nil || c.stdout != any(out) || c.stderr != nil {
		t.Errorf("exec stdio = %#v %#v %#v, want nil, stdout, nil", c.stdin, c.stdout, c.stderr)
	}
	// The others: one pipe (an *os.File) as stdout and stderr, stdin /dev/null.
	if err := r.Start(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	c = rec.last(t)
	if _, ok := c.stdout.(*os.File); !ok || c.stdout != c.stderr || c.stdin != nil {
		t.Errorf("start stdio = %#v %#v %#v, want nil and one *os.File twice", c.stdin, c.stdout, c.stderr)
	}
	// update: stdin is a pipe carrying the resources.
	limit := int64(42)
	if err := r.Update(ctx, "c1", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}); err != nil {
		t.Fatal(err)
	}
	if got, want := string(rec.last(t).stdinData), `{"pids":{"limit":42}}`; got != want {
		t.Errorf("update stdin = %s, want %s", got, want)
	}
}

// TestRecordedExecFile: the --process file is 0600 in a private 0700
// directory under TMPDIR, and nothing is left there, on success or failure.
func TestRecordedExecFile(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	p := &specs.Process{Args: []string{"sh", "-c", "exit 3"}, Cwd: "/", Env: []string{"PATH=/bin"}}
	for _, status := range []int{0, 255} {
		rec := &recorder{status: status}
		err := minimalRuntime(rec).Exec(context.Background(), "c1", p, ExecOpts{Detach: true})
		if (err != nil) != (status != 0) {
			t.Fatalf("status %d: err = %v", status, err)
		}
		c := rec.last(t)
		var got specs.Process
		if err := json.Unmarshal(c.process, &got); err != nil || !reflect.DeepEqual(&got, p) {
			t.Errorf("process file = %s (%v), want %+v", c.process, err, p)
		}
		if c.processMode != 0o600 || c.dirMode != 0o700 {
			t.Errorf("modes: file %o, dir %o; want 600 and 700", c.processMode, c.dirMode)
		}
		if !strings.HasPrefix(c.processPath, tmp+"/") {
			t.Errorf("process file %s not in TMPDIR %s", c.processPath, tmp)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("status %d: left behind in TMPDIR: %v", status, ents)
		}
	}
}

// TestRecordedCancelled: with a done ctx the Spawner is never called.
func TestRecordedCancelled(t *testing.T) {
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := minimalRuntime(rec).Start(ctx, "c1"); err == nil || !strings.HasPrefix(err.Error(), "start: ") {
		t.Errorf("err = %v", err)
	}
	if len(rec.calls) != 0 {
		t.Errorf("a cancelled ctx still ran %q", rec.calls[0].args)
	}
}
