package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultTimeout bounds every runtime command started by Run.
const DefaultTimeout = 60 * time.Second

// Runtimes returns the runtime names to test, from $XSTACK_RUNTIMES.
func Runtimes() []string {
	v := os.Getenv("XSTACK_RUNTIMES")
	if strings.TrimSpace(v) == "" {
		v = "runc,xrunc"
	}
	var out []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// Runtime is one OCI runtime binary under test, with a private state
// directory (--root) and JSON log file (--log) for one test.
type Runtime struct {
	Name    string // runtime name as given in XSTACK_RUNTIMES ("runc", "xrunc")
	Path    string // absolute path of the binary
	Root    string // --root state directory, private to the test
	LogFile string // --log file, JSON format

	// mu serializes the cleanup of other tests (deleteBundles) with
	// this runtime's own cleanup; closed is set once its root is gone,
	// so nothing runs the runtime on it again (runc would recreate it).
	mu     sync.Mutex
	closed bool
}

// ResolveRuntime finds the binary for a runtime name. A missing xrunc is an
// error that says how to build it.
func ResolveRuntime(name string) (string, error) {
	switch {
	case name == "xrunc":
		p := filepath.Join(BinDir(), "xrunc")
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			return "", fmt.Errorf("bin/xrunc not built: run make build (looked for %s)", p)
		}
		return p, nil
	case filepath.IsAbs(name):
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("runtime %s: %w", name, err)
		}
		return name, nil
	default:
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("runtime %q not found in PATH: %w", name, err)
		}
		return filepath.Abs(p)
	}
}

// NewRuntime sets up runtime name for test t: a private --root and --log.
// The containers left in that root are deleted with --force at cleanup.
// A runtime that cannot be found fails the test.
func NewRuntime(t testing.TB, name string) *Runtime {
	t.Helper()
	RequireRoot(t)
	p, err := ResolveRuntime(name)
	if err != nil {
		t.Fatal(err)
	}
	r := reg(t)
	dir := TempDir(t, 0o755)
	rt := &Runtime{
		Name:    name,
		Path:    p,
		Root:    filepath.Join(dir, "state"),
		LogFile: filepath.Join(dir, "log.json"),
	}
	r.mu.Lock()
	r.runtimes = append(r.runtimes, rt)
	r.mu.Unlock()
	liveMu.Lock()
	liveRuntimes[rt] = true
	liveMu.Unlock()
	return rt
}

// ForEachRuntime runs fn as one subtest per runtime in XSTACK_RUNTIMES,
// named after the runtime.
func ForEachRuntime(t *testing.T, fn func(t *testing.T, rt *Runtime)) {
	t.Helper()
	RequireRoot(t)
	for _, name := range Runtimes() {
		t.Run(filepath.Base(name), func(t *testing.T) {
			rt := NewRuntime(t, name)
			fn(t, rt)
		})
	}
}

// Is reports whether this is the runtime called name ("runc", "xrunc").
func (rt *Runtime) Is(name string) bool { return filepath.Base(rt.Name) == name }

// SkipIf skips the test for the runtime called name, printing why. Use it
// only for documented limitations of a reference runtime.
func (rt *Runtime) SkipIf(t testing.TB, name, reason string) {
	t.Helper()
	if rt.Is(name) {
		t.Skipf("skipped for %s: %s", name, reason)
	}
}

// GlobalArgs are the flags passed before every subcommand, as containerd
// passes them.
func (rt *Runtime) GlobalArgs() []string {
	return []string{"--root", rt.Root, "--log", rt.LogFile, "--log-format", "json"}
}

// Result is the outcome of one runtime command.
type Result struct {
	Args   []string
	Stdout string
	Stderr string
	Code   int // exit code; -1 if it did not exit normally
	Pid    int
}

func (r Result) String() string {
	return fmt.Sprintf("%q: exit %d\nstdout: %s\nstderr: %s", r.Args, r.Code, r.Stdout, r.Stderr)
}

// Combined is stdout and stderr together.
func (r Result) Combined() string { return r.Stdout + r.Stderr }

