package shimmgr

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	task "github.com/containerd/containerd/api/runtime/task/v2"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/events"
)

const (
	rpcTimeout  = 30 * time.Second
	exitTimeout = 20 * time.Second
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startShim starts a shim for a new bundle running args, and registers a
// cleanup that kills, deletes, shuts down and cleans up whatever the test
// left, as xd would.
func (e *env) startShim(t *testing.T, id string, args ...string) (*Shim, string) {
	t.Helper()
	bundle := e.newBundle(t, id, args...)
	s, err := e.m.Start(ctxT(t), testNS, id, bundle, e.rt, e.opts())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	e.track(s.Pid(), "shim of "+id)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
		defer cancel()
		live := s
		select {
		case <-s.Done():
			// The test closed or shut down the client: re-attach if the
			// shim is still there.
			live, _ = e.m.Load(ctx, testNS, id, bundle)
		default:
		}
		if live != nil {
			live.Task().Kill(ctx, &task.KillRequest{ID: id, Signal: uint32(unix.SIGKILL), All: true})
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			live.Task().Wait(wctx, &task.WaitRequest{ID: id})
			wcancel()
			live.Task().Delete(ctx, &task.DeleteRequest{ID: id})
			live.Shutdown(ctx)
		}
		if _, err := e.m.Cleanup(ctx, testNS, id, bundle); err != nil {
			t.Logf("cleanup of %s: %v", id, err)
		}
	})
	return s, bundle
}

