package ocicli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime is an OCI runtime binary with runc's command line and the global
// flags every command gets. A Runtime is safe for concurrent use; it holds
// no state between commands.
type Runtime struct {
	Binary        string // absolute path of xrunc, runc or crun
	Root          string // --root (state dir); "" = the runtime's default
	LogFile       string // --log FILE --log-format json; "" = none
	SystemdCgroup bool   // --systemd-cgroup
	Debug         bool   // --debug
	// Spawner runs each command. The shim's reaper must collect every child
	// (it does wait4(-1)), so os/exec must never wait for them itself.
	Spawner Spawner // nil = ExecSpawner, which uses exec.Cmd
}

// IO is the container's stdio for create and exec; a nil file is /dev/null.
// Without a terminal the runtime passes them on to the container's process.
type IO struct{ Stdin, Stdout, Stderr *os.File }

// CreateOpts are the options of Create.
type CreateOpts struct {
	PidFile, ConsoleSocket string
	NoPivot, NoNewKeyring  bool
	IO                     IO
	ExtraFiles             []*os.File // passed as fds 3.. with --preserve-fds N
}

// ExecOpts are the options of Exec.
type ExecOpts struct {
	PidFile, ConsoleSocket string
	// Detach makes the runtime return once the process runs (it is then
	// reparented to the caller's subreaper); without it the runtime waits
	// for the process, and its exit status is the process's.
	Detach bool
	IO     IO
}

// State is the output of the state command, with runc's JSON keys.
type State struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"` // created, running, paused or stopped
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Create runs `create --bundle B [--pid-file P] [--console-socket S]
// [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID`. It returns once the
// container's init exists and waits for Start. If ctx ends the command, a
// half-created container may remain: Delete it with force.
func (r *Runtime) Create(ctx context.Context, id, bundle string, o CreateOpts) error {
	a := r.command("create", 12)
	a = append(a, "--bundle", bundle)
	if o.PidFile != "" {
		a = append(a, "--pid-file", o.PidFile)
	}
	if o.ConsoleSocket != "" {
		a = append(a, "--console-socket", o.ConsoleSocket)
	}
	if o.NoPivot {
		a = append(a, "--no-pivot")
	}
	if o.NoNewKeyring {
		a = append(a, "--no-new-keyring")
	}
	if len(o.ExtraFiles) > 0 {
		a = append(a, "--preserve-fds", strconv.Itoa(len(o.ExtraFiles)))
	}
	a = append(a, id)
	_, err := r.run(ctx, "create", a, call{io: &o.IO, extra: o.ExtraFiles})
	return err
}

// Start runs `start ID`.
func (r *Runtime) Start(ctx context.Context, id string) error {
	return r.simple(ctx, "start", id)
}

// Exec writes p as JSON to a temporary file (0600, in a private temp dir it
// removes afterwards) and runs `exec --process FILE [--console-socket S]
// [--detach] [--pid-file P] ID`. Without Detach, a process that exits with a
// status other than 0 makes an *Error with that ExitStatus and no
// LogMessage.
func (r *Runtime) Exec(ctx context.Context, id string, p *specs.Process, o ExecOpts) error {
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("exec: encode process: %w", err)
	}
	dir, err := os.MkdirTemp("", "ocicli-exec-") // 0700
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "process.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	a := r.command("exec", 8)
	a = append(a, "--process", path)
	if o.ConsoleSocket != "" {
		a = append(a, "--console-socket", o.ConsoleSocket)
	}
	if o.Detach {
		a = append(a, "--detach")
	}
	if o.PidFile != "" {
		a = append(a, "--pid-file", o.PidFile)
	}
	a = append(a, id)
	_, err = r.run(ctx, "exec", a, call{io: &o.IO})
	return err
}