// Opts tunes Exec.
type Opts struct {
	NoGlobal   bool          // do not prepend GlobalArgs
	Stdin      io.Reader     // default: /dev/null
	Stdout     *os.File      // default: a temp file read back into Result
	Stderr     *os.File      // default: a temp file read back into Result
	ExtraFiles []*os.File    // fds 3.. of the runtime
	Env        []string      // extra environment entries
	Dir        string        // working directory
	Timeout    time.Duration // default DefaultTimeout
}

// Run runs the runtime with the global flags and args and returns its
// output and exit code.
func (rt *Runtime) Run(t testing.TB, args ...string) Result {
	t.Helper()
	return rt.Exec(t, Opts{}, args...)
}

// MustRun is Run that fails the test unless the command exits 0.
func (rt *Runtime) MustRun(t testing.TB, args ...string) Result {
	t.Helper()
	r := rt.Run(t, args...)
	if r.Code != 0 {
		t.Fatalf("%s\nlast log error: %s", r, rt.LastError(t))
	}
	return r
}

// RunBundle runs the bundle in the foreground with `run`, the container's
// stdio being the command's.
func (rt *Runtime) RunBundle(t testing.TB, b *Bundle, extra ...string) Result {
	t.Helper()
	b.Save(t)
	args := append([]string{"run", "--bundle", b.Dir}, extra...)
	return rt.Run(t, append(args, b.ID)...)
}

// ExecIn runs `exec [flags...] id cmd...`.
func (rt *Runtime) ExecIn(t testing.TB, id string, flags []string, cmd ...string) Result {
	t.Helper()
	args := append(append([]string{"exec"}, flags...), id)
	return rt.Run(t, append(args, cmd...)...)
}

// Exec runs the runtime with options. Output goes through files, never
// pipes: a container process may inherit the runtime's stdio and keep it
// open long after the runtime exits.
func (rt *Runtime) Exec(t testing.TB, o Opts, args ...string) Result {
	t.Helper()
	full := args
	if !o.NoGlobal {
		full = append(rt.GlobalArgs(), args...)
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rt.Path, full...)
	cmd.Stdin = o.Stdin
	cmd.ExtraFiles = o.ExtraFiles
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), o.Env...)
	var outF, errF *os.File
	var err error
	if o.Stdout != nil {
		cmd.Stdout = o.Stdout
	} else {
		if outF, err = os.CreateTemp("", "xit-out-"); err != nil {
			t.Fatal(err)
		}
		defer outF.Close()
		os.Remove(outF.Name())
		cmd.Stdout = outF
	}
	if o.Stderr != nil {
		cmd.Stderr = o.Stderr
	} else {
		if errF, err = os.CreateTemp("", "xit-err-"); err != nil {
			t.Fatal(err)
		}
		defer errF.Close()
		os.Remove(errF.Name())
		cmd.Stderr = errF
	}
	res := Result{Args: append([]string{filepath.Base(rt.Path)}, full...), Code: -1}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", rt.Path, err)
	}
	res.Pid = cmd.Process.Pid
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		res.Code = 0
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	default:
		t.Errorf("wait %s: %v", rt.Path, err)
	}
	if ctx.Err() != nil {
		t.Errorf("%s %q timed out after %v", rt.Name, args, timeout)
	}
	read := func(f *os.File) string {
		if f == nil {
			return ""
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
		return string(b)
	}
	res.Stdout, res.Stderr = read(outF), read(errF)
	return res
}

// State is the runtime's `state` output.
type State struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     string            `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations"`
	// Raw is the decoded object, to check which fields are present.
	Raw map[string]any `json:"-"`
}

// CreatedTime parses Created as RFC3339Nano.
func (s State) CreatedTime() (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s.Created)
}

// DecodeState decodes one state object.
func DecodeState(b []byte) (State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s.Raw); err != nil {
		return s, err
	}
	return s, nil
}

