package shim

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/runc/options"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/xstack/xstack/pkg/ocicli"
)

// The task API on a Service built by hand (see exits_test.go): the
// container's runtime is a fake script run through os/exec (no reaper in
// this process), its processes have synthetic pids unless said otherwise.

// fakeRuntimeScript appends its argv (one line, space-separated) to argv
// beside itself, saves its stdin when "read-stdin" exists, appends
// log-lines to the --log file, prints stdout and exits with exit.
const fakeRuntimeScript = `#!/bin/sh
d=$(dirname "$0")
echo "$*" >> "$d/argv"
log= prev=
for a in "$@"; do
	[ "$prev" = --log ] && log=$a
	prev=$a
done
if [ -f "$d/read-stdin" ]; then cat > "$d/stdin"; fi
if [ -n "$log" ] && [ -f "$d/log-lines" ]; then cat "$d/log-lines" >> "$log"; fi
if [ -f "$d/stdout" ]; then cat "$d/stdout"; fi
if [ -f "$d/exit" ]; then exit "$(cat "$d/exit")"; fi
exit 0
`

type fakeRuntime struct {
	dir string
	rt  *ocicli.Runtime
}

func newFakeRuntime(t *testing.T, bundle string) *fakeRuntime {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "runtime")
	writeExecutable(t, bin, fakeRuntimeScript)
	return &fakeRuntime{dir: dir, rt: &ocicli.Runtime{Binary: bin, LogFile: filepath.Join(bundle, "log.json")}}
}

func (f *fakeRuntime) set(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeRuntime) unset(name string) { os.Remove(filepath.Join(f.dir, name)) }

// calls returns the command lines run so far and forgets them.
func (f *fakeRuntime) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "argv"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(f.dir, "argv"))
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

type serviceTest struct {
	*exitTest
	rt     *fakeRuntime
	c      *container
	ctx    context.Context
	bundle string
}

// newServiceTest is a Service serving container c1 of namespace testns,
// created (init pid known, not started).
func newServiceTest(t *testing.T) *serviceTest {
	t.Helper()
	x := newExitTest(t)
	x.s.namespace = "fallbackns"
	c := x.container("c1")
	c.bundle = t.TempDir()
	rt := newFakeRuntime(t, c.bundle)
	c.runtime = rt.rt
	md := ttrpc.MD{}
	md.Set(namespaceKey, "testns")
	return &serviceTest{exitTest: x, rt: rt, c: c, ctx: ttrpc.WithMetadata(context.Background(), md), bundle: c.bundle}
}

func grpcCode(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	st, ok := status.FromError(err)
	if !ok {
		return codes.Code(9999)
	}
	return st.Code()
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := grpcCode(err); got != want {
		t.Errorf("%s: %v (code %v), want %v", what, err, got, want)
	}
}

