package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestExeNotHostInode: the created init runs from a private read-only
// overlayfs view of the runtime binary (or, where that is refused, a
// sealed memfd copy), never from the binary's own inode.
func TestExeNotHostInode(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		rt.SkipIf(t, "runc", "runc 1.1.5 runs init from a detached read-only bind mount of its own binary (same inode; TestExeSealed covers it)")
		var host, exe syscall.Stat_t
		if err := syscall.Stat(rt.Path, &host); err != nil {
			t.Fatal(err)
		}
		c := rt.Create(t, testenv.NewBundle(t))
		pid := c.Pid(t)
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/exe", pid), &exe); err != nil {
			t.Fatal(err)
		}
		if exe.Dev == host.Dev && exe.Ino == host.Ino {
			t.Errorf("created init runs from the host runtime binary's inode (dev %d ino %d)", exe.Dev, exe.Ino)
		}
		var fs syscall.Statfs_t
		if err := syscall.Statfs(fmt.Sprintf("/proc/%d/exe", pid), &fs); err != nil {
			t.Fatal(err)
		}
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		const overlayfs, readOnly = 0x794c7630, 1 // OVERLAYFS_SUPER_MAGIC, ST_RDONLY
		if rt.Is("xrunc") && (fs.Type != overlayfs || fs.Flags&readOnly == 0) {
			t.Errorf("init exe %q is not on a read-only overlayfs (fs %#x flags %#x)", link, fs.Type, fs.Flags)
		}
	})
}

// TestOnlyStdioFds: only fds 0-2 (plus --preserve-fds) reach the
// container's processes (the created init's own fds are the CVE suite's:
// integration/security, TestLeakedFdsAndCwd).
func TestOnlyStdioFds(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		out := xtestRun(t, rt, []string{"fds"})
		if fds := parseFds(out); len(fds) != 3 || fds[0] == "" || fds[1] == "" || fds[2] == "" {
			t.Errorf("run: fds %q, want exactly 0 1 2", out)
		}
		b := testenv.NewBundle(t, testenv.WithArgs("/xtest", "fds"))
		c := rt.Create(t, b)
		rt.MustRun(t, "start", c.ID)
		rt.WaitStatus(t, c.ID, "stopped", shortWait)
		if fds := parseFds(c.Output(t)); len(fds) != 3 {
			t.Errorf("create+start: fds %q, want exactly 0 1 2", c.Output(t))
		}

		// --preserve-fds on create passes fds 3.. through.
		f1, _ := os.CreateTemp(b.Dir, "keep1-")
		f2, _ := os.CreateTemp(b.Dir, "keep2-")
		f3, _ := os.CreateTemp(b.Dir, "nokeep-")
		defer f1.Close()
		defer f2.Close()
		defer f3.Close()
		b2 := testenv.NewBundle(t, testenv.WithArgs("/xtest", "fds"))
		r := rt.Exec(t, testenv.Opts{ExtraFiles: []*os.File{f1, f2, f3}}, "run", "--preserve-fds", "2", "--bundle", b2.Dir, b2.ID)
		fds := parseFds(r.Stdout)
		if r.Code != 0 || len(fds) != 5 || !strings.HasSuffix(fds[3], filepath.Base(f1.Name())) || !strings.HasSuffix(fds[4], filepath.Base(f2.Name())) {
			t.Errorf("run --preserve-fds 2: %s", r)
		}

		// exec gets only stdio as well.
		b3 := testenv.NewBundle(t)
		c3 := rt.CreateStart(t, b3)
		r = rt.Exec(t, testenv.Opts{ExtraFiles: []*os.File{f1}}, "exec", c3.ID, "/xtest", "fds")
		if fds := parseFds(r.Stdout); r.Code != 0 || len(fds) != 3 {
			t.Errorf("exec: %s", r)
		}
	})
}

// TestStateDir: the state dir is private and holds state.json.
func TestStateDir(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		c := rt.Create(t, testenv.NewBundle(t))
		st, err := os.Stat(rt.Root)
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("--root %s: %v %v, want mode 0700", rt.Root, st.Mode(), err)
		}
		d := filepath.Join(rt.Root, c.ID)
		st, err = os.Stat(d)
		if err != nil || !st.IsDir() || st.Mode().Perm()&0o077&^0o011 != 0 {
			t.Errorf("state dir %s: %v %v, want a dir not readable by others", d, st.Mode(), err)
		}
		t.Logf("state dir mode %v", st.Mode())
		fst, err := os.Stat(filepath.Join(d, "state.json"))
		if err != nil || !fst.Mode().IsRegular() {
			t.Errorf("state.json: %v", err)
		}
	})
}

// TestZombieInitIsStopped: an init killed from the host, left a zombie
// because nobody reaps it (PID 1 here reaps late), reads as stopped.
func TestZombieInitIsStopped(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		c := rt.CreateStart(t, testenv.NewBundle(t))
		pid := c.Pid(t)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		testenv.WaitProcGone(pid, shortWait)
		zombie := testenv.ProcState(pid) == "Z"
		st := rt.WaitStatus(t, c.ID, "stopped", 2*time.Second)
		if st.Pid != 0 {
			t.Errorf("stopped state pid %d", st.Pid)
		}
		if !zombie {
			t.Logf("init %d was reaped before the check; the zombie path was not exercised", pid)
		}
		if r := rt.Run(t, "kill", c.ID, "TERM"); r.Code != 1 || !strings.Contains(rt.ErrorText(t, r), "container not running") {
			t.Errorf("kill of a zombie init: %s", r)
		}
		rt.MustRun(t, "delete", c.ID)
	})
}
