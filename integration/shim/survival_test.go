package shim_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/task"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestDaemonDeath: the shims outlive the daemon that started them. A
// helper process plays containerd (events server, log FIFO readers, start,
// Create, Start) and is SIGKILLed with its process group. Then:
// the containers keep running, the shims are reparented (to pid 1 or a
// subreaper above the test), a new client that reads the bundle's
// `address` file gets State RUNNING and can Kill, Wait and Delete; and a
// container that exits while no client is connected keeps its exit status
// until Delete (Wait after reconnecting returns it).
func TestDaemonDeath(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		live := e.newBundle(t, newID("live"), withArgs("/bin/sleep", "3600"))
		exit := e.newBundle(t, newID("exit"), withLocalRootfs(t),
			withArgs("/bin/sh", "-c", "while [ ! -e /go ]; do sleep 0.05; done; exit 7"))
		// The containerd side for the reconnection; the log FIFOs get a
		// reader from the test only after the "restart", so the shims
		// meanwhile write their logs into FIFOs nobody reads (EPIPE; a
		// shim that does not handle SIGPIPE dies of it).
		sLive := e.newShimNoLog(t, live, e.opts())
		sExit := e.newShimNoLog(t, exit, e.opts())

		// The helper serves the events itself, on the same $TTRPC_ADDRESS.
		e.events.Close()
		d := e.startDaemonHelper(t, live, exit)
		rLive, rExit := d.reports[live.ID], d.reports[exit.ID]
		for _, r := range []daemonReport{rLive, rExit} {
			sh := map[string]*shim{live.ID: sLive, exit.ID: sExit}[r.ID]
			sh.addr = r.Address
			sh.pid = r.ShimPid
			sh.created = true
			sh.track(r.ShimPid)
			sh.track(r.InitPid)
			if pp := procPPid(r.ShimPid); pp == d.cmd.Process.Pid {
				t.Errorf("shim %d is a child of the daemon (%d): start did not daemonize it", r.ShimPid, pp)
			}
		}
		helperPid := d.cmd.Process.Pid
		d.kill()

		// Containerd is gone: let the shims notice (closed connections,
		// no events server, no reader on the log FIFO).
		time.Sleep(500 * time.Millisecond)
		for _, r := range []daemonReport{rLive, rExit} {
			if !alive(r.ShimPid) {
				t.Fatalf("shim %d of %s died with the daemon", r.ShimPid, r.ID)
			}
			if !alive(r.InitPid) {
				t.Fatalf("init %d of %s died with the daemon", r.InitPid, r.ID)
			}
			pp := procPPid(r.ShimPid)
			if pp == helperPid || (pp != 1 && !isAncestor(pp)) {
				t.Errorf("shim %d has ppid %d (%s), want 1 or a subreaper above the test", r.ShimPid, pp, procCmdline(pp))
			}
		}

		// The second container exits while nobody is connected.
		if err := os.WriteFile(filepath.Join(exit.Dir, "rootfs", "go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if !waitGone(rExit.InitPid, exitTimeout) {
			t.Fatalf("init %d did not exit", rExit.InitPid)
		}
		time.Sleep(300 * time.Millisecond)
		if !alive(rExit.ShimPid) {
			t.Fatalf("shim %d died when its container exited with no daemon", rExit.ShimPid)
		}

		// "containerd" restarts: a new events server at the same path,
		// new log readers, and clients that find the shims through the
		// bundle's address file.
		os.Remove(e.ttrpcAddr)
		ev, err := newEventServer(e.ttrpcAddr)
		if err != nil {
			t.Fatal(err)
		}
		e.events = ev
		for _, s := range []*shim{sLive, sExit} {
			s.openLog(t)
			b, err := os.ReadFile(filepath.Join(s.b.Dir, "address"))
			if err != nil {
				t.Fatalf("address file: %v", err)
			}
			addr := strings.TrimSpace(string(b))
			if addr != s.addr {
				t.Errorf("%s: address file %q, start printed %q", s.b.ID, addr, s.addr)
			}
			if err := s.attach(addr); err != nil {
				t.Fatalf("reconnect to %s: %v", s.b.ID, err)
			}
		}
		if sLive.connect.TaskPid != uint32(rLive.InitPid) || sLive.connect.ShimPid != uint32(rLive.ShimPid) {
			t.Errorf("Connect after reconnect: shim %d task %d, want %d %d", sLive.connect.ShimPid, sLive.connect.TaskPid, rLive.ShimPid, rLive.InitPid)
		}

		st := sLive.mustState(t, "")
		if st.Status != task.Status_RUNNING || st.Pid != uint32(rLive.InitPid) {
			t.Errorf("State after reconnect: %v pid %d, want RUNNING %d", st.Status, st.Pid, rLive.InitPid)
		}
		if err := sLive.kill("", syscall.SIGKILL, false); err != nil {
			t.Fatalf("Kill after reconnect: %v", err)
		}
		if w := sLive.mustWait(t, ""); w.ExitStatus != 137 {
			t.Errorf("Wait after reconnect: %d, want 137", w.ExitStatus)
		}
		if dr := sLive.mustDelete(t, ""); dr.ExitStatus != 137 {
			t.Errorf("Delete after reconnect: %d, want 137", dr.ExitStatus)
		}
		sLive.shutdownShim(t)

		st = sExit.mustState(t, "")
		if st.Status != task.Status_STOPPED || st.ExitStatus != 7 {
			t.Errorf("State of the container that exited while no client was connected: %v %d, want STOPPED 7", st.Status, st.ExitStatus)
		}
		w := sExit.mustWait(t, "")
		if w.ExitStatus != 7 {
			t.Errorf("Wait after reconnect: %d, want the exit status 7 kept while no client was connected", w.ExitStatus)
		}
		if dr := sExit.mustDelete(t, ""); dr.ExitStatus != 7 || !dr.ExitedAt.AsTime().Equal(w.ExitedAt.AsTime()) {
			t.Errorf("Delete: status %d exited_at %v, want 7 %v", dr.ExitStatus, dr.ExitedAt.AsTime(), w.ExitedAt.AsTime())
		}
		sExit.shutdownShim(t)
		// Events are best effort: whether the exit published while the
		// daemon was down is redelivered is only recorded.
		for _, ev := range eventsFor(e.events.Events(), exit.ID) {
			t.Logf("after restart: %s", ev)
		}
	})
}