// Kill runs `kill [--all] ID SIGNUM`.
func (r *Runtime) Kill(ctx context.Context, id string, sig int, all bool) error {
	a := r.command("kill", 3)
	if all {
		a = append(a, "--all")
	}
	a = append(a, id, strconv.Itoa(sig))
	_, err := r.run(ctx, "kill", a, call{})
	return err
}

// Delete runs `delete [--force] ID`. Both runc and xrunc delete a created or
// stopped container without force, and exit 0 for a missing id with force.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	a := r.command("delete", 2)
	if force {
		a = append(a, "--force")
	}
	a = append(a, id)
	_, err := r.run(ctx, "delete", a, call{})
	return err
}

// State runs `state ID` and decodes its JSON.
func (r *Runtime) State(ctx context.Context, id string) (*State, error) {
	out, err := r.run(ctx, "state", append(r.command("state", 1), id), call{})
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, fmt.Errorf("state: decode %q: %w", truncate(out), err)
	}
	return &s, nil
}

// Ps runs `ps --format json ID` and returns the host pids of the container's
// processes; none is an empty result (runc prints "null" for it).
func (r *Runtime) Ps(ctx context.Context, id string) ([]int, error) {
	a := append(r.command("ps", 3), "--format", "json", id)
	out, err := r.run(ctx, "ps", a, call{})
	if err != nil {
		return nil, err
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return nil, fmt.Errorf("ps: decode %q: %w", truncate(out), err)
	}
	return pids, nil
}

// Pause runs `pause ID`.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	return r.simple(ctx, "pause", id)
}

// Resume runs `resume ID`.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	return r.simple(ctx, "resume", id)
}

// Update runs `update --resources - ID` with res as JSON on its stdin.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	data, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("update: encode resources: %w", err)
	}
	a := append(r.command("update", 3), "--resources", "-", id)
	_, err = r.run(ctx, "update", a, call{stdin: data})
	return err
}

// Version runs `--version` (without the global flags) and returns the first
// line of its output, e.g. "runc version 1.1.5+ds1".
func (r *Runtime) Version(ctx context.Context) (string, error) {
	out, err := r.run(ctx, "version", []string{r.Binary, "--version"}, call{})
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(out), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", errors.New("version: empty output")
	}
	return line, nil
}

// simple runs `name ID`.
func (r *Runtime) simple(ctx context.Context, name, id string) error {
	_, err := r.run(ctx, name, append(r.command(name, 1), id), call{})
	return err
}

// command returns the argv up to and including the subcommand: the binary,
// then the global flags, with room for extra more arguments.
func (r *Runtime) command(sub string, extra int) []string {
	n := 2 + extra
	if r.Root != "" {
		n += 2
	}
	if r.LogFile != "" {
		n += 4
	}
	if r.SystemdCgroup {
		n++
	}
	if r.Debug {
		n++
	}
	a := make([]string, 0, n)
	a = append(a, r.Binary)
	if r.Root != "" {
		a = append(a, "--root", r.Root)
	}
	if r.LogFile != "" {
		a = append(a, "--log", r.LogFile, "--log-format", "json")
	}
	if r.SystemdCgroup {
		a = append(a, "--systemd-cgroup")
	}
	if r.Debug {
		a = append(a, "--debug")
	}
	return append(a, sub)
}

// call is how one command's stdio is wired.
type call struct {
	io    *IO        // the container's stdio (create, exec); nil = capture the output
	extra []*os.File // ExtraFiles (create)
	stdin []byte     // written to the command's stdin through a pipe (update)
}

const (
	// maxOutput bounds the captured output of one command.
	maxOutput = 64 << 10
	// outputGrace is how long the output is still read after the runtime
	// exited, for a descendant (a hook's daemon) that kept it open.
	outputGrace = 100 * time.Millisecond
)

