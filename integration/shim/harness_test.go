package shim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/ttrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/xstack/xstack/integration/internal/testenv"
)

const (
	// testNS is the containerd namespace the tests use.
	testNS = "xshimtest"
	// rpcTimeout bounds every task API call but Wait.
	rpcTimeout = 30 * time.Second
	// exitTimeout bounds a Wait for a process that is expected to exit.
	exitTimeout = 20 * time.Second
)

// env is what one test shares between its containers, the part of
// containerd that is not per-container: a temp dir, the events server on
// $TTRPC_ADDRESS, a cgroup parent, the runtime's state root and a
// publish binary that must never run.
type env struct {
	c           testenv.ShimCombo
	ns          string
	dir         string // private temp dir (0700)
	address     string // -address: the fake daemon's grpc socket path
	ttrpcAddr   string // $TTRPC_ADDRESS: address + ".ttrpc", where events go
	events      *eventServer
	publish     string // -publish-binary: a script that records being run
	publishLog  string
	cgParent    string // /xstack-shimtest-<rand>
	runtimeRoot string // Options.Root (the runtime's --root is <root>/<ns>)
	pristine    string // read-only test rootfs shared by bind mounts
}

// newEnv sets up the shared parts for one test and registers their
// cleanup (which runs after the cleanup of every shim started later).
func newEnv(t *testing.T, c testenv.ShimCombo) *env {
	t.Helper()
	testenv.RequireRoot(t)
	dir, err := os.MkdirTemp("", "xst-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	e := &env{
		c:           c,
		ns:          testNS,
		dir:         dir,
		address:     filepath.Join(dir, "d.sock"),
		cgParent:    "/xstack-shimtest-" + testenv.RandHex(6),
		runtimeRoot: filepath.Join(dir, "rt"),
		pristine:    filepath.Dir(testenv.XtestBinary(t)),
	}
	e.ttrpcAddr = e.address + ".ttrpc"
	e.publish = filepath.Join(dir, "publish")
	e.publishLog = filepath.Join(dir, "publish.log")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %s\nexit 1\n", e.publishLog)
	if err := os.WriteFile(e.publish, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Every shim has been shut down or deleted by now: any process
		// still started with our -address is a shim that leaked.
		if pids := e.shimPids(5 * time.Second); len(pids) > 0 {
			for _, pid := range pids {
				t.Errorf("cleanup: shim %d still running: %s", pid, procCmdline(pid))
				refOf(pid).kill()
			}
		}
		if e.events != nil {
			e.events.Close()
		}
		if err := testenv.RemoveCgroup(e.cgParent); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if m := mountsUnder(dir); len(m) > 0 {
			t.Errorf("cleanup: mounts left under %s: %q", dir, m)
			for i := len(m) - 1; i >= 0; i-- {
				unix.Unmount(m[i], unix.MNT_DETACH)
			}
		}
		os.RemoveAll(dir)
	})
	ev, err := newEventServer(e.ttrpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	e.events = ev
	return e
}