// createStart sends Create and Start and returns the init's pid.
func (e *env) createStart(t *testing.T, s *Shim) uint32 {
	t.Helper()
	ctx := ctxT(t)
	cr, err := s.Task().Create(ctx, &task.CreateTaskRequest{
		ID: s.ID(), Bundle: s.Bundle(), Rootfs: e.rootfsMounts(), Options: e.optsAny(t),
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	e.track(int(cr.Pid), "init of "+s.ID())
	sr, err := s.Task().Start(ctx, &task.StartRequest{ID: s.ID()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if sr.Pid != cr.Pid {
		t.Errorf("Start pid %d, Create pid %d", sr.Pid, cr.Pid)
	}
	return sr.Pid
}

func wait(t *testing.T, s *Shim) *task.WaitResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exitTimeout)
	defer cancel()
	r, err := s.Task().Wait(ctx, &task.WaitRequest{ID: s.ID()})
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return r
}

// shutdown sends Shutdown and checks Done closes and the shim exits.
func shutdown(t *testing.T, s *Shim) {
	t.Helper()
	if err := s.Shutdown(ctxT(t)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after Shutdown")
	}
	if !exited(s.Pid(), 5*time.Second) {
		t.Errorf("shim %d still running 5s after Shutdown", s.Pid())
	}
}

// cleanupTwice runs Cleanup twice; both must succeed with a response.
func cleanupTwice(t *testing.T, e *env, s *Shim) *task.DeleteResponse {
	t.Helper()
	var first *task.DeleteResponse
	for i := range 2 {
		r, err := e.m.Cleanup(ctxT(t), testNS, s.ID(), s.Bundle())
		if err != nil {
			t.Fatalf("Cleanup #%d: %v", i+1, err)
		}
		if r == nil || r.ExitedAt == nil {
			t.Fatalf("Cleanup #%d: response %v", i+1, r)
		}
		if i == 0 {
			first = r
		}
	}
	return first
}

func TestLifecycle(t *testing.T) {
	forEachShim(t, func(t *testing.T, e *env) {
		t.Run("exit", func(t *testing.T) {
			id := "exit-" + randHex(t)
			s, bundle := e.startShim(t, id, "/bin/sh", "-c", "exit 3")
			if s.ID() != id || s.Namespace() != testNS || s.Bundle() != bundle || !strings.HasPrefix(s.Address(), "unix://") {
				t.Errorf("Shim: id %q ns %q bundle %q address %q", s.ID(), s.Namespace(), s.Bundle(), s.Address())
			}
			for _, f := range []string{"address", "shim-binary-path"} {
				if _, err := os.Stat(filepath.Join(bundle, f)); err != nil {
					t.Errorf("bundle file %s: %v", f, err)
				}
			}
			if b, _ := os.ReadFile(filepath.Join(bundle, "shim-binary-path")); string(b) != e.rt.Shim {
				t.Errorf("shim-binary-path %q, want %q", b, e.rt.Shim)
			}
			pid := e.createStart(t, s)
			w := wait(t, s)
			if w.ExitStatus != 3 {
				t.Errorf("Wait: exit status %d, want 3", w.ExitStatus)
			}
			d, err := s.Task().Delete(ctxT(t), &task.DeleteRequest{ID: id})
			if err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if d.ExitStatus != 3 || d.Pid != pid {
				t.Errorf("Delete: %v, want status 3 pid %d", d, pid)
			}
			evs := e.events.waitTopics(t, id, events.TopicTaskCreate, events.TopicTaskStart, events.TopicTaskExit)
			if evs[2].ExitStatus != 3 || evs[2].Pid != pid || evs[2].ExecId != "" || evs[2].ExitedAt == nil || evs[2].Timestamp == nil {
				t.Errorf("exit event %v, want status 3 pid %d", evs[2], pid)
			}
			shutdown(t, s)
			r := cleanupTwice(t, e, s)
			t.Logf("delete after shutdown: %v", r)
			if _, err := os.Stat(socketOf(s)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("shim socket %s: %v, want gone", socketOf(s), err)
			}
		})
		t.Run("kill", func(t *testing.T) {
			id := "kill-" + randHex(t)
			s, _ := e.startShim(t, id, "/bin/sleep", "60")
			pid := e.createStart(t, s)
			st, err := s.Task().State(ctxT(t), &task.StateRequest{ID: id})
			if err != nil || st.Status != tasktypes.Status_RUNNING || st.Pid != pid {
				t.Fatalf("State: %v, %v; want RUNNING pid %d", st, err, pid)
			}
			if _, err := s.Task().Kill(ctxT(t), &task.KillRequest{ID: id, Signal: uint32(unix.SIGKILL)}); err != nil {
				t.Fatalf("Kill: %v", err)
			}
			if w := wait(t, s); w.ExitStatus != 137 {
				t.Errorf("Wait: exit status %d, want 137", w.ExitStatus)
			}
			if _, err := s.Task().Delete(ctxT(t), &task.DeleteRequest{ID: id}); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			shutdown(t, s)
			cleanupTwice(t, e, s)
			if out, err := e.runtimeState(id); err == nil || !strings.Contains(out, "does not exist") {
				t.Errorf("xrunc state after delete: %v: %s", err, out)
			}
		})
	})
}

// TestLoad closes the client only, as an exiting xd does, and re-attaches.
func TestLoad(t *testing.T) {
	forEachShim(t, func(t *testing.T, e *env) {
		id := "load-" + randHex(t)
		s, bundle := e.startShim(t, id, "/bin/sleep", "60")
		pid := e.createStart(t, s)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed after Close")
		}
		if !alive(s.Pid()) {
			t.Fatal("shim exited when the client closed")
		}
		l, err := e.m.Load(ctxT(t), testNS, id, bundle)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if l.Pid() != s.Pid() || l.Address() != s.Address() {
			t.Errorf("Load: shim pid %d address %s, want %d %s", l.Pid(), l.Address(), s.Pid(), s.Address())
		}
		st, err := l.Task().State(ctxT(t), &task.StateRequest{ID: id})
		if err != nil || st.Status != tasktypes.Status_RUNNING || st.Pid != pid {
			t.Fatalf("State after Load: %v, %v; want RUNNING pid %d", st, err, pid)
		}
		if _, err := l.Task().Kill(ctxT(t), &task.KillRequest{ID: id, Signal: uint32(unix.SIGKILL)}); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if w := wait(t, l); w.ExitStatus != 137 {
			t.Errorf("Wait: exit status %d, want 137", w.ExitStatus)
		}
		if _, err := l.Task().Delete(ctxT(t), &task.DeleteRequest{ID: id}); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		shutdown(t, l)
		cleanupTwice(t, e, l)
	})
}

// TestDeadShim SIGKILLs a shim with a running container: Load reports it
// dead and Cleanup removes the container, its runtime state, rootfs mount
// and the shim's socket.
func TestDeadShim(t *testing.T) {
	forEachShim(t, func(t *testing.T, e *env) {
		id := "dead-" + randHex(t)
		s, bundle := e.startShim(t, id, "/bin/sleep", "60")
		pid := e.createStart(t, s)
		if out, err := e.runtimeState(id); err != nil {
			t.Fatalf("xrunc state: %v: %s", err, out)
		}
		if err := unix.Kill(s.Pid(), unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed after the shim was killed")
		}
		if !exited(s.Pid(), 5*time.Second) {
			t.Fatal("shim still alive after SIGKILL")
		}
		s.Close()
		_, err := e.m.Load(ctxT(t), testNS, id, bundle)
		if !errors.Is(err, ErrShimDead) {
			t.Fatalf("Load of a dead shim: %v, want ErrShimDead", err)
		}
		t.Logf("Load: %v", err)
		if n := e.m.readers(); n != 0 {
			t.Errorf("%d log readers after a failed Load", n)
		}
		r := cleanupTwice(t, e, s)
		if r.ExitStatus != 137 {
			t.Errorf("Cleanup: exit status %d, want 137", r.ExitStatus)
		}
		t.Logf("Cleanup: %v (init pid %d)", r, pid)
		if _, err := os.Lstat(socketOf(s)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("shim socket %s: %v, want removed", socketOf(s), err)
		}
		if out, err := e.runtimeState(id); err == nil || !strings.Contains(out, "does not exist") {
			t.Errorf("xrunc state after Cleanup: %v: %s", err, out)
		}
		if !exited(int(pid), 5*time.Second) {
			t.Errorf("container init %d still running after Cleanup", pid)
		}
		if m := mountsUnder(bundle); len(m) > 0 {
			t.Errorf("mounts left after Cleanup: %q", m)
		}
		if _, err := e.m.Load(ctxT(t), testNS, id, bundle); !errors.Is(err, ErrShimDead) {
			t.Errorf("Load after Cleanup: %v, want ErrShimDead", err)
		}
	})
}

// TestStartFailure: a shim that fails or prints garbage leaves nothing
// behind; bad arguments are refused before anything runs.
func TestStartFailure(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "badshim")
	// A shim that prints garbage for start and fails delete.
	script := "#!/bin/sh\ncase \"$*\" in *start) echo not-an-address;; *) echo nope >&2; exit 1;; esac\n"
	if err := os.WriteFile(bad, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	m := &Manager{Address: filepath.Join(dir, "xd.sock"), PublishBinary: "/nonexistent"}
	mk := func(id string) string {
		b := filepath.Join(dir, testNS, id)
		if err := os.MkdirAll(b, 0o700); err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name, id, bundle string
		rt               Runtime
	}{
		{"garbage output", "c1", mk("c1"), Runtime{Shim: bad}},
		{"shim fails", "c2", mk("c2"), Runtime{Shim: "/bin/false"}},
		{"no such shim", "c3", mk("c3"), Runtime{Shim: "/nonexistent/shim"}},
		{"relative shim", "c4", mk("c4"), Runtime{Shim: "xshim"}},
		{"bundle not named after id", "c5", mk("other"), Runtime{Shim: bad}},
		{"no namespace", "", mk("c6"), Runtime{Shim: bad}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := m.Start(ctxT(t), testNS, tc.id, tc.bundle, tc.rt, nil)
			if err == nil {
				s.Close()
				t.Fatal("Start succeeded")
			}
			t.Logf("Start: %v", err)
			if n := m.readers(); n != 0 {
				t.Errorf("%d log readers left", n)
			}
		})
	}
	// Cleanup of a bundle that does not exist, or has no shim recorded.
	for _, b := range []string{filepath.Join(dir, "missing", "c9"), mk("c10")} {
		r, err := m.Cleanup(ctxT(t), testNS, filepath.Base(b), b)
		if err != nil || r == nil || r.ExitStatus != 137 || r.Pid != 0 {
			t.Errorf("Cleanup(%s) = %v, %v; want status 137 pid 0", b, r, err)
		}
	}
}

// socketOf is the path of a shim's socket.
func socketOf(s *Shim) string {
	return strings.TrimPrefix(s.Address(), "unix://")
}
