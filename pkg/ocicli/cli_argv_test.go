package ocicli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Table tests of the command line each method builds and of how a
// command's result comes back, against a fake runtime.
//
// The fake runtime is a shell script written into each test's own
// directory; it keeps its state next to itself:
//
//	argv       its arguments, one a line (written by it)
//	env        its environment (written by it)
//	process    a copy of the file named by --process (written by it)
//	stdin      what it read on stdin, if "read-stdin" exists (written by it)
//	fd3        what it read from fd 3, if "read-fd3" exists (written by it)
//	log-lines  appended to the file named by --log
//	stdout     printed on stdout; stderr: printed on stderr
//	signal     it kills itself with this signal
//	exit       its exit code (default 0)
const cliFakeScript = `#!/bin/sh
d=$(dirname "$0")
printf '%s\n' "$@" > "$d/argv"
env > "$d/env"
log= proc= prev=
for a in "$@"; do
	case $prev in
	--log) log=$a ;;
	--process) proc=$a ;;
	esac
	prev=$a
done
if [ -n "$proc" ]; then cp "$proc" "$d/process"; fi
if [ -f "$d/read-stdin" ]; then cat > "$d/stdin"; fi
if [ -f "$d/read-fd3" ]; then cat <&3 > "$d/fd3"; fi
if [ -n "$log" ] && [ -f "$d/log-lines" ]; then cat "$d/log-lines" >> "$log"; fi
if [ -f "$d/stdout" ]; then cat "$d/stdout"; fi
if [ -f "$d/stderr" ]; then cat "$d/stderr" >&2; fi
if [ -f "$d/signal" ]; then kill -"$(cat "$d/signal")" $$; fi
if [ -f "$d/exit" ]; then exit "$(cat "$d/exit")"; fi
exit 0
`

// writeExecutable writes an executable without the ETXTBSY race: while the
// file is open for writing no fork may happen in this process (a child
// would hold the writable fd until its exec, and running the file
// meanwhile fails with "text file busy"). Creating fds under ForkLock's
// read lock is what the syscall package documents for that.
func writeExecutable(path, content string) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	return os.WriteFile(path, []byte(content), 0o755)
}

// cliFake is one test's view of the fake runtime.
type cliFake struct {
	dir string
	bin string // the script
}

func newCLIFake(t *testing.T) *cliFake {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "runtime")
	if err := writeExecutable(bin, cliFakeScript); err != nil {
		t.Fatal(err)
	}
	return &cliFake{dir: dir, bin: bin}
}

// set prepares the next invocation: name is one of the control files.
func (f *cliFake) set(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *cliFake) read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		t.Fatalf("the fake runtime left no %s: %v", name, err)
	}
	return string(b)
}

func (f *cliFake) ran() bool {
	_, err := os.Stat(filepath.Join(f.dir, "argv"))
	return err == nil
}

// argv is what the runtime got after argv[0].
func (f *cliFake) argv(t *testing.T) []string {
	t.Helper()
	return strings.Split(strings.TrimSuffix(f.read(t, "argv"), "\n"), "\n")
}

// runOnlySpawner is a Spawner that is not a Starter: it starts and waits
// for the command itself, as a shim's reaper-based Spawner would (minus
// the reaper).
type runOnlySpawner struct{ calls atomic.Int32 }

func (s *runOnlySpawner) Run(cmd *exec.Cmd) (int, error) {
	s.calls.Add(1)
	if err := cmd.Start(); err != nil {
		return -1, err
	}
	err := cmd.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return -1, err
	}
	return WaitStatus(cmd.ProcessState), nil
}

// starterSpawner is a Spawner that is also a Starter.
type starterSpawner struct{ runOnlySpawner }

func (s *starterSpawner) Start(cmd *exec.Cmd) (func() (int, error), error) {
	s.calls.Add(1)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() (int, error) {
		err := cmd.Wait()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			return -1, err
		}
		return WaitStatus(cmd.ProcessState), nil
	}, nil
}