// State runs `state id`. The error is non-nil when the command fails.
func (rt *Runtime) State(t testing.TB, id string) (State, Result, error) {
	t.Helper()
	r := rt.Run(t, "state", id)
	if r.Code != 0 {
		return State{}, r, fmt.Errorf("state %s: exit %d: %s", id, r.Code, strings.TrimSpace(r.Stderr))
	}
	s, err := DecodeState([]byte(r.Stdout))
	if err != nil {
		return s, r, fmt.Errorf("state %s: bad JSON %q: %w", id, r.Stdout, err)
	}
	return s, r, nil
}

// MustState is State that fails the test on error.
func (rt *Runtime) MustState(t testing.TB, id string) State {
	t.Helper()
	s, _, err := rt.State(t, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// WaitStatus polls `state id` until its status is want.
func (rt *Runtime) WaitStatus(t testing.TB, id, want string, timeout time.Duration) State {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last State
	var lastErr error
	for {
		last, _, lastErr = rt.State(t, id)
		if lastErr == nil && last.Status == want {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: status %q (err %v), want %q after %v", id, last.Status, lastErr, want, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LogLine is one line of the JSON log.
type LogLine struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
	Time  string `json:"time"`
	Raw   string `json:"-"`
	Err   error  `json:"-"` // decoding error, if the line is not valid JSON
}

// ReadLog decodes a JSON-lines log file.
func ReadLog(path string) ([]LogLine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []LogLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		var l LogLine
		l.Err = json.Unmarshal([]byte(line), &l)
		l.Raw = line
		out = append(out, l)
	}
	return out, sc.Err()
}

// LogLines returns the lines of this runtime's JSON log (none if absent).
func (rt *Runtime) LogLines(t testing.TB) []LogLine {
	t.Helper()
	l, err := ReadLog(rt.LogFile)
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("read log: %v", err)
	}
	return l
}

// LastError is the msg of the last level=error line of the JSON log, the
// way containerd reads it.
func (rt *Runtime) LastError(t testing.TB) string {
	t.Helper()
	lines := rt.LogLines(t)
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i].Err == nil && lines[i].Level == "error" {
			return lines[i].Msg
		}
	}
	return ""
}

// ErrorText is the last logged error plus stderr of r, for matching key
// words of a failure.
func (rt *Runtime) ErrorText(t testing.TB, r Result) string {
	t.Helper()
	return rt.LastError(t) + "\n" + r.Stderr
}

// deleteAll force-deletes every container in this runtime's root.
func (rt *Runtime) deleteAll() {
	ents, err := os.ReadDir(rt.Root)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, rt.Path, append(rt.GlobalArgs(), "delete", "--force", e.Name())...)
		_ = cmd.Run()
		cancel()
	}
}

// deleteBundles force-deletes the containers whose bundle is one of dirs.
func (rt *Runtime) deleteBundles(dirs []string) {
	if len(dirs) == 0 {
		return
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return
	}
	ents, err := os.ReadDir(rt.Root)
	if err != nil {
		return
	}
	for _, e := range ents {
		// state.json's "config.labels" holds "bundle=DIR" in runc; do
		// not rely on a runtime's private format: ask `state`.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, rt.Path, "--root", rt.Root, "state", e.Name()).Output()
		cancel()
		bundle := ""
		if err == nil {
			if st, err := DecodeState(out); err == nil {
				bundle = st.Bundle
			}
		}
		for _, d := range dirs {
			if bundle != "" && bundle == d {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				exec.CommandContext(ctx, rt.Path, append(rt.GlobalArgs(), "delete", "--force", e.Name())...).Run()
				cancel()
			}
		}
	}
}

// Container is a container created by the test through the helpers, whose
// stdio goes to files in its bundle.
type Container struct {
	ID     string
	Bundle *Bundle
	RT     *Runtime
	Stdout string // path of the container's stdout file
	Stderr string // path of the container's stderr file
	Create Result // the create (or run -d) command's result
}