func TestServiceUnknownIDs(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s, ctx := st.s, st.ctx
	calls := map[string]func() error{
		"state":       func() error { _, err := s.State(ctx, &taskapi.StateRequest{ID: "nope"}); return err },
		"state exec":  func() error { _, err := s.State(ctx, &taskapi.StateRequest{ID: "c1", ExecID: "nope"}); return err },
		"start":       func() error { _, err := s.Start(ctx, &taskapi.StartRequest{ID: "nope"}); return err },
		"start exec":  func() error { _, err := s.Start(ctx, &taskapi.StartRequest{ID: "c1", ExecID: "nope"}); return err },
		"delete":      func() error { _, err := s.Delete(ctx, &taskapi.DeleteRequest{ID: "nope"}); return err },
		"delete exec": func() error { _, err := s.Delete(ctx, &taskapi.DeleteRequest{ID: "c1", ExecID: "nope"}); return err },
		"kill":        func() error { _, err := s.Kill(ctx, &taskapi.KillRequest{ID: "nope", Signal: 9}); return err },
		"kill exec": func() error {
			_, err := s.Kill(ctx, &taskapi.KillRequest{ID: "c1", ExecID: "nope", Signal: 9})
			return err
		},
		"wait":           func() error { _, err := s.Wait(ctx, &taskapi.WaitRequest{ID: "nope"}); return err },
		"exec":           func() error { _, err := s.Exec(ctx, &taskapi.ExecProcessRequest{ID: "nope", ExecID: "e1"}); return err },
		"pids":           func() error { _, err := s.Pids(ctx, &taskapi.PidsRequest{ID: "nope"}); return err },
		"pause":          func() error { _, err := s.Pause(ctx, &taskapi.PauseRequest{ID: "nope"}); return err },
		"resume":         func() error { _, err := s.Resume(ctx, &taskapi.ResumeRequest{ID: "nope"}); return err },
		"update":         func() error { _, err := s.Update(ctx, &taskapi.UpdateTaskRequest{ID: "nope"}); return err },
		"resize":         func() error { _, err := s.ResizePty(ctx, &taskapi.ResizePtyRequest{ID: "nope"}); return err },
		"close io":       func() error { _, err := s.CloseIO(ctx, &taskapi.CloseIORequest{ID: "nope"}); return err },
		"stats":          func() error { _, err := s.Stats(ctx, &taskapi.StatsRequest{ID: "nope"}); return err },
		"being created":  func() error { _, err := s.State(ctx, &taskapi.StateRequest{ID: "reserved"}); return err },
		"created, stats": func() error { _, err := s.Stats(ctx, &taskapi.StatsRequest{ID: "c1"}); return err },
	}
	s.mu.Lock()
	s.containers["reserved"] = nil // a Create in progress
	s.mu.Unlock()
	for name, call := range calls {
		wantCode(t, name, call(), codes.NotFound)
	}
	if got := st.rt.calls(t); got != nil {
		t.Errorf("the runtime ran: %q", got)
	}
}

func TestServiceCreateRefused(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s := st.s
	bundle := t.TempDir()
	noNS := &Service{log: discardLog(), running: map[int]*process{}, starts: map[*startWatch]struct{}{}, containers: map[string]*container{}}
	badOpts := &anypb.Any{TypeUrl: "example.com/Nope", Value: []byte{1}}
	withRuntime := mustAny(t, &options.Options{BinaryName: st.rt.rt.Binary})
	tests := []struct {
		name string
		s    *Service
		r    *taskapi.CreateTaskRequest
		want codes.Code
	}{
		// Neither metadata nor a default namespace.
		{"no namespace at all", noNS, &taskapi.CreateTaskRequest{ID: "n1", Bundle: bundle}, codes.FailedPrecondition},
		{"existing id", s, &taskapi.CreateTaskRequest{ID: "c1", Bundle: bundle}, codes.AlreadyExists},
		{"checkpoint", s, &taskapi.CreateTaskRequest{ID: "n2", Bundle: bundle, Checkpoint: "/ckpt"}, codes.Unimplemented},
		{"parent checkpoint", s, &taskapi.CreateTaskRequest{ID: "n3", Bundle: bundle, ParentCheckpoint: "/ckpt"}, codes.Unimplemented},
		{"relative bundle", s, &taskapi.CreateTaskRequest{ID: "n4", Bundle: "relative/bundle"}, codes.InvalidArgument},
		{"bad options", s, &taskapi.CreateTaskRequest{ID: "n5", Bundle: bundle, Options: badOpts}, codes.InvalidArgument},
		{"missing runtime", s, &taskapi.CreateTaskRequest{ID: "n6", Bundle: bundle, Options: mustAny(t, &options.Options{BinaryName: "/nonexistent/runtime"})}, codes.FailedPrecondition},
		{"no config.json", s, &taskapi.CreateTaskRequest{ID: "n7", Bundle: bundle, Options: withRuntime}, codes.NotFound},
	}
	for _, tt := range tests {
		ctx := st.ctx
		if tt.s == noNS {
			ctx = context.Background()
		}
		_, err := tt.s.Create(ctx, tt.r)
		wantCode(t, tt.name, err, tt.want)
		if tt.r.ID != "c1" {
			tt.s.mu.Lock()
			_, held := tt.s.containers[tt.r.ID]
			tt.s.mu.Unlock()
			if held {
				t.Errorf("%s: the id stays reserved after a failed Create", tt.name)
			}
		}
	}
	if got := st.rt.calls(t); got != nil {
		t.Errorf("the runtime ran: %q", got)
	}
	// A Create in progress holds its id.
	s.mu.Lock()
	s.containers["busy"] = nil
	s.mu.Unlock()
	_, err := s.Create(st.ctx, &taskapi.CreateTaskRequest{ID: "busy", Bundle: bundle})
	wantCode(t, "id being created", err, codes.AlreadyExists)
}