// run runs argv through the Spawner and returns the captured output. A
// status other than 0 is an *Error; a command that ctx ended returns an
// error wrapping ctx.Err().
func (r *Runtime) run(ctx context.Context, name string, argv []string, c call) (out []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !filepath.IsAbs(r.Binary) {
		return nil, fmt.Errorf("%s: runtime binary %q is not an absolute path", name, r.Binary)
	}
	cmd := &exec.Cmd{
		Path: r.Binary,
		Args: argv,
		Env:  childEnv(),
		// Like go-runc: a runtime command must not outlive the shim.
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
		ExtraFiles:  c.extra,
	}
	var capt *capture
	if c.io != nil {
		// A nil *os.File in the interface would be a closed fd in the
		// child; leave the field nil so exec.Cmd opens /dev/null.
		if c.io.Stdin != nil {
			cmd.Stdin = c.io.Stdin
		}
		if c.io.Stdout != nil {
			cmd.Stdout = c.io.Stdout
		}
		if c.io.Stderr != nil {
			cmd.Stderr = c.io.Stderr
		}
	} else {
		if capt, err = startCapture(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		cmd.Stdout, cmd.Stderr = capt.w, capt.w
	}
	var feed *stdinFeed
	if c.stdin != nil {
		if feed, err = startFeed(c.stdin); err != nil {
			capt.finish()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		cmd.Stdin = feed.r
	}
	logOff := int64(-1)
	if r.LogFile != "" {
		logOff = logSize(r.LogFile)
	}

	status, killed, err := r.spawn(ctx, cmd)

	if feed != nil {
		feed.finish()
	}
	if capt != nil {
		out = capt.finish()
	}
	switch {
	case err != nil:
		return out, fmt.Errorf("%s: %w", name, err)
	case status == 0:
		return out, nil
	case killed:
		return out, fmt.Errorf("%s: %w", name, ctx.Err())
	}
	e := &Error{Command: name, ExitStatus: status, Output: string(out)}
	if logOff >= 0 {
		e.LogMessage = lastLogError(r.LogFile, logOff)
	}
	return out, e
}

// childEnv is the runtime's environment: ours without NOTIFY_SOCKET (as
// go-runc does: sd_notify is the shim's business, not the runtime's). nil,
// which exec.Cmd reads as "inherit", when there is nothing to strip.
func childEnv() []string {
	if _, ok := os.LookupEnv("NOTIFY_SOCKET"); !ok {
		return nil
	}
	env := os.Environ()
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			out = append(out, kv)
		}
	}
	return out
}

// capture reads a command's combined stdout and stderr through a pipe. The
// read is concurrent, so a chatty command never blocks on a full pipe; what
// exceeds maxOutput is read and dropped.
type capture struct {
	r, w *os.File
	done chan struct{}
	out  []byte // set by read before done is closed
}

func startCapture() (*capture, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c := &capture{r: r, w: w, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *capture) read() {
	defer close(c.done)
	c.out, _ = io.ReadAll(io.LimitReader(c.r, maxOutput))
	if len(c.out) == maxOutput {
		_, _ = io.Copy(io.Discard, c.r)
	}
}

// finish closes the write end and returns the output once the reader saw
// EOF, or outputGrace later if a descendant still holds the write end. Safe
// on a nil capture.
func (c *capture) finish() []byte {
	if c == nil {
		return nil
	}
	c.w.Close()
	_ = c.r.SetReadDeadline(time.Now().Add(outputGrace))
	<-c.done
	c.r.Close()
	return c.out
}

// stdinFeed writes data into a command's stdin through a pipe, from a
// goroutine so that data larger than the pipe buffer cannot deadlock.
type stdinFeed struct {
	r    *os.File
	done chan struct{}
}

func startFeed(data []byte) (*stdinFeed, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	f := &stdinFeed{r: r, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		_, _ = w.Write(data) // the command reports what it could not read
		w.Close()
	}()
	return f, nil
}

// finish closes the read end, which fails a write still blocked because
// the command exited without reading everything (EPIPE), and waits for the
// writer.
func (f *stdinFeed) finish() {
	f.r.Close()
	<-f.done
}

// truncate shortens output for an error message.
func truncate(b []byte) string {
	const limit = 256
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