// Output returns the content of the container's stdout file.
func (c *Container) Output(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(c.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ErrOutput returns the content of the container's stderr file.
func (c *Container) ErrOutput(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(c.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Pid is the container init's host pid from `state`.
func (c *Container) Pid(t testing.TB) int {
	t.Helper()
	return c.RT.MustState(t, c.ID).Pid
}

// TryCreate runs `create --bundle B [extra...] ID` with the container's
// stdio going to files in the bundle directory, and returns the result
// without failing the test.
func (rt *Runtime) TryCreate(t testing.TB, b *Bundle, extra ...string) (*Container, Result) {
	t.Helper()
	return rt.startContainer(t, b, "create", extra)
}

// Create is TryCreate that fails the test unless create exits 0.
func (rt *Runtime) Create(t testing.TB, b *Bundle, extra ...string) *Container {
	t.Helper()
	c, r := rt.TryCreate(t, b, extra...)
	if r.Code != 0 {
		t.Fatalf("%s\nlast log error: %s", r, rt.LastError(t))
	}
	return c
}

// RunDetached runs `run -d --bundle B [extra...] ID` and fails the test
// unless it exits 0.
func (rt *Runtime) RunDetached(t testing.TB, b *Bundle, extra ...string) *Container {
	t.Helper()
	c, r := rt.startContainer(t, b, "run", append([]string{"-d"}, extra...))
	if r.Code != 0 {
		t.Fatalf("%s\nlast log error: %s", r, rt.LastError(t))
	}
	return c
}

// CreateStart creates and starts a container and fails the test on error.
func (rt *Runtime) CreateStart(t testing.TB, b *Bundle, extra ...string) *Container {
	t.Helper()
	c := rt.Create(t, b, extra...)
	rt.MustRun(t, "start", c.ID)
	return c
}

func (rt *Runtime) startContainer(t testing.TB, b *Bundle, verb string, extra []string) (*Container, Result) {
	t.Helper()
	b.Save(t)
	c := &Container{
		ID:     b.ID,
		Bundle: b,
		RT:     rt,
		Stdout: filepath.Join(b.Dir, fmt.Sprintf("%s-%s.out", b.ID, RandHex(3))),
		Stderr: filepath.Join(b.Dir, fmt.Sprintf("%s-%s.err", b.ID, RandHex(3))),
	}
	of, err := os.Create(c.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer of.Close()
	ef, err := os.Create(c.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	args := append([]string{verb, "--bundle", b.Dir}, extra...)
	args = append(args, b.ID)
	c.Create = rt.Exec(t, Opts{Stdout: of, Stderr: ef}, args...)
	// The runtime's own messages went to the same files; keep them in
	// the result too.
	ob, _ := os.ReadFile(c.Stdout)
	eb, _ := os.ReadFile(c.Stderr)
	c.Create.Stdout, c.Create.Stderr = string(ob), string(eb)
	return c, c.Create
}

// WaitOutput waits until the container's stdout contains substr.
func (c *Container) WaitOutput(t testing.TB, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := c.Output(t)
		if strings.Contains(out, substr) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: stdout %q does not contain %q after %v (stderr %q)", c.ID, out, substr, timeout, c.ErrOutput(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ReadLogString decodes JSON log lines from a string (e.g. stderr).
func ReadLogString(s string) ([]LogLine, error) {
	f, err := os.CreateTemp("", "xit-log-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		return nil, err
	}
	return ReadLog(f.Name())
}

// Start runs `start id`.
func (rt *Runtime) Start(t testing.TB, id string) Result {
	t.Helper()
	return rt.Run(t, "start", id)
}

// Kill runs `kill id [sig]` (sig "" for the default).
func (rt *Runtime) Kill(t testing.TB, id, sig string) Result {
	t.Helper()
	if sig == "" {
		return rt.Run(t, "kill", id)
	}
	return rt.Run(t, "kill", id, sig)
}

// Delete runs `delete [--force] id`.
func (rt *Runtime) Delete(t testing.TB, id string, force bool) Result {
	t.Helper()
	if force {
		return rt.Run(t, "delete", "--force", id)
	}
	return rt.Run(t, "delete", id)
}