// TestShimKilled: after the shim is SIGKILLed, `<shim> ... -bundle B
// delete` cleans up what it made (the runtime's state, the rootfs mount,
// the container's processes), prints a DeleteResponse with exit status
// 137, and can run again (idempotent).
func TestShimKilled(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		b := e.newBundle(t, newID("killed"), withArgs("/bin/sleep", "3600"))
		s := e.startShim(t, b)
		pid := s.run(t, nil)
		rootfs := filepath.Join(b.Dir, "rootfs")
		if !isMounted(rootfs) {
			t.Errorf("%s not mounted while the container runs", rootfs)
		}
		if !exists(e.runtimeStateDir(b.ID)) {
			t.Errorf("no runtime state at %s while the container runs", e.runtimeStateDir(b.ID))
		}
		if err := syscall.Kill(s.pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if !waitGone(s.pid, 5*time.Second) {
			t.Fatalf("shim %d survived SIGKILL", s.pid)
		}
		s.closeClient()
		t.Logf("container init %d after the shim's death: alive=%v", pid, alive(int(pid)))

		for i := 1; i <= 2; i++ {
			r := s.cmd.runDelete()
			t.Logf("delete #%d: %s", i, r)
			if r.Code != 0 || r.Resp == nil {
				t.Fatalf("delete #%d after the shim was killed: %s", i, r)
			}
			if r.Resp.ExitStatus != 137 {
				t.Errorf("delete #%d: exit_status %d, want 137", i, r.Resp.ExitStatus)
			}
			if r.Resp.ExitedAt == nil || r.Resp.ExitedAt.AsTime().Unix() <= 0 {
				t.Errorf("delete #%d: exited_at %v not set", i, r.Resp.ExitedAt)
			}
			if i == 1 {
				if r.Resp.Pid != pid {
					t.Logf("delete #1: pid %d (init was %d)", r.Resp.Pid, pid)
				}
				if !waitGone(int(pid), 5*time.Second) {
					t.Errorf("container init %d still alive after delete", pid)
				}
				if exists(e.runtimeStateDir(b.ID)) {
					t.Errorf("runtime state %s left after delete", e.runtimeStateDir(b.ID))
				}
				if isMounted(rootfs) {
					t.Errorf("%s still mounted after delete", rootfs)
				}
				if dirs := testenv.CgroupDirsUnder(b.CgroupsPath); len(dirs) > 0 {
					t.Logf("cgroup dirs after delete: %q", dirs)
				}
				t.Logf("socket %s after delete: exists=%v", socketPath(s.addr), exists(socketPath(s.addr)))
			}
		}
	})
}

// alive reports whether pid runs (not gone, not a zombie).
func alive(pid int) bool {
	return testenv.ProcAlive(pid)
}

// isAncestor reports whether pid is an ancestor of the test process.
func isAncestor(pid int) bool {
	for p := os.Getppid(); p > 1; p = procPPid(p) {
		if p == pid {
			return true
		}
	}
	return false
}