type cliSpawnerKind struct {
	name string
	new  func() Spawner
}

// cliSpawnerKinds: Spawner nil (ExecSpawner), a plain Spawner and a
// Starter.
var cliSpawnerKinds = []cliSpawnerKind{
	{"nil", func() Spawner { return nil }},
	{"spawner", func() Spawner { return &runOnlySpawner{} }},
	{"starter", func() Spawner { return &starterSpawner{} }},
}

// cliSpawners runs fn with each kind of Spawner, checking that a given
// Spawner is really used.
func cliSpawners(t *testing.T, fn func(t *testing.T, sp Spawner)) {
	t.Helper()
	for _, k := range cliSpawnerKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			sp := k.new()
			fn(t, sp)
			var calls int32
			switch sp := sp.(type) {
			case *runOnlySpawner:
				calls = sp.calls.Load()
			case *starterSpawner:
				calls = sp.calls.Load()
			default:
				return
			}
			if calls == 0 {
				t.Error("the Spawner was never called")
			}
		})
	}
}

func TestCLIArgv(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	proc := &specs.Process{Args: []string{"true"}, Cwd: "/"}
	tests := []struct {
		name string
		rt   func(f *cliFake) *Runtime
		call func(r *Runtime) error
		// want is the expected argv after argv[0]; "LOG", "ROOT" and
		// "PROCESS" stand for the runtime's log file and root and the
		// process file exec got.
		want []string
	}{
		{
			name: "no global flags",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin} },
			call: func(r *Runtime) error { return r.Start(ctx, "c1") },
			want: []string{"start", "c1"},
		},
		{
			name: "all global flags before the subcommand",
			rt: func(f *cliFake) *Runtime {
				return &Runtime{Binary: f.bin, Root: filepath.Join(f.dir, "root"), LogFile: filepath.Join(f.dir, "log.json"), SystemdCgroup: true, Debug: true}
			},
			call: func(r *Runtime) error { return r.Start(ctx, "c1") },
			want: []string{"--root", "ROOT", "--log", "LOG", "--log-format", "json", "--systemd-cgroup", "--debug", "start", "c1"},
		},
		{
			name: "root only",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin, Root: filepath.Join(f.dir, "root")} },
			call: func(r *Runtime) error { return r.Pause(ctx, "c1") },
			want: []string{"--root", "ROOT", "pause", "c1"},
		},
		{
			name: "log only",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin, LogFile: filepath.Join(f.dir, "log.json")} },
			call: func(r *Runtime) error { return r.Resume(ctx, "c1") },
			want: []string{"--log", "LOG", "--log-format", "json", "resume", "c1"},
		},
		{
			name: "systemd cgroup and debug",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin, SystemdCgroup: true, Debug: true} },
			call: func(r *Runtime) error { return r.Delete(ctx, "c1", true) },
			want: []string{"--systemd-cgroup", "--debug", "delete", "--force", "c1"},
		},
		{
			name: "create minimal",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin, Root: "/r"} },
			call: func(r *Runtime) error { return r.Create(ctx, "c1", "/b", CreateOpts{}) },
			want: []string{"--root", "/r", "create", "--bundle", "/b", "c1"},
		},
		{
			name: "create with every option",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin, Root: "/r"} },
			call: func(r *Runtime) error {
				return r.Create(ctx, "c1", "/b", CreateOpts{PidFile: "/b/init.pid", ConsoleSocket: "/tmp/pty/pty.sock", NoPivot: true, NoNewKeyring: true})
			},
			want: []string{"--root", "/r", "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "--console-socket", "/tmp/pty/pty.sock", "--no-pivot", "--no-new-keyring", "c1"},
		},
		{
			name: "exec plain",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin, Root: "/r"} },
			call: func(r *Runtime) error { return r.Exec(ctx, "c1", proc, ExecOpts{}) },
			want: []string{"--root", "/r", "exec", "--process", "PROCESS", "c1"},
		},
		{
			name: "exec detached with pid file",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin, Root: "/r"} },
			call: func(r *Runtime) error { return r.Exec(ctx, "c1", proc, ExecOpts{Detach: true, PidFile: "/b/e1.pid"}) },
			want: []string{"--root", "/r", "exec", "--process", "PROCESS", "--detach", "--pid-file", "/b/e1.pid", "c1"},
		},
		{
			name: "exec with a terminal",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin} },
			call: func(r *Runtime) error {
				return r.Exec(ctx, "c1", proc, ExecOpts{ConsoleSocket: "/tmp/p/pty.sock", Detach: true, PidFile: "/b/e1.pid"})
			},
			want: []string{"exec", "--process", "PROCESS", "--console-socket", "/tmp/p/pty.sock", "--detach", "--pid-file", "/b/e1.pid", "c1"},
		},
		{
			name: "kill",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin} },
			call: func(r *Runtime) error { return r.Kill(ctx, "c1", 15, false) },
			want: []string{"kill", "c1", "15"},
		},
		{
			name: "kill all",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin} },
			call: func(r *Runtime) error { return r.Kill(ctx, "c1", 9, true) },
			want: []string{"kill", "--all", "c1", "9"},
		},
		{
			name: "delete",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin} },
			call: func(r *Runtime) error { return r.Delete(ctx, "c1", false) },
			want: []string{"delete", "c1"},
		},
		{
			name: "delete force",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin} },
			call: func(r *Runtime) error { return r.Delete(ctx, "c1", true) },
			want: []string{"delete", "--force", "c1"},
		},
		{
			name: "state",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin, Root: "/r"} },
			call: func(r *Runtime) error { _, err := r.State(ctx, "c1"); return err },
			want: []string{"--root", "/r", "state", "c1"},
		},
		{
			name: "ps",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin, Root: "/r"} },
			call: func(r *Runtime) error { _, err := r.Ps(ctx, "c1"); return err },
			want: []string{"--root", "/r", "ps", "--format", "json", "c1"},
		},
		{
			name: "update",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin} },
			call: func(r *Runtime) error { return r.Update(ctx, "c1", &specs.LinuxResources{}) },
			want: []string{"update", "--resources", "-", "c1"},
		},
		{
			name: "version has no global flags",
			rt:   func(f *cliFake) *Runtime { return &Runtime{Binary: f.bin, Root: "/r", LogFile: "/l", Debug: true} },
			call: func(r *Runtime) error { _, err := r.Version(ctx); return err },
			want: []string{"--version"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cliSpawners(t, func(t *testing.T, sp Spawner) {
				f := newCLIFake(t)
				// What state, ps and version parse.
				switch {
				case strings.HasPrefix(tt.name, "state"):
					f.set(t, "stdout", `{"id":"c1","status":"running","pid":1}`)
				case strings.HasPrefix(tt.name, "ps"):
					f.set(t, "stdout", `[1]`)
				case strings.HasPrefix(tt.name, "version"):
					f.set(t, "stdout", "fake version 1\n")
				}
				r := tt.rt(f)
				r.Spawner = sp
				if err := tt.call(r); err != nil {
					t.Fatalf("call: %v", err)
				}
				got := f.argv(t)
				want := make([]string, len(tt.want))
				for i, a := range tt.want {
					switch a {
					case "LOG":
						a = r.LogFile
					case "ROOT":
						a = r.Root
					case "PROCESS":
						if i < len(got) {
							a = got[i] // checked in TestCLIExecProcessFile
						}
					}
					want[i] = a
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("argv\n got %q\nwant %q", got, want)
				}
			})
		})
	}
}

