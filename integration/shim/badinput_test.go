package shim_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/runc/options"
	"google.golang.org/grpc/codes"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestBadCreate: Create fails with an error of the reference's category
// for a missing bundle dir, a broken config.json and a runtime binary that
// does not exist, and leaves no process, mount, cgroup or runtime state;
// the shim still answers and shuts down.
func TestBadCreate(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		cases := []struct {
			name string
			// prepare runs after start and before Create; it may
			// change the request or the bundle.
			prepare func(t *testing.T, b *bundle, req *taskapi.CreateTaskRequest)
			opts    func(o *options.Options)
			codes   []codes.Code
		}{
			{
				name: "missing-bundle",
				prepare: func(t *testing.T, b *bundle, req *taskapi.CreateTaskRequest) {
					req.Bundle = filepath.Join(filepath.Dir(b.Dir), "no-such-bundle")
				},
				// containerd-shim-runc-v2: NotFound ("mkdir
				// <bundle>/rootfs: no such file or directory").
				codes: []codes.Code{codes.NotFound},
			},
			{
				name: "broken-config",
				prepare: func(t *testing.T, b *bundle, req *taskapi.CreateTaskRequest) {
					if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), []byte(`{"ociVersion": "1.0.2", "process": {`), 0o644); err != nil {
						t.Fatal(err)
					}
				},
				// containerd-shim-runc-v2: Unknown ("OCI runtime
				// create failed: runc create failed: unexpected EOF");
				// xshim reads the config itself and says
				// InvalidArgument.
				codes: []codes.Code{codes.Unknown, codes.InvalidArgument},
			},
			{
				name: "unknown-runtime",
				opts: func(o *options.Options) { o.BinaryName = "/nonexistent" },
				// containerd-shim-runc-v2: Unknown ("OCI runtime
				// create failed: ... fork/exec /nonexistent: no such
				// file or directory"); xshim looks the binary up
				// first and says FailedPrecondition.
				codes: []codes.Code{codes.Unknown, codes.FailedPrecondition},
			},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				b := e.newBundle(t, newID(tc.name))
				o := e.opts()
				if tc.opts != nil {
					tc.opts(o)
				}
				s, err := e.tryStartShim(t, b, o)
				if err != nil {
					t.Fatalf("start: %v", err)
				}
				req := s.createReq(nil, false)
				if tc.prepare != nil {
					tc.prepare(t, b, req)
				}
				snapMounts := mountsUnder(e.dir)
				_, err = s.tryCreate(req)
				wantCode(t, "Create", err, tc.codes...)
				// Nothing is left of the failed Create.
				if m := mountsUnder(e.dir); len(m) != len(snapMounts) {
					t.Errorf("mounts after a failed Create: %q (before: %q)", m, snapMounts)
				}
				if dirs := testenv.CgroupDirsUnder(b.CgroupsPath); len(dirs) > 0 {
					t.Errorf("cgroups left by a failed Create: %q", dirs)
				}
				if exists(e.runtimeStateDir(b.ID)) {
					t.Errorf("runtime state left by a failed Create: %s", e.runtimeStateDir(b.ID))
				}
				time.Sleep(100 * time.Millisecond)
				for _, pid := range testenv.ProcsUsing(b.Dir, b.CgroupsPath) {
					if pid != s.pid {
						t.Errorf("process %d left by a failed Create: %s", pid, procCmdline(pid))
					}
				}
				// The shim still answers, knows no task, and shuts down.
				_, err = s.state("")
				wantCode(t, "State after a failed Create", err, codes.NotFound)
				s.shutdownShim(t)
				if !waitGone(s.pid, 5*time.Second) {
					t.Errorf("shim %d still running after Shutdown", s.pid)
				}
				r := s.cmd.runDelete()
				t.Logf("delete after a failed Create: %s", r)
			})
		}
	})
}

// TestUnknownID: the task API on an id the shim does not serve, and on
// processes that do not exist, is NotFound.
func TestUnknownID(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		b := e.newBundle(t, newID("known"))
		s := e.startShim(t, b)
		s.run(t, nil)
		const id = "no-such-id"
		ctx, cancel := s.ctx()
		defer cancel()
		_, err := s.task.Start(ctx, &taskapi.StartRequest{ID: id})
		wantCode(t, "Start", err, codes.NotFound)
		_, err = s.task.State(ctx, &taskapi.StateRequest{ID: id})
		wantCode(t, "State", err, codes.NotFound)
		_, err = s.task.Kill(ctx, &taskapi.KillRequest{ID: id, Signal: uint32(syscall.SIGKILL)})
		wantCode(t, "Kill", err, codes.NotFound)
		_, err = s.task.Delete(ctx, &taskapi.DeleteRequest{ID: id})
		wantCode(t, "Delete", err, codes.NotFound)
		_, err = s.task.Wait(ctx, &taskapi.WaitRequest{ID: id})
		wantCode(t, "Wait", err, codes.NotFound)
		_, err = s.task.Pids(ctx, &taskapi.PidsRequest{ID: id})
		wantCode(t, "Pids", err, codes.NotFound)
		_, err = s.task.Wait(ctx, &taskapi.WaitRequest{ID: b.ID, ExecID: "no-such-exec"})
		wantCode(t, "Wait for an unknown exec", err, codes.NotFound)
		_, err = s.task.Delete(ctx, &taskapi.DeleteRequest{ID: b.ID})
		if err == nil {
			t.Errorf("Delete of a running init: no error")
		} else {
			t.Logf("Delete of a running init: %v (code %v)", err, codeOf(err))
		}
	})
}