func TestServiceRequestNamespace(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	if ns, err := st.s.requestNamespace(st.ctx); err != nil || ns != "testns" {
		t.Errorf("from metadata: %q, %v", ns, err)
	}
	if ns, err := st.s.requestNamespace(context.Background()); err != nil || ns != "fallbackns" {
		t.Errorf("fallback: %q, %v", ns, err)
	}
	empty := ttrpc.MD{}
	empty.Set(namespaceKey, "")
	if ns, err := st.s.requestNamespace(ttrpc.WithMetadata(context.Background(), empty)); err != nil || ns != "fallbackns" {
		t.Errorf("empty metadata: %q, %v", ns, err)
	}
}

func TestServiceState(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s, c := st.s, st.c
	c.init.stdio = stdioPaths{Stdin: "/f/in", Stdout: "/f/out", Stderr: "/f/err"}
	pid := fakePid(100)
	st.create(c, pid, nil)

	state := func() *taskapi.StateResponse {
		t.Helper()
		r, err := s.State(st.ctx, &taskapi.StateRequest{ID: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := state()
	if r.ID != "c1" || r.Bundle != c.bundle || r.Pid != uint32(pid) || r.Status != tasktypes.Status_CREATED ||
		r.Stdin != "/f/in" || r.Stdout != "/f/out" || r.Stderr != "/f/err" || r.Terminal || r.ExitedAt != nil {
		t.Errorf("created: %v", r)
	}
	st.start(c, nil)
	if r := state(); r.Status != tasktypes.Status_RUNNING {
		t.Errorf("started: %v", r.Status)
	}
	c.mu.Lock()
	c.pausing = true
	c.mu.Unlock()
	if r := state(); r.Status != tasktypes.Status_PAUSING {
		t.Errorf("pausing: %v", r.Status)
	}
	c.mu.Lock()
	c.pausing, c.paused = false, true
	c.mu.Unlock()
	if r := state(); r.Status != tasktypes.Status_PAUSED {
		t.Errorf("paused: %v", r.Status)
	}
	e := st.deliver(pid, 42)
	// A stopped process is stopped even in a frozen container.
	r = state()
	if r.Status != tasktypes.Status_STOPPED || r.ExitStatus != 42 || r.ExitedAt == nil || !r.ExitedAt.AsTime().Equal(e.At) {
		t.Errorf("stopped: %v", r)
	}

}

func processAny(t *testing.T, args ...string) *anypb.Any {
	t.Helper()
	b, err := json.Marshal(specs.Process{Args: args, Cwd: "/"})
	if err != nil {
		t.Fatal(err)
	}
	return &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Process", Value: b}
}

func TestServiceExec(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s, c := st.s, st.c
	st.create(c, fakePid(110), nil)
	st.start(c, nil)

	bad := []struct {
		name string
		r    *taskapi.ExecProcessRequest
		want codes.Code
	}{
		{"no exec id", &taskapi.ExecProcessRequest{ID: "c1", Spec: processAny(t, "sh")}, codes.InvalidArgument},
		{"no spec", &taskapi.ExecProcessRequest{ID: "c1", ExecID: "e1"}, codes.InvalidArgument},
		{"spec not JSON", &taskapi.ExecProcessRequest{ID: "c1", ExecID: "e1", Spec: &anypb.Any{TypeUrl: "x", Value: []byte("{")}}, codes.InvalidArgument},
		{"no args", &taskapi.ExecProcessRequest{ID: "c1", ExecID: "e1", Spec: processAny(t)}, codes.InvalidArgument},
	}
	for _, tt := range bad {
		_, err := s.Exec(st.ctx, tt.r)
		wantCode(t, tt.name, err, tt.want)
	}
	if _, err := s.Exec(st.ctx, &taskapi.ExecProcessRequest{ID: "c1", ExecID: "e1", Stdin: "/f/in", Stdout: "/f/out", Terminal: true, Spec: processAny(t, "sh", "-c", "true")}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Exec(st.ctx, &taskapi.ExecProcessRequest{ID: "c1", ExecID: "e1", Spec: processAny(t, "sh")})
	wantCode(t, "duplicate exec id", err, codes.AlreadyExists)

	r, err := s.State(st.ctx, &taskapi.StateRequest{ID: "c1", ExecID: "e1"})
	if err != nil {
		t.Fatal(err)
	}
	if r.ExecID != "e1" || r.Status != tasktypes.Status_CREATED || r.Pid != 0 || r.Stdin != "/f/in" || r.Stdout != "/f/out" || !r.Terminal {
		t.Errorf("exec state %v", r)
	}
	c.mu.Lock()
	spec := c.execs["e1"].spec
	c.mu.Unlock()
	if spec == nil || !spec.Terminal || len(spec.Args) != 3 {
		t.Errorf("recorded spec %+v: want the args and terminal from the request", spec)
	}
	st.expect("create(c1 pid="+strconv.Itoa(fakePid(110))+")", "start(c1 pid="+strconv.Itoa(fakePid(110))+")", "exec-added(c1/e1)")

	// Once the init has exited, no new exec.
	st.deliver(fakePid(110), 0)
	_, err = s.Exec(st.ctx, &taskapi.ExecProcessRequest{ID: "c1", ExecID: "e2", Spec: processAny(t, "sh")})
	wantCode(t, "exec after the init exit", err, codes.FailedPrecondition)
	_, err = s.Start(st.ctx, &taskapi.StartRequest{ID: "c1", ExecID: "e1"})
	wantCode(t, "start of an exec after the init exit", err, codes.FailedPrecondition)
	if got := st.rt.calls(t); got != nil {
		t.Errorf("the runtime ran: %q", got)
	}
}

func TestServiceStartRefused(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s, c := st.s, st.c
	st.create(c, fakePid(120), nil)
	st.start(c, nil)
	_, err := s.Start(st.ctx, &taskapi.StartRequest{ID: "c1"})
	wantCode(t, "start of a running init", err, codes.FailedPrecondition)
	st.deliver(fakePid(120), 0)
	_, err = s.Start(st.ctx, &taskapi.StartRequest{ID: "c1"})
	wantCode(t, "start of a stopped init", err, codes.FailedPrecondition)
	if got := st.rt.calls(t); got != nil {
		t.Errorf("the runtime ran: %q", got)
	}
}

// TestServiceStartInit: `runtime start`, the start event, the state.
func TestServiceStartInit(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s, c := st.s, st.c
	pid := fakePid(125)
	st.create(c, pid, nil)
	resp, err := s.Start(st.ctx, &taskapi.StartRequest{ID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Pid != uint32(pid) {
		t.Errorf("start pid %d, want %d", resp.Pid, pid)
	}
	if got := st.rt.calls(t); len(got) != 1 || !strings.HasSuffix(got[0], "start c1") {
		t.Errorf("runtime calls %q, want one start c1", got)
	}
	st.expect("create(c1 pid="+strconv.Itoa(pid)+")", "start(c1 pid="+strconv.Itoa(pid)+")")
	if _, state, _, _ := c.init.snapshot(); state != taskRunning {
		t.Errorf("state %v after Start", state)
	}
}

// TestServiceStartInitFails: the runtime fails: its logged error comes
// back, the init is not running, and an exit held meanwhile is published.
func TestServiceStartInitFails(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s, c := st.s, st.c
	pid := fakePid(126)
	st.create(c, pid, nil)
	st.rt.set(t, "exit", "1")
	st.rt.set(t, "log-lines", `{"level":"error","msg":"cannot start a container that has stopped","time":"2026-01-01T00:00:00Z"}`+"\n")
	_, err := s.Start(st.ctx, &taskapi.StartRequest{ID: "c1"})
	if grpcCode(err) == codes.OK || !strings.Contains(err.Error(), "OCI runtime start failed: cannot start a container that has stopped") {
		t.Fatalf("Start = %v", err)
	}
	if _, state, _, _ := c.init.snapshot(); state != taskCreated {
		t.Errorf("state %v after a failed start", state)
	}
	c.init.mu.Lock()
	starting := c.init.starting
	c.init.mu.Unlock()
	if starting {
		t.Error("still starting after a failed start")
	}
}

func TestServiceKill(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s, c := st.s, st.c
	st.create(c, fakePid(130), nil)
	st.start(c, nil)

	if _, err := s.Kill(st.ctx, &taskapi.KillRequest{ID: "c1", Signal: 15}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Kill(st.ctx, &taskapi.KillRequest{ID: "c1", Signal: 9, All: true}); err != nil {
		t.Fatal(err)
	}
	got := st.rt.calls(t)
	if len(got) != 2 || !strings.HasSuffix(got[0], " kill c1 15") || !strings.HasSuffix(got[1], " kill --all c1 9") {
		t.Errorf("runtime calls %q", got)
	}
	for _, tt := range []struct {
		msg  string
		want codes.Code
	}{
		{"container not running", codes.NotFound},
		{"container does not exist", codes.NotFound},
		{"operation not permitted", codes.Unknown},
	} {
		st.rt.set(t, "exit", "1")
		st.rt.set(t, "log-lines", `{"level":"error","msg":"`+tt.msg+`","time":"2026-01-01T00:00:00Z"}`+"\n")
		_, err := s.Kill(st.ctx, &taskapi.KillRequest{ID: "c1", Signal: 9})
		wantCode(t, "kill: "+tt.msg, err, tt.want)
		if err != nil && !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("kill error %q lacks the runtime's %q", err, tt.msg)
		}
	}

	// Execs are signalled directly.
	if _, err := s.Exec(st.ctx, &taskapi.ExecProcessRequest{ID: "c1", ExecID: "e1", Spec: processAny(t, "sh")}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Kill(st.ctx, &taskapi.KillRequest{ID: "c1", ExecID: "e1", Signal: 9})
	wantCode(t, "kill of an exec not started", err, codes.FailedPrecondition)
}

// TestServiceKillExec: a real process plays the exec (this process has no
// reaper: os/exec waits for it).
func TestServiceKillExec(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s, c := st.s, st.c
	st.create(c, fakePid(140), nil)
	st.start(c, nil)
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() {
		// Through the Process (a pidfd): never a reused pid.
		_ = cmd.Process.Signal(unix.SIGKILL)
		<-waited
	})
	e1 := st.exec(c, "e1", cmd.Process.Pid, nil)
	defer e1.closePidfd()
	if _, err := s.Kill(st.ctx, &taskapi.KillRequest{ID: "c1", ExecID: "e1", Signal: uint32(unix.SIGTERM)}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		waited <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("the exec ended with %v, want SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the exec did not get the signal")
	}
	st.deliver(cmd.Process.Pid, 143)
	_, err := s.Kill(st.ctx, &taskapi.KillRequest{ID: "c1", ExecID: "e1", Signal: 9})
	wantCode(t, "kill of an exited exec", err, codes.NotFound)
	if got := st.rt.calls(t); got != nil {
		t.Errorf("the runtime ran for an exec's kill: %q", got)
	}
}

func TestServiceWait(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s, c := st.s, st.c
	pid := fakePid(150)
	st.create(c, pid, nil)
	st.start(c, nil)

	ctx, cancel := context.WithTimeout(st.ctx, 50*time.Millisecond)
	defer cancel()
	_, err := s.Wait(ctx, &taskapi.WaitRequest{ID: "c1"})
	wantCode(t, "wait with a deadline", err, codes.DeadlineExceeded)

	type res struct {
		r   *taskapi.WaitResponse
		err error
	}
	done := make(chan res, 2)
	for range 2 {
		go func() {
			r, err := s.Wait(st.ctx, &taskapi.WaitRequest{ID: "c1"})
			done <- res{r, err}
		}()
	}
	select {
	case r := <-done:
		t.Fatalf("Wait returned before the exit: %v, %v", r.r, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	e := st.deliver(pid, 7)
	for range 2 {
		select {
		case r := <-done:
			if r.err != nil || r.r.ExitStatus != 7 || !r.r.ExitedAt.AsTime().Equal(e.At) {
				t.Errorf("Wait = %v, %v", r.r, r.err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Wait did not return after the exit")
		}
	}
	// After the exit, Wait returns at once.
	if r, err := s.Wait(st.ctx, &taskapi.WaitRequest{ID: "c1"}); err != nil || r.ExitStatus != 7 {
		t.Errorf("late Wait = %v, %v", r, err)
	}
}

func TestServiceDeleteExec(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s, c := st.s, st.c
	st.create(c, fakePid(160), nil)
	st.start(c, nil)
	for _, id := range []string{"added", "ran"} {
		if _, err := s.Exec(st.ctx, &taskapi.ExecProcessRequest{ID: "c1", ExecID: id, Spec: processAny(t, "sh")}); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	ran := c.execs["ran"]
	c.mu.Unlock()
	st.s.started(st.s.watchStart(), ran, fakePid(161))
	st.s.finishStart(ran)
	pidFile := filepath.Join(c.bundle, "ran.pid")
	os.WriteFile(pidFile, []byte(strconv.Itoa(fakePid(161))), 0o600)

	_, err := s.Delete(st.ctx, &taskapi.DeleteRequest{ID: "c1", ExecID: "ran"})
	wantCode(t, "delete of a running exec", err, codes.FailedPrecondition)

	if r, err := s.Delete(st.ctx, &taskapi.DeleteRequest{ID: "c1", ExecID: "added"}); err != nil || r.Pid != 0 {
		t.Errorf("delete of an exec never started: %v, %v", r, err)
	}
	e := st.deliver(fakePid(161), 3)
	r, err := s.Delete(st.ctx, &taskapi.DeleteRequest{ID: "c1", ExecID: "ran"})
	if err != nil || r.Pid != uint32(fakePid(161)) || r.ExitStatus != 3 || !r.ExitedAt.AsTime().Equal(e.At) {
		t.Errorf("delete of an exited exec: %v, %v", r, err)
	}
	for _, id := range []string{"added", "ran"} {
		_, err := s.State(st.ctx, &taskapi.StateRequest{ID: "c1", ExecID: id})
		wantCode(t, "state of deleted exec "+id, err, codes.NotFound)
		_, err = s.Delete(st.ctx, &taskapi.DeleteRequest{ID: "c1", ExecID: id})
		wantCode(t, "second delete of exec "+id, err, codes.NotFound)
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("exec pid file left: %v", err)
	}
	// The container itself is untouched.
	if _, err := s.State(st.ctx, &taskapi.StateRequest{ID: "c1"}); err != nil {
		t.Errorf("container state after exec deletes: %v", err)
	}
	if got := st.rt.calls(t); got != nil {
		t.Errorf("the runtime ran for exec deletes: %q", got)
	}
}

func TestServiceDeleteContainer(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s, c := st.s, st.c
	pid := fakePid(170)
	shutdowns := 0
	s.shutdown = func() { shutdowns++ }
	st.create(c, pid, nil)
	st.start(c, nil)

	_, err := s.Delete(st.ctx, &taskapi.DeleteRequest{ID: "c1"})
	wantCode(t, "delete of a running container", err, codes.FailedPrecondition)
	if _, err := s.Shutdown(st.ctx, &taskapi.ShutdownRequest{ID: "c1"}); err != nil || shutdowns != 0 {
		t.Errorf("Shutdown with a container: %v, %d shutdowns", err, shutdowns)
	}

	e := st.deliver(pid, 137)
	// The runtime fails: the delete can be retried.
	st.rt.set(t, "exit", "1")
	st.rt.set(t, "log-lines", `{"level":"error","msg":"unable to remove cgroup","time":"2026-01-01T00:00:00Z"}`+"\n")
	_, err = s.Delete(st.ctx, &taskapi.DeleteRequest{ID: "c1"})
	wantCode(t, "delete with a failing runtime", err, codes.Unknown)
	if err != nil && !strings.Contains(err.Error(), "unable to remove cgroup") {
		t.Errorf("error %q lacks the runtime's message", err)
	}
	// The runtime has already forgotten the container: that is success.
	st.rt.set(t, "log-lines", `{"level":"error","msg":"container does not exist","time":"2026-01-01T00:00:00Z"}`+"\n")
	r, err := s.Delete(st.ctx, &taskapi.DeleteRequest{ID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Pid != uint32(pid) || r.ExitStatus != 137 || !r.ExitedAt.AsTime().Equal(e.At) {
		t.Errorf("delete response %v", r)
	}
	got := st.rt.calls(t)
	if len(got) != 2 || !strings.HasSuffix(got[0], " delete c1") || !strings.HasSuffix(got[1], " delete c1") {
		t.Errorf("runtime calls %q, want delete c1 (no force) twice", got)
	}
	_, err = s.State(st.ctx, &taskapi.StateRequest{ID: "c1"})
	wantCode(t, "state after delete", err, codes.NotFound)
	st.expect("create(c1 pid="+strconv.Itoa(pid)+")", "start(c1 pid="+strconv.Itoa(pid)+")",
		"exit(c1/c1 pid="+strconv.Itoa(pid)+" status=137)", "delete(c1 pid="+strconv.Itoa(pid)+")")
	if _, err := s.Shutdown(st.ctx, &taskapi.ShutdownRequest{ID: "c1"}); err != nil || shutdowns != 1 {
		t.Errorf("Shutdown with no container: %v, %d shutdowns", err, shutdowns)
	}
}

func TestServicePids(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s, c := st.s, st.c
	initPid, execPid := fakePid(180), fakePid(181)
	st.create(c, initPid, nil)
	st.start(c, nil)
	st.exec(c, "e1", execPid, nil)
	st.rt.set(t, "stdout", "["+strconv.Itoa(initPid)+","+strconv.Itoa(execPid)+",7]")
	r, err := s.Pids(st.ctx, &taskapi.PidsRequest{ID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Processes) != 3 {
		t.Fatalf("processes %v", r.Processes)
	}
	for i, want := range []int{initPid, execPid, 7} {
		p := r.Processes[i]
		if p.Pid != uint32(want) {
			t.Errorf("process %d: pid %d, want %d", i, p.Pid, want)
		}
		if want != execPid {
			if p.Info != nil {
				t.Errorf("pid %d has info %v", want, p.Info)
			}
			continue
		}
		if p.Info.GetTypeUrl() != "containerd.runc.v1.ProcessDetails" {
			t.Errorf("exec info type %q", p.Info.GetTypeUrl())
		}
		v, err := typeurl.UnmarshalAny(p.Info)
		if d, ok := v.(*options.ProcessDetails); err != nil || !ok || d.ExecID != "e1" {
			t.Errorf("exec info %v, %v", v, err)
		}
	}
	if got := st.rt.calls(t); len(got) != 1 || !strings.HasSuffix(got[0], "ps --format json c1") {
		t.Errorf("runtime calls %q", got)
	}
	st.rt.set(t, "exit", "1")
	st.rt.set(t, "log-lines", `{"level":"error","msg":"container does not exist","time":"2026-01-01T00:00:00Z"}`+"\n")
	_, err = s.Pids(st.ctx, &taskapi.PidsRequest{ID: "c1"})
	wantCode(t, "pids of a container the runtime lost", err, codes.NotFound)
}

func TestServicePauseResume(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s, c := st.s, st.c
	pid := fakePid(190)
	st.create(c, pid, nil)
	st.start(c, nil)
	if _, err := s.Pause(st.ctx, &taskapi.PauseRequest{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.State(st.ctx, &taskapi.StateRequest{ID: "c1"}); r.Status != tasktypes.Status_PAUSED {
		t.Errorf("status %v after Pause", r.Status)
	}
	if _, err := s.Resume(st.ctx, &taskapi.ResumeRequest{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.State(st.ctx, &taskapi.StateRequest{ID: "c1"}); r.Status != tasktypes.Status_RUNNING {
		t.Errorf("status %v after Resume", r.Status)
	}
	st.rt.set(t, "exit", "1")
	_, err := s.Pause(st.ctx, &taskapi.PauseRequest{ID: "c1"})
	if err == nil {
		t.Fatal("Pause with a failing runtime succeeded")
	}
	if r, _ := s.State(st.ctx, &taskapi.StateRequest{ID: "c1"}); r.Status != tasktypes.Status_RUNNING {
		t.Errorf("status %v after a failed Pause", r.Status)
	}
	got := st.rt.calls(t)
	if len(got) != 3 || !strings.HasSuffix(got[0], "pause c1") || !strings.HasSuffix(got[1], "resume c1") || !strings.HasSuffix(got[2], "pause c1") {
		t.Errorf("runtime calls %q", got)
	}
	st.expect("create(c1 pid="+strconv.Itoa(pid)+")", "start(c1 pid="+strconv.Itoa(pid)+")", "paused(c1)", "resumed(c1)")
}

func TestServiceUpdate(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s := st.s
	_, err := s.Update(st.ctx, &taskapi.UpdateTaskRequest{ID: "c1"})
	wantCode(t, "update without resources", err, codes.InvalidArgument)
	_, err = s.Update(st.ctx, &taskapi.UpdateTaskRequest{ID: "c1", Resources: &anypb.Any{TypeUrl: "x", Value: []byte("{")}})
	wantCode(t, "update with broken resources", err, codes.InvalidArgument)
	limit := int64(100)
	b, _ := json.Marshal(specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}})
	st.rt.set(t, "read-stdin", "")
	if _, err := s.Update(st.ctx, &taskapi.UpdateTaskRequest{ID: "c1", Resources: &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources", Value: b}}); err != nil {
		t.Fatal(err)
	}
	in, _ := os.ReadFile(filepath.Join(st.rt.dir, "stdin"))
	var got specs.LinuxResources
	if err := json.Unmarshal(in, &got); err != nil || got.Pids == nil || *got.Pids.Limit != 100 {
		t.Errorf("runtime got resources %s (%v)", in, err)
	}
	if calls := st.rt.calls(t); len(calls) != 1 || !strings.HasSuffix(calls[0], "update --resources - c1") {
		t.Errorf("runtime calls %q", calls)
	}
}

func TestServiceMisc(t *testing.T) {
	t.Parallel()
	st := newServiceTest(t)
	s, c := st.s, st.c
	pid := fakePid(200)
	st.create(c, pid, nil)

	r, err := s.Connect(st.ctx, &taskapi.ConnectRequest{ID: "c1"})
	if err != nil || r.ShimPid != uint32(os.Getpid()) || r.TaskPid != uint32(pid) || r.Version == "" {
		t.Errorf("Connect = %v, %v", r, err)
	}
	if r, err := s.Connect(st.ctx, &taskapi.ConnectRequest{ID: "nope"}); err != nil || r.TaskPid != 0 {
		t.Errorf("Connect for an unknown id = %v, %v", r, err)
	}
	_, err = s.Checkpoint(st.ctx, &taskapi.CheckpointTaskRequest{ID: "c1"})
	wantCode(t, "checkpoint", err, codes.Unimplemented)
	_, err = s.ResizePty(st.ctx, &taskapi.ResizePtyRequest{ID: "c1", Width: 80, Height: 24})
	wantCode(t, "resize without stdio", err, codes.FailedPrecondition)
	if _, err := s.CloseIO(st.ctx, &taskapi.CloseIORequest{ID: "c1", Stdin: true}); err != nil {
		t.Errorf("CloseIO without stdio: %v", err)
	}
	_, err = s.Stats(st.ctx, &taskapi.StatsRequest{ID: "c1"})
	wantCode(t, "stats without a cgroup", err, codes.NotFound)
}