// TestCLIExecProcessFile: exec hands the runtime the process spec as a
// JSON file (absolute path) that is gone once Exec returns, success or not.
func TestCLIExecProcessFile(t *testing.T) {
	t.Parallel()
	spec := &specs.Process{
		User: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{5}},
		Args: []string{"/bin/sh", "-c", "echo hi"},
		Env:  []string{"PATH=/bin", "A=b c"},
		Cwd:  "/work",
		Capabilities: &specs.LinuxCapabilities{
			Bounding: []string{"CAP_KILL"},
		},
		NoNewPrivileges: true,
	}
	for _, exit := range []string{"0", "1"} {
		t.Run("exit "+exit, func(t *testing.T) {
			t.Parallel()
			cliSpawners(t, func(t *testing.T, sp Spawner) {
				f := newCLIFake(t)
				f.set(t, "exit", exit)
				r := &Runtime{Binary: f.bin, Spawner: sp}
				err := r.Exec(context.Background(), "c1", spec, ExecOpts{Detach: true})
				if (err != nil) != (exit != "0") {
					t.Fatalf("Exec = %v with runtime exit %s", err, exit)
				}
				argv := f.argv(t)
				if len(argv) < 3 || argv[0] != "exec" || argv[1] != "--process" {
					t.Fatalf("argv %q", argv)
				}
				path := argv[2]
				if !filepath.IsAbs(path) {
					t.Errorf("process file %q is not absolute", path)
				}
				if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("process file %s still there after Exec (stat: %v)", path, err)
				}
				var got specs.Process
				if err := json.Unmarshal([]byte(f.read(t, "process")), &got); err != nil {
					t.Fatalf("process file is not JSON: %v", err)
				}
				if !reflect.DeepEqual(&got, spec) {
					t.Errorf("process file spec\n got %+v\nwant %+v", got, *spec)
				}
			})
		})
	}
}

