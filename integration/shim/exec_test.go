package shim_test

import (
	"sort"
	"syscall"
	"testing"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/grpc/codes"
)

// TestExec: Exec records a process (CREATED, not started), Start runs it,
// Wait gets its exit code, State and Delete of the exec report it, and
// Delete forgets it. Duplicate exec ids are AlreadyExists, exec into an
// unknown container is NotFound. Pids lists the init and the exec, the
// exec's info being containerd.runc.v1.ProcessDetails{exec_id}. Exec
// stdin, stdout and stderr go through their FIFOs.
func TestExec(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		b := e.newBundle(t, newID("exec"))
		s := e.startShim(t, b)
		initPid := s.run(t, nil)

		t.Run("exit-code", func(t *testing.T) {
			io := e.newStdio(t, false, true, true)
			s.exec(t, "e1", io, false, "/bin/sh", "-c", "echo exec-out; echo exec-err >&2; exit 5")
			st := s.mustState(t, "e1")
			// containerd-shim-runc-v2 1.6 leaves StateResponse.exec_id
			// empty; the exec's own id is fine too.
			if st.Status != task.Status_CREATED || (st.ExecID != "" && st.ExecID != "e1") {
				t.Errorf("State of e1 before Start: %v exec_id %q, want CREATED", st.Status, st.ExecID)
			}
			if st.Pid != 0 {
				t.Logf("State of e1 before Start: pid %d", st.Pid)
			}
			pid := s.startTask(t, "e1")
			if pid == 0 || pid == initPid {
				t.Fatalf("Start e1: pid %d (init %d)", pid, initPid)
			}
			w := s.mustWait(t, "e1")
			if w.ExitStatus != 5 {
				t.Errorf("Wait e1: %d, want 5", w.ExitStatus)
			}
			io.waitOut(t, "exec-out\n")
			io.waitErr(t, "exec-err\n")
			st = s.mustState(t, "e1")
			if st.Status != task.Status_STOPPED || st.ExitStatus != 5 || st.Pid != pid {
				t.Errorf("State of e1 after exit: %v status %d pid %d, want STOPPED 5 %d", st.Status, st.ExitStatus, st.Pid, pid)
			}
			if init := s.mustState(t, ""); init.Status != task.Status_RUNNING {
				t.Errorf("init is %v after the exec exited, want RUNNING", init.Status)
			}
			d := s.mustDelete(t, "e1")
			if d.ExitStatus != 5 || d.Pid != pid {
				t.Errorf("Delete e1: pid %d status %d, want %d 5", d.Pid, d.ExitStatus, pid)
			}
			_, err := s.state("e1")
			wantCode(t, "State of a deleted exec", err, codes.NotFound)
			_, err = s.deleteTask("e1")
			wantCode(t, "Delete of a deleted exec", err, codes.NotFound)
		})

		t.Run("stdin", func(t *testing.T) {
			io := e.newStdio(t, true, true, true)
			s.exec(t, "cat", io, false, "/bin/cat")
			s.startTask(t, "cat")
			io.write(t, "to the exec\n")
			io.waitOut(t, "to the exec\n")
			io.closeStdin()
			ctx, cancel := s.ctx()
			_, err := s.task.CloseIO(ctx, &taskapi.CloseIORequest{ID: b.ID, ExecID: "cat", Stdin: true})
			cancel()
			if err != nil {
				t.Fatalf("CloseIO of an exec: %v", err)
			}
			if w := s.mustWait(t, "cat"); w.ExitStatus != 0 {
				t.Errorf("exec cat: exit %d after CloseIO, want 0", w.ExitStatus)
			}
			s.mustDelete(t, "cat")
		})

		t.Run("duplicate-and-pids", func(t *testing.T) {
			s.exec(t, "e2", nil, false, "/bin/sleep", "3600")
			err := s.tryExec(t, "e2", nil, false, "/bin/true")
			wantCode(t, "Exec with a duplicate exec id", err, codes.AlreadyExists)
			pid := s.startTask(t, "e2")
			ctx, cancel := s.ctx()
			pr, err := s.task.Pids(ctx, &taskapi.PidsRequest{ID: b.ID})
			cancel()
			if err != nil {
				t.Fatalf("Pids: %v", err)
			}
			got := map[uint32]string{}
			var list []uint32
			for _, p := range pr.Processes {
				list = append(list, p.Pid)
				got[p.Pid] = "<no info>"
				if p.Info != nil {
					v, err := typeurl.UnmarshalAny(p.Info)
					if err != nil {
						t.Errorf("Pids: info of %d (%s): %v", p.Pid, p.Info.GetTypeUrl(), err)
						continue
					}
					d, ok := v.(*options.ProcessDetails)
					if !ok {
						t.Errorf("Pids: info of %d is %T, want containerd.runc.v1.ProcessDetails", p.Pid, v)
						continue
					}
					got[p.Pid] = "exec:" + d.ExecID
				}
			}
			sort.Slice(list, func(i, j int) bool { return list[i] < list[j] })
			t.Logf("Pids: %v %v", list, got)
			if _, ok := got[initPid]; !ok {
				t.Errorf("Pids %v: init pid %d missing", list, initPid)
			}
			if got[pid] != "exec:e2" {
				t.Errorf("Pids: exec pid %d has info %q, want ProcessDetails{exec_id: e2}", pid, got[pid])
			}
			if err := s.kill("e2", syscall.SIGKILL, false); err != nil {
				t.Fatalf("Kill e2: %v", err)
			}
			if w := s.mustWait(t, "e2"); w.ExitStatus != 137 {
				t.Errorf("Wait e2 after SIGKILL: %d, want 137", w.ExitStatus)
			}
			s.mustDelete(t, "e2")
		})

		t.Run("unknown-container", func(t *testing.T) {
			req := &taskapi.ExecProcessRequest{ID: "no-such-container", ExecID: "x", Spec: s.execSpec(t, false, "/bin/true")}
			ctx, cancel := s.ctx()
			_, err := s.task.Exec(ctx, req)
			cancel()
			wantCode(t, "Exec into an unknown container", err, codes.NotFound)
			_, err = s.state("no-such-exec")
			wantCode(t, "State of an unknown exec", err, codes.NotFound)
			ctx, cancel = s.ctx()
			_, err = s.task.Start(ctx, &taskapi.StartRequest{ID: b.ID, ExecID: "no-such-exec"})
			cancel()
			wantCode(t, "Start of an unknown exec", err, codes.NotFound)
		})
	})
}