// shimPids lists the live processes started with `-address <our
// address>` (the shims of this env), waiting up to timeout for them to go.
func (e *env) shimPids(timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		var out []int
		ents, _ := os.ReadDir("/proc")
		for _, d := range ents {
			pid, err := strconv.Atoi(d.Name())
			if err != nil || !testenv.ProcAlive(pid) {
				continue
			}
			b, _ := os.ReadFile("/proc/" + d.Name() + "/cmdline")
			args := strings.Split(string(b), "\x00")
			for i := 0; i+1 < len(args); i++ {
				if args[i] == "-address" && args[i+1] == e.address {
					out = append(out, pid)
					break
				}
			}
		}
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// opts is the Options a test passes to the shim: the runtime binary under
// test and a private runtime root.
func (e *env) opts() *options.Options {
	return &options.Options{BinaryName: e.c.Runtime, Root: e.runtimeRoot}
}

// runtimeStateDir is where the runtime keeps the state of container id.
func (e *env) runtimeStateDir(id string) string {
	return filepath.Join(e.runtimeRoot, e.ns, id)
}

// bundle is one container's bundle dir, <dir>/<ns>/<id> as containerd
// lays it out (the runc shim's delete finds the bundle as dir(cwd)/<id>).
type bundle struct {
	ID          string
	Dir         string
	Spec        *specs.Spec
	Rootfs      []*types.Mount // CreateTaskRequest.rootfs
	CgroupsPath string
}

type bundleOpt func(b *bundle)

// withArgs sets process.args.
func withArgs(args ...string) bundleOpt {
	return func(b *bundle) { b.Spec.Process.Args = args }
}

// withLocalRootfs copies the test rootfs into <bundle>/rootfs, writable,
// and sends no rootfs mounts (like `ctr run --rootfs`).
func withLocalRootfs(t testing.TB) bundleOpt {
	return func(b *bundle) {
		if err := os.Remove(filepath.Join(b.Dir, "rootfs")); err != nil {
			t.Fatal(err)
		}
		testenv.NewRootfs(t, filepath.Join(b.Dir, "rootfs"))
		b.Rootfs = nil
		b.Spec.Root.Readonly = false
	}
}

// withTerminal sets process.terminal.
func withTerminal() bundleOpt {
	return func(b *bundle) { b.Spec.Process.Terminal = true }
}

// newBundle makes <dir>/<ns>/<id> (0700) with config.json (runc's default
// spec, cgroupsPath /xstack-shimtest-<rand>/<id>) and an empty rootfs/
// that the shim bind-mounts the read-only test rootfs on, as containerd
// sends snapshot mounts.
func (e *env) newBundle(t testing.TB, id string, opts ...bundleOpt) *bundle {
	t.Helper()
	d := filepath.Join(e.dir, e.ns, id)
	if err := os.MkdirAll(filepath.Dir(d), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(d, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := &bundle{
		ID:     id,
		Dir:    d,
		Spec:   testenv.DefaultSpec("/xtest", "sleep", "3600"),
		Rootfs: []*types.Mount{{Type: "bind", Source: e.pristine, Options: []string{"rbind", "ro"}}},
	}
	for _, o := range opts {
		o(b)
	}
	b.CgroupsPath = e.cgParent + "/" + id
	b.Spec.Linux.CgroupsPath = b.CgroupsPath
	b.save(t)
	return b
}

func (b *bundle) save(t testing.TB) {
	t.Helper()
	data, err := json.MarshalIndent(b.Spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// stdio is a set of FIFOs for one process, the test's ends open.
type stdio struct {
	Stdin, Stdout, Stderr string
	in                    *os.File
	out, err              *fifoReader
}

// newStdio makes the FIFOs asked for and opens the test's ends first
// (O_RDWR|O_NONBLOCK, as containerd's cio), so Create never blocks on them.
// They are closed at cleanup.
func (e *env) newStdio(t testing.TB, stdin, stdout, stderr bool) *stdio {
	t.Helper()
	d, err := os.MkdirTemp(e.dir, "fifo-")
	if err != nil {
		t.Fatal(err)
	}
	s := &stdio{}
	if stdin {
		s.Stdin = filepath.Join(d, "stdin")
		if s.in, err = openFifo(s.Stdin); err != nil {
			t.Fatal(err)
		}
	}
	if stdout {
		s.Stdout = filepath.Join(d, "stdout")
		if s.out, err = newFifoReader(s.Stdout); err != nil {
			t.Fatal(err)
		}
	}
	if stderr {
		s.Stderr = filepath.Join(d, "stderr")
		if s.err, err = newFifoReader(s.Stderr); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(s.close)
	return s
}

func (s *stdio) close() {
	if s.in != nil {
		s.in.Close()
	}
	if s.out != nil {
		s.out.Close()
	}
	if s.err != nil {
		s.err.Close()
	}
}

// write sends data to the process's stdin FIFO.
func (s *stdio) write(t *testing.T, data string) {
	t.Helper()
	if _, err := s.in.Write([]byte(data)); err != nil {
		t.Fatalf("write stdin: %v", err)
	}
}

// closeStdin closes the test's end of the stdin FIFO.
func (s *stdio) closeStdin() {
	if s.in != nil {
		s.in.Close()
	}
}

// waitOut waits until stdout contains substr.
func (s *stdio) waitOut(t *testing.T, substr string) string {
	t.Helper()
	out, ok := s.out.WaitFor(substr, exitTimeout)
	if !ok {
		t.Fatalf("stdout %q does not contain %q after %v", out, substr, exitTimeout)
	}
	return out
}

// waitErr waits until stderr contains substr.
func (s *stdio) waitErr(t *testing.T, substr string) string {
	t.Helper()
	out, ok := s.err.WaitFor(substr, exitTimeout)
	if !ok {
		t.Fatalf("stderr %q does not contain %q after %v", out, substr, exitTimeout)
	}
	return out
}

// shim is one running shim serving one container, with containerd's side
// of the connection.
type shim struct {
	t       testing.TB // the test that started it: cleanup reports there
	e       *env
	b       *bundle
	cmd     shimCmd
	opts    *options.Options
	start   startResult
	addr    string
	client  *ttrpc.Client
	task    taskapi.TTRPCTaskService
	pid     int // the shim's pid, from Connect
	connect *taskapi.ConnectResponse
	log     *fifoReader

	mu       sync.Mutex
	procs    []procRef // processes to SIGKILL at cleanup if still there
	created  bool      // Create succeeded: the shim must be able to delete
	closed   bool      // the test closed the client
	shutdown bool      // Shutdown was sent: the shim must exit
}

// startShim starts a shim for bundle b as containerd does: FIFO `log` in
// the bundle with a reader, `start` with the Options on stdin, dial the
// printed address, Connect. Its cleanup (registered here, so it runs
// before the env's) tears the container and the shim down as containerd
// does and checks what `delete` prints.
func (e *env) startShim(t testing.TB, b *bundle) *shim {
	t.Helper()
	s, err := e.tryStartShim(t, b, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tryStartShim is startShim with given options, returning start errors
// (a shim that did start is always cleaned up).
func (e *env) tryStartShim(t testing.TB, b *bundle, o *options.Options) (*shim, error) {
	t.Helper()
	s := e.newShim(t, b, o)
	var err error
	s.start, err = s.cmd.runStart(o)
	if err != nil {
		return s, err
	}
	if !strings.HasPrefix(s.start.Address, "unix://") {
		return s, fmt.Errorf("start printed %q, want a unix:// address", s.start.Output)
	}
	return s, s.attach(s.start.Address)
}

// newShim prepares the containerd side for bundle b: the shim command,
// the `log` FIFO with a reader, and the cleanup. It starts nothing.
func (e *env) newShim(t testing.TB, b *bundle, o *options.Options) *shim {
	t.Helper()
	s := e.newShimNoLog(t, b, o)
	s.openLog(t)
	return s
}

// newShimNoLog is newShim without the reader on the `log` FIFO.
func (e *env) newShimNoLog(t testing.TB, b *bundle, o *options.Options) *shim {
	t.Helper()
	s := &shim{
		t:    t,
		e:    e,
		b:    b,
		opts: o,
		cmd: shimCmd{
			Shim:      e.c.Shim,
			NS:        e.ns,
			ID:        b.ID,
			Address:   e.address,
			Publish:   e.publish,
			Bundle:    b.Dir,
			TTRPCAddr: e.ttrpcAddr,
		},
	}
	t.Cleanup(s.cleanup)
	return s
}

// openLog makes the bundle's `log` FIFO if needed and keeps a reader on it,
// as containerd does before `start` and again when it reconnects.
func (s *shim) openLog(t testing.TB) {
	t.Helper()
	lr, err := newFifoReader(filepath.Join(s.b.Dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	s.log = lr
}

// attach dials addr and calls Connect, as containerd does at reload.
func (s *shim) attach(addr string) error {
	s.addr = addr
	client, err := dialShim(addr, nil)
	if err != nil {
		return fmt.Errorf("dial %s: %v", addr, err)
	}
	s.client = client
	s.task = taskapi.NewTTRPCTaskClient(client)
	s.closed = false
	ctx, cancel := s.ctx()
	defer cancel()
	cr, err := s.task.Connect(ctx, &taskapi.ConnectRequest{ID: s.b.ID})
	if err != nil {
		return fmt.Errorf("Connect: %v", err)
	}
	s.connect = cr
	s.pid = int(cr.ShimPid)
	s.track(s.pid)
	s.track(int(cr.TaskPid))
	return nil
}

// closeClient closes the connection without Shutdown.
func (s *shim) closeClient() {
	if s.client != nil && !s.closed {
		s.client.Close()
	}
	s.closed = true
}

// ctx is a call context with the namespace metadata and rpcTimeout.
func (s *shim) ctx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	return nsContext(ctx, s.e.ns), cancel
}

// track records a pid the test caused to exist, SIGKILLed at cleanup if it
// still runs.
func (s *shim) track(pid int) {
	if pid <= 0 {
		return
	}
	s.mu.Lock()
	s.procs = append(s.procs, refOf(pid))
	s.mu.Unlock()
}

// cleanup tears down as containerd does: kill, Delete, Shutdown, close,
// then `delete`; then SIGKILLs what the test started and is left,
// unmounts the rootfs and removes a socket a dead shim left.
func (s *shim) cleanup() {
	t := s.t
	if s.client != nil && !s.closed {
		ctx, cancel := context.WithTimeout(nsContext(context.Background(), s.e.ns), 15*time.Second)
		st, err := s.task.State(ctx, &taskapi.StateRequest{ID: s.b.ID})
		if err == nil && st.Status != task.Status_STOPPED {
			s.task.Kill(ctx, &taskapi.KillRequest{ID: s.b.ID, Signal: uint32(syscall.SIGKILL), All: true})
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			s.task.Wait(wctx, &taskapi.WaitRequest{ID: s.b.ID})
			wcancel()
		}
		if err == nil {
			s.task.Delete(ctx, &taskapi.DeleteRequest{ID: s.b.ID})
		}
		s.task.Shutdown(ctx, &taskapi.ShutdownRequest{ID: s.b.ID})
		s.shutdown = true
		cancel()
		s.client.Close()
	}
	if s.addr != "" || s.created {
		r := s.cmd.runDelete()
		if testing.Verbose() {
			t.Logf("cleanup: %s delete: %s", s.b.ID, r)
		}
		if s.created && (r.Code != 0 || r.Resp == nil) {
			t.Errorf("cleanup: %s -bundle %s delete: %s", filepath.Base(s.cmd.Shim), s.b.Dir, r)
		}
	}
	// The shim exits after Shutdown (it serves no other container).
	if s.pid > 0 && s.shutdown && !waitGone(s.pid, 5*time.Second) {
		t.Errorf("cleanup: shim %d still running 5 s after Shutdown: %s", s.pid, procCmdline(s.pid))
	}
	s.mu.Lock()
	procs := append([]procRef(nil), s.procs...)
	s.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
	rootfs := filepath.Join(s.b.Dir, "rootfs")
	if isMounted(rootfs) {
		t.Errorf("cleanup: %s still mounted after delete", rootfs)
		unix.Unmount(rootfs, unix.MNT_DETACH)
	}
	if s.addr != "" {
		os.Remove(socketPath(s.addr))
	}
	if s.log != nil {
		s.log.Close()
		if t.Failed() || testing.Verbose() {
			if l := strings.TrimSpace(s.log.String()); l != "" {
				t.Logf("shim log of %s:\n%s", s.b.ID, l)
			}
		}
	}
}

// waitGone waits until pid is gone or a zombie.
func waitGone(pid int, timeout time.Duration) bool {
	return testenv.WaitProcGone(pid, timeout)
}

// createReq is the CreateTaskRequest containerd would send for the bundle.
func (s *shim) createReq(io *stdio, terminal bool) *taskapi.CreateTaskRequest {
	req := &taskapi.CreateTaskRequest{
		ID:       s.b.ID,
		Bundle:   s.b.Dir,
		Rootfs:   s.b.Rootfs,
		Terminal: terminal,
	}
	if io != nil {
		req.Stdin, req.Stdout, req.Stderr = io.Stdin, io.Stdout, io.Stderr
	}
	a, err := optionsAny(s.opts)
	if err != nil {
		panic(err)
	}
	req.Options = a
	return req
}

// tryCreate sends Create.
func (s *shim) tryCreate(req *taskapi.CreateTaskRequest) (*taskapi.CreateTaskResponse, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	r, err := s.task.Create(ctx, req)
	if err == nil {
		s.created = true
		s.track(int(r.Pid))
	}
	return r, err
}

// create sends Create and fails the test on error; it returns the pid.
func (s *shim) create(t *testing.T, io *stdio, terminal bool) uint32 {
	t.Helper()
	r, err := s.tryCreate(s.createReq(io, terminal))
	if err != nil {
		t.Fatalf("Create %s: %v", s.b.ID, err)
	}
	if r.Pid == 0 {
		t.Fatalf("Create %s: pid 0", s.b.ID)
	}
	return r.Pid
}

// startTask sends Start (execID "" for the init) and returns the pid.
func (s *shim) startTask(t *testing.T, execID string) uint32 {
	t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	r, err := s.task.Start(ctx, &taskapi.StartRequest{ID: s.b.ID, ExecID: execID})
	if err != nil {
		t.Fatalf("Start %s %q: %v", s.b.ID, execID, err)
	}
	s.track(int(r.Pid))
	return r.Pid
}

// state sends State.
func (s *shim) state(execID string) (*taskapi.StateResponse, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	return s.task.State(ctx, &taskapi.StateRequest{ID: s.b.ID, ExecID: execID})
}

// mustState is state that fails the test on error.
func (s *shim) mustState(t *testing.T, execID string) *taskapi.StateResponse {
	t.Helper()
	r, err := s.state(execID)
	if err != nil {
		t.Fatalf("State %s %q: %v", s.b.ID, execID, err)
	}
	return r
}

// wait sends Wait with a timeout.
func (s *shim) wait(execID string, timeout time.Duration) (*taskapi.WaitResponse, error) {
	ctx, cancel := context.WithTimeout(nsContext(context.Background(), s.e.ns), timeout)
	defer cancel()
	return s.task.Wait(ctx, &taskapi.WaitRequest{ID: s.b.ID, ExecID: execID})
}

// mustWait is wait (exitTimeout) that fails the test on error and checks
// exited_at is set.
func (s *shim) mustWait(t *testing.T, execID string) *taskapi.WaitResponse {
	t.Helper()
	r, err := s.wait(execID, exitTimeout)
	if err != nil {
		t.Fatalf("Wait %s %q: %v", s.b.ID, execID, err)
	}
	if r.ExitedAt == nil || r.ExitedAt.AsTime().IsZero() || r.ExitedAt.AsTime().Unix() <= 0 {
		t.Errorf("Wait %s %q: exited_at %v not set", s.b.ID, execID, r.ExitedAt)
	}
	return r
}

// kill sends Kill.
func (s *shim) kill(execID string, sig syscall.Signal, all bool) error {
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.task.Kill(ctx, &taskapi.KillRequest{ID: s.b.ID, ExecID: execID, Signal: uint32(sig), All: all})
	return err
}

// deleteTask sends Delete.
func (s *shim) deleteTask(execID string) (*taskapi.DeleteResponse, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	return s.task.Delete(ctx, &taskapi.DeleteRequest{ID: s.b.ID, ExecID: execID})
}

// mustDelete is deleteTask that fails the test on error.
func (s *shim) mustDelete(t *testing.T, execID string) *taskapi.DeleteResponse {
	t.Helper()
	r, err := s.deleteTask(execID)
	if err != nil {
		t.Fatalf("Delete %s %q: %v", s.b.ID, execID, err)
	}
	return r
}

// shutdownShim sends Shutdown and closes the client, as containerd does
// after Delete. ttrpc.ErrClosed is fine.
func (s *shim) shutdownShim(t testing.TB) {
	t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.task.Shutdown(ctx, &taskapi.ShutdownRequest{ID: s.b.ID})
	if err != nil && !isClosed(err) {
		t.Errorf("Shutdown: %v", err)
	}
	s.shutdown = true
	s.client.Close()
	s.closed = true
}

func isClosed(err error) bool {
	return err != nil && (err == ttrpc.ErrClosed || strings.Contains(err.Error(), ttrpc.ErrClosed.Error()))
}

// execSpec is the process spec of an exec: the bundle's process with other
// args (and terminal), as containerd's task.Exec sends it.
func (s *shim) execSpec(t *testing.T, terminal bool, args ...string) *anypb.Any {
	t.Helper()
	p := *s.b.Spec.Process
	p.Args = args
	p.Terminal = terminal
	data, err := json.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	return &anypb.Any{TypeUrl: processTypeURL, Value: data}
}

// tryExec sends Exec.
func (s *shim) tryExec(t *testing.T, execID string, io *stdio, terminal bool, args ...string) error {
	t.Helper()
	req := &taskapi.ExecProcessRequest{
		ID:       s.b.ID,
		ExecID:   execID,
		Terminal: terminal,
		Spec:     s.execSpec(t, terminal, args...),
	}
	if io != nil {
		req.Stdin, req.Stdout, req.Stderr = io.Stdin, io.Stdout, io.Stderr
	}
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.task.Exec(ctx, req)
	return err
}

// exec sends Exec and fails the test on error.
func (s *shim) exec(t *testing.T, execID string, io *stdio, terminal bool, args ...string) {
	t.Helper()
	if err := s.tryExec(t, execID, io, terminal, args...); err != nil {
		t.Fatalf("Exec %s %s: %v", s.b.ID, execID, err)
	}
}

// run is Create + Start of the init with no stdio; it returns the pid.
func (s *shim) run(t *testing.T, io *stdio) uint32 {
	t.Helper()
	s.create(t, io, false)
	return s.startTask(t, "")
}

// codeOf is the grpc code of a task API error.
func codeOf(err error) codes.Code {
	return status.Code(err)
}

// wantCode fails the test unless err has one of the codes.
func wantCode(t *testing.T, what string, err error, want ...codes.Code) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %v", what, want)
		return
	}
	got := codeOf(err)
	for _, w := range want {
		if got == w {
			t.Logf("%s: %v (as expected)", what, err)
			return
		}
	}
	t.Errorf("%s: %v (code %v), want code %v", what, err, got, want)
}

// eventsFor keeps the events of container id.
func eventsFor(evs []recordedEvent, id string) []recordedEvent {
	var out []recordedEvent
	for _, e := range evs {
		if e.containerID() == id {
			out = append(out, e)
		}
	}
	return out
}

// topics lists the topics of events.
func topics(evs []recordedEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Topic)
	}
	return out
}

// forEach runs fn for every shim and runtime with a fresh env.
func forEach(t *testing.T, fn func(t *testing.T, e *env)) {
	testenv.ForEachShimCombo(t, func(t *testing.T, c testenv.ShimCombo) {
		fn(t, newEnv(t, c))
	})
}

// newID is a container id unique in the run.
func newID(prefix string) string {
	return prefix + "-" + testenv.RandHex(4)
}