func TestCLIUpdateStdin(t *testing.T) {
	t.Parallel()
	limit := int64(64 << 20)
	shares := uint64(512)
	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &limit},
		CPU:    &specs.LinuxCPU{Shares: &shares, Cpus: "0-1"},
	}
	cliSpawners(t, func(t *testing.T, sp Spawner) {
		f := newCLIFake(t)
		f.set(t, "read-stdin", "")
		r := &Runtime{Binary: f.bin, Spawner: sp}
		if err := r.Update(context.Background(), "c1", res); err != nil {
			t.Fatal(err)
		}
		var got specs.LinuxResources
		if err := json.Unmarshal([]byte(f.read(t, "stdin")), &got); err != nil {
			t.Fatalf("stdin %q is not JSON: %v", f.read(t, "stdin"), err)
		}
		if !reflect.DeepEqual(&got, res) {
			t.Errorf("resources on stdin %+v, want %+v", got, *res)
		}
	})
}

func TestCLIState(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name    string
		out     string
		want    *State
		wantErr bool
	}{
		{
			name: "runc's output",
			out: `{"ociVersion":"1.0.2-dev","id":"c1","pid":4242,"status":"running","bundle":"/run/b","rootfs":"/run/b/rootfs",` +
				`"created":"2026-01-01T00:00:00.123456789Z","owner":"","annotations":{"k":"v"}}` + "\n",
			want: &State{ID: "c1", Pid: 4242, Status: "running", Bundle: "/run/b", Rootfs: "/run/b/rootfs", Created: created, Annotations: map[string]string{"k": "v"}},
		},
		{
			name: "stopped",
			out:  `{"ociVersion":"1.0.2","id":"c2","pid":0,"status":"stopped","bundle":"/b","rootfs":"/b/rootfs","created":"2026-01-01T00:00:00.123456789Z","owner":"root"}`,
			want: &State{ID: "c2", Status: "stopped", Bundle: "/b", Rootfs: "/b/rootfs", Created: created},
		},
		{name: "not JSON", out: "container c1 is running", wantErr: true},
		{name: "empty", out: "", wantErr: true},
		{name: "bad created time", out: `{"id":"c1","created":"yesterday"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cliSpawners(t, func(t *testing.T, sp Spawner) {
				f := newCLIFake(t)
				f.set(t, "stdout", tt.out)
				r := &Runtime{Binary: f.bin, Spawner: sp}
				got, err := r.State(context.Background(), "c1")
				if tt.wantErr {
					if err == nil {
						t.Fatalf("State = %+v, want an error", got)
					}
					var rerr *Error
					if errors.As(err, &rerr) {
						t.Errorf("a decoding failure reported as a runtime failure: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if !got.Created.Equal(tt.want.Created) {
					t.Errorf("Created = %v, want %v", got.Created, tt.want.Created)
				}
				got.Created = tt.want.Created
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("State = %+v, want %+v", got, tt.want)
				}
			})
		})
	}
}

func TestCLIPs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		out     string
		want    []int
		wantErr bool
	}{
		{"several", "[12744,12800,1]\n", []int{12744, 12800, 1}, false},
		{"one", "[5]", []int{5}, false},
		{"empty array", "[]", []int{}, false},
		{"null (runc with no process)", "null", nil, false},
		{"table output", "UID PID\nroot 1\n", nil, true},
		{"strings", `["1"]`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cliSpawners(t, func(t *testing.T, sp Spawner) {
				f := newCLIFake(t)
				f.set(t, "stdout", tt.out)
				r := &Runtime{Binary: f.bin, Spawner: sp}
				got, err := r.Ps(context.Background(), "c1")
				if (err != nil) != tt.wantErr {
					t.Fatalf("Ps = %v, %v; want an error: %v", got, err, tt.wantErr)
				}
				if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Ps = %#v, want %#v", got, tt.want)
				}
			})
		})
	}
}

func cliLogLine(level, msg string) string {
	b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": "2026-01-01T00:00:00Z"})
	return string(b) + "\n"
}

// TestCLIErrorFields: a failed command's *Error, as each Spawner reports
// it: the exit status (128+signal when killed), the captured output (not
// for create and exec, whose stdio is the container's), and the last
// error logged during this very call.
func TestCLIErrorFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// old is in the log before the call.
		old, logLines, stdout, stderr, exit, signal string
		call                                        func(r *Runtime) error
		want                                        Error
	}{
		{
			name:     "kill of a missing container",
			logLines: cliLogLine("error", "container does not exist"),
			stderr:   "container does not exist\n",
			exit:     "1",
			call:     func(r *Runtime) error { return r.Kill(context.Background(), "c1", 9, false) },
			want:     Error{Command: "kill", ExitStatus: 1, Output: "container does not exist\n", LogMessage: "container does not exist"},
		},
		{
			name:     "last error of the call wins",
			logLines: cliLogLine("info", "starting") + cliLogLine("error", "first") + cliLogLine("warning", "later warning") + cliLogLine("error", "second") + cliLogLine("debug", "bye"),
			exit:     "2",
			call:     func(r *Runtime) error { return r.Start(context.Background(), "c1") },
			want:     Error{Command: "start", ExitStatus: 2, LogMessage: "second"},
		},
		{
			name:     "older errors in the log are not this call's",
			old:      cliLogLine("error", "container does not exist"),
			logLines: cliLogLine("info", "nothing wrong logged"),
			exit:     "1",
			stdout:   "some output",
			call:     func(r *Runtime) error { return r.Pause(context.Background(), "c1") },
			want:     Error{Command: "pause", ExitStatus: 1, Output: "some output"},
		},
		{
			name: "older errors, nothing logged now",
			old:  cliLogLine("error", "old failure") + cliLogLine("error", "older failure"),
			exit: "3",
			call: func(r *Runtime) error { return r.Resume(context.Background(), "c1") },
			want: Error{Command: "resume", ExitStatus: 3},
		},
		{
			name:     "create: output not captured",
			logLines: cliLogLine("error", `unable to start container process: exec: "nope": executable file not found in $PATH`),
			stdout:   "goes to the container's stdout",
			exit:     "1",
			call:     func(r *Runtime) error { return r.Create(context.Background(), "c1", "/b", CreateOpts{}) },
			want:     Error{Command: "create", ExitStatus: 1, LogMessage: `unable to start container process: exec: "nope": executable file not found in $PATH`},
		},
		{
			name:   "exec: output not captured",
			stderr: "goes to the process's stderr",
			exit:   "5",
			call: func(r *Runtime) error {
				return r.Exec(context.Background(), "c1", &specs.Process{Args: []string{"false"}, Cwd: "/"}, ExecOpts{})
			},
			want: Error{Command: "exec", ExitStatus: 5},
		},
		{
			name:   "killed by a signal",
			signal: "KILL",
			call:   func(r *Runtime) error { return r.Start(context.Background(), "c1") },
			want:   Error{Command: "start", ExitStatus: 137},
		},
		{
			name:     "terminated, with output",
			signal:   "TERM",
			stdout:   "partial",
			logLines: cliLogLine("error", "interrupted"),
			call:     func(r *Runtime) error { return r.Delete(context.Background(), "c1", false) },
			want:     Error{Command: "delete", ExitStatus: 143, Output: "partial", LogMessage: "interrupted"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cliSpawners(t, func(t *testing.T, sp Spawner) {
				f := newCLIFake(t)
				logFile := filepath.Join(f.dir, "log.json")
				if tt.old != "" {
					if err := os.WriteFile(logFile, []byte(tt.old), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				for name, content := range map[string]string{"log-lines": tt.logLines, "stdout": tt.stdout, "stderr": tt.stderr, "exit": tt.exit, "signal": tt.signal} {
					if content != "" {
						f.set(t, name, content)
					}
				}
				r := &Runtime{Binary: f.bin, LogFile: logFile, Spawner: sp}
				err := tt.call(r)
				var rerr *Error
				if !errors.As(err, &rerr) {
					t.Fatalf("error %v (%T), want *Error", err, err)
				}
				if *rerr != tt.want {
					t.Errorf("Error = %#v\n         want %#v", *rerr, tt.want)
				}
			})
		})
	}
}

// TestCLIIsNotFound: runc's wordings for a container or process that is
// gone, as the runtime logs or prints them, are NotFound; others are not.
func TestCLIIsNotFound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		msg  string
		want bool
	}{
		{"container does not exist", true},
		{"container not running", true},
		{"no such process", true},
		{"process already finished", true},
		{"container with given ID already exists", false},
		{"cannot start a container that has stopped", false},
		{"unable to freeze: permission denied", false},
		{"", false},
	}
	for _, tt := range tests {
		for _, where := range []string{"log", "stderr"} {
			t.Run(where+": "+tt.msg, func(t *testing.T) {
				t.Parallel()
				f := newCLIFake(t)
				logFile := filepath.Join(f.dir, "log.json")
				if tt.msg != "" {
					if where == "log" {
						f.set(t, "log-lines", cliLogLine("error", tt.msg))
					} else {
						f.set(t, "stderr", fmt.Sprintf("time=\"2026-01-01T00:00:00Z\" level=error msg=%q\n", tt.msg))
					}
				}
				f.set(t, "exit", "1")
				r := &Runtime{Binary: f.bin, LogFile: logFile}
				err := r.Kill(context.Background(), "c1", 9, false)
				if err == nil {
					t.Fatal("Kill succeeded")
				}
				if got := IsNotFound(err); got != tt.want {
					t.Errorf("IsNotFound(%v) = %v, want %v", err, got, tt.want)
				}
			})
		}
	}
}

func TestCLISpawnerError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	f := newCLIFake(t)
	r := &Runtime{Binary: f.bin, Spawner: cliSpawnerFunc(func(*exec.Cmd) (int, error) { return -1, boom })}
	err := r.Start(context.Background(), "c1")
	if !errors.Is(err, boom) {
		t.Fatalf("Start = %v, want it to wrap the Spawner's error", err)
	}
	var rerr *Error
	if errors.As(err, &rerr) {
		t.Errorf("a command that did not run reported as *Error: %v", err)
	}
	if IsNotFound(err) {
		t.Error("IsNotFound of a spawn failure")
	}
}

type cliSpawnerFunc func(*exec.Cmd) (int, error)

func (f cliSpawnerFunc) Run(cmd *exec.Cmd) (int, error) { return f(cmd) }

func TestCLIBadBinary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		bin  func(t *testing.T) string
	}{
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "no-such-runtime") }},
		{"relative", func(t *testing.T) string { return "runc" }},
		{"not executable", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "runtime")
			if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, k := range cliSpawnerKinds {
				r := &Runtime{Binary: tt.bin(t), Spawner: k.new()}
				err := r.Start(context.Background(), "c1")
				if err == nil {
					t.Fatalf("%s: Start succeeded", k.name)
				}
				var rerr *Error
				if errors.As(err, &rerr) {
					t.Errorf("%s: reported as a runtime failure: %#v", k.name, rerr)
				}
				if !strings.HasPrefix(err.Error(), "start: ") {
					t.Errorf("%s: error %q does not name the command", k.name, err)
				}
			}
		})
	}
}

// TestCLICancelledContext: nothing runs once ctx is done.
func TestCLICancelledContext(t *testing.T) {
	t.Parallel()
	f := newCLIFake(t)
	r := &Runtime{Binary: f.bin}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"start":  func() error { return r.Start(ctx, "c1") },
		"create": func() error { return r.Create(ctx, "c1", "/b", CreateOpts{}) },
		"exec":   func() error { return r.Exec(ctx, "c1", &specs.Process{Args: []string{"true"}}, ExecOpts{}) },
		"kill":   func() error { return r.Kill(ctx, "c1", 9, true) },
		"delete": func() error { return r.Delete(ctx, "c1", true) },
		"state":  func() error { _, err := r.State(ctx, "c1"); return err },
		"ps":     func() error { _, err := r.Ps(ctx, "c1"); return err },
		"update": func() error { return r.Update(ctx, "c1", &specs.LinuxResources{}) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled", name, err)
		}
	}
	if f.ran() {
		t.Errorf("the runtime ran with a cancelled context: %q", f.argv(t))
	}
}

// TestCLIEnvironment: NOTIFY_SOCKET (systemd's, for the daemon) never
// reaches the runtime; the rest of the environment does. Not parallel:
// it sets the environment.
func TestCLIEnvironment(t *testing.T) {
	for _, notify := range []bool{true, false} {
		if notify {
			t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
		} else {
			os.Unsetenv("NOTIFY_SOCKET") // restored by the Setenv above
		}
		t.Setenv("XSTACK_OCICLI_TEST_KEEP", "kept")
		for _, k := range cliSpawnerKinds {
			sp := k.new()
			f := newCLIFake(t)
			r := &Runtime{Binary: f.bin, Spawner: sp}
			if err := r.Start(context.Background(), "c1"); err != nil {
				t.Fatal(err)
			}
			var kept bool
			for _, kv := range strings.Split(f.read(t, "env"), "\n") {
				if strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
					t.Errorf("spawner %s: the runtime got %s", k.name, kv)
				}
				if kv == "XSTACK_OCICLI_TEST_KEEP=kept" {
					kept = true
				}
			}
			if !kept {
				t.Errorf("spawner %s (NOTIFY_SOCKET set: %v): the runtime did not get the rest of the environment", k.name, notify)
			}
		}
	}
}

// TestCLIIOIsStdio: create and exec give the runtime the IO files as its
// stdio (and capture nothing).
func TestCLIIOIsStdio(t *testing.T) {
	t.Parallel()
	calls := []struct {
		name string
		call func(r *Runtime, o IO) error
	}{
		{"create", func(r *Runtime, o IO) error {
			return r.Create(context.Background(), "c1", "/b", CreateOpts{IO: o})
		}},
		{"exec", func(r *Runtime, o IO) error {
			return r.Exec(context.Background(), "c1", &specs.Process{Args: []string{"true"}, Cwd: "/"}, ExecOpts{IO: o, Detach: true})
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cliSpawners(t, func(t *testing.T, sp Spawner) {
				f := newCLIFake(t)
				f.set(t, "read-stdin", "")
				f.set(t, "stdout", "to stdout\n")
				f.set(t, "stderr", "to stderr\n")
				dir := t.TempDir()
				stdin := cliOpenWith(t, filepath.Join(dir, "in"), "input for the runtime\n")
				stdout := cliCreate(t, filepath.Join(dir, "out"))
				stderr := cliCreate(t, filepath.Join(dir, "err"))
				r := &Runtime{Binary: f.bin, Spawner: sp}
				if err := c.call(r, IO{Stdin: stdin, Stdout: stdout, Stderr: stderr}); err != nil {
					t.Fatal(err)
				}
				if got := f.read(t, "stdin"); got != "input for the runtime\n" {
					t.Errorf("the runtime read %q on stdin", got)
				}
				if got := cliReadFile(t, stdout.Name()); got != "to stdout\n" {
					t.Errorf("stdout file has %q", got)
				}
				if got := cliReadFile(t, stderr.Name()); got != "to stderr\n" {
					t.Errorf("stderr file has %q", got)
				}
			})
		})
	}
}

// TestCLIIOSameFile: one file for stdout and stderr (file:// logging).
func TestCLIIOSameFile(t *testing.T) {
	t.Parallel()
	f := newCLIFake(t)
	f.set(t, "stdout", "out\n")
	f.set(t, "stderr", "err\n")
	out := cliCreate(t, filepath.Join(t.TempDir(), "log"))
	r := &Runtime{Binary: f.bin}
	if err := r.Create(context.Background(), "c1", "/b", CreateOpts{IO: IO{Stdout: out, Stderr: out}}); err != nil {
		t.Fatal(err)
	}
	if got := cliReadFile(t, out.Name()); got != "out\nerr\n" {
		t.Errorf("log file has %q, want stdout then stderr", got)
	}
}

// TestCLINilIO: nil IO files are /dev/null: stdin reads EOF at once.
func TestCLINilIO(t *testing.T) {
	t.Parallel()
	f := newCLIFake(t)
	f.set(t, "read-stdin", "")
	f.set(t, "stdout", "dropped")
	r := &Runtime{Binary: f.bin}
	done := make(chan error, 1)
	go func() { done <- r.Create(context.Background(), "c1", "/b", CreateOpts{IO: IO{}}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("create with nil IO blocked on stdin")
	}
	if got := f.read(t, "stdin"); got != "" {
		t.Errorf("the runtime read %q from a nil stdin", got)
	}
}

// TestCLIExtraFiles: create passes extra files as fds 3.. with
// --preserve-fds N.
func TestCLIExtraFiles(t *testing.T) {
	t.Parallel()
	cliSpawners(t, func(t *testing.T, sp Spawner) {
		f := newCLIFake(t)
		f.set(t, "read-fd3", "")
		extra := cliOpenWith(t, filepath.Join(t.TempDir(), "extra"), "from fd 3")
		r := &Runtime{Binary: f.bin, Spawner: sp}
		if err := r.Create(context.Background(), "c1", "/b", CreateOpts{ExtraFiles: []*os.File{extra}}); err != nil {
			t.Fatal(err)
		}
		if got, want := f.argv(t), []string{"create", "--bundle", "/b", "--preserve-fds", "1", "c1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("argv %q, want %q", got, want)
		}
		if got := f.read(t, "fd3"); got != "from fd 3" {
			t.Errorf("the runtime read %q on fd 3", got)
		}
	})
}

// TestCLICapturedOutput: commands without IO return stdout and stderr
// combined.
func TestCLICapturedOutput(t *testing.T) {
	t.Parallel()
	cliSpawners(t, func(t *testing.T, sp Spawner) {
		f := newCLIFake(t)
		f.set(t, "stdout", "out;")
		f.set(t, "stderr", "err")
		f.set(t, "exit", "1")
		r := &Runtime{Binary: f.bin, Spawner: sp}
		err := r.Pause(context.Background(), "c1")
		var rerr *Error
		if !errors.As(err, &rerr) || rerr.Output != "out;err" {
			t.Fatalf("Pause = %#v, want Output %q", err, "out;err")
		}
	})
}

func cliOpenWith(t *testing.T, path, content string) *os.File {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func cliCreate(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func cliReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
