package runtime_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/integration/internal/testenv"
)

func fileSum(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestExeSealed (CVE-2019-5736): the container cannot get a writable
// handle on the runtime binary through the init's /proc/PID/exe, neither
// from inside nor (as a precondition check) from the host; and the binary
// is unchanged.
func TestExeSealed(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		sum := fileSum(t, rt.Path)
		b := testenv.NewBundle(t)
		c := rt.Create(t, b)
		pid := c.Pid(t)
		// The exe must be a write-sealed memfd or a file on a read-only
		// mount: a plain binary only gives ETXTBSY while it runs, and
		// the exploit waits for it to exit.
		if why := exeProtection(t, fmt.Sprintf("/proc/%d/exe", pid)); why == "" {
			t.Errorf("init exe of the created container is neither a write-sealed memfd nor on a read-only mount (CVE-2019-5736)")
		} else {
			t.Logf("init exe protection: %s", why)
		}
		// While the container is only created, its pid 1 is the
		// runtime's init: try to open it for writing from inside.
		for _, p := range []string{"/proc/1/exe", "/proc/self/exe"} {
			out := strings.TrimSpace(execOK(t, rt, c.ID, nil, "/xtest", "open-wr", p))
			if out == "ok" {
				t.Errorf("container opened %s for writing", p)
			}
		}
		rt.MustRun(t, "start", c.ID)
		if out := strings.TrimSpace(execOK(t, rt, c.ID, nil, "/xtest", "open-wr", "/proc/1/exe")); out == "ok" {
			t.Errorf("container opened /proc/1/exe for writing after start")
		}
		if got := fileSum(t, rt.Path); got != sum {
			t.Errorf("runtime binary changed: %s -> %s", sum, got)
		}
	})
}

// TestExeNotHostInode: the created init runs from a copy (sealed memfd),
// not from the runtime binary's inode, as xstack's design requires.
func TestExeNotHostInode(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		rt.SkipIf(t, "runc", "runc 1.1.5 runs init from a detached read-only bind mount of its own binary (same inode; TestExeSealed covers it), not a memfd copy")
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
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if !strings.HasPrefix(link, "/memfd:") {
			t.Errorf("init exe %q is not a memfd", link)
		}
	})
}

// TestOnlyStdioFds: only fds 0-2 (plus --preserve-fds) reach the
// container's processes; no host directory fd leaks into the init
// (CVE-2024-21626).
func TestOnlyStdioFds(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		out := xtestRun(t, rt, []string{"fds"})
		if fds := parseFds(out); len(fds) != 3 || fds[0] == "" || fds[1] == "" || fds[2] == "" {
			t.Errorf("run: fds %q, want exactly 0 1 2", out)
		}
		b := testenv.NewBundle(t, testenv.WithArgs("/xtest", "fds"))
		c := rt.Create(t, b)
		pid := c.Pid(t)
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, e := range ents {
			p := fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())
			target, _ := os.Readlink(p)
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				t.Errorf("created init holds a directory fd %s -> %s", e.Name(), target)
			}
			if strings.HasPrefix(target, "/sys/fs/cgroup") {
				t.Errorf("created init holds a cgroupfs fd %s -> %s", e.Name(), target)
			}
		}
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

// TestCwdProcSelfFd (CVE-2024-21626): process.cwd or exec --cwd set to
// /proc/self/fd/N fails, or leaves the process inside the rootfs.
func TestCwdProcSelfFd(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		check := func(what string, r testenv.Result) {
			t.Helper()
			if r.Code != 0 {
				return // refusing is fine
			}
			cwd := strings.TrimSpace(r.Stdout)
			if !strings.HasPrefix(cwd, "/") || strings.Contains(cwd, "unreachable") || strings.Contains(cwd, "cgroup") {
				t.Errorf("%s: process cwd %q is outside the container", what, cwd)
			}
		}
		for n := 3; n <= 10; n++ {
			cwd := fmt.Sprintf("/proc/self/fd/%d", n)
			b := testenv.NewBundle(t, testenv.WithArgs("/xtest", "cwd"), testenv.WithSpec(func(s *specs.Spec) { s.Process.Cwd = cwd }))
			check("process.cwd="+cwd, runFG(t, rt, b))
		}
		b := testenv.NewBundle(t)
		c := rt.CreateStart(t, b)
		for n := 3; n <= 10; n++ {
			cwd := fmt.Sprintf("/proc/self/fd/%d", n)
			check("exec --cwd "+cwd, execIn(t, rt, c.ID, []string{"--cwd", cwd}, "/xtest", "cwd"))
		}
	})
}

// TestSymlinkMountDestination: a mount destination that is a symlink
// pointing out of the rootfs is resolved inside the rootfs.
func TestSymlinkMountDestination(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		marker := testenv.TempDir(t, 0o755)
		b := testenv.NewBundle(t, testenv.WithRootfs(func(root string) {
			os.Symlink(marker, filepath.Join(root, "mnt/evil-abs"))
			os.Symlink("../../../../../../../.."+marker, filepath.Join(root, "mnt/evil-rel"))
		}), testenv.WithSpec(func(s *specs.Spec) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/mnt/evil-abs", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
				specs.Mount{Destination: "/mnt/evil-rel/sub", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
			)
		}), testenv.WithArgs("/bin/sh", "-c", "/xtest write /mnt/evil-abs/pwned x; /xtest write /mnt/evil-rel/sub/pwned x; echo done"))
		r := runFG(t, rt, b)
		if r.Code == 0 && !strings.Contains(r.Stdout, "done") {
			t.Errorf("container did not run: %s", r)
		}
		ents, _ := os.ReadDir(marker)
		if len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("mount through a symlink reached the host dir %s: %q", marker, names)
		}
		now, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(now), marker) {
			t.Errorf("host mount table has a mount at the marker dir")
		}
		if r.Code == 0 {
			// It landed inside the rootfs instead.
			if _, err := os.Stat(filepath.Join(b.Rootfs, marker)); err != nil {
				t.Errorf("mount target not created inside the rootfs: %v", err)
			}
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

// exeProtection says how an executable is protected against writes: a
// write seal, a read-only mount, or "" for none.
func exeProtection(t *testing.T, exe string) string {
	t.Helper()
	fd, err := unix.Open(exe, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", exe, err)
	}
	defer unix.Close(fd)
	if seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0); err == nil &&
		seals&(unix.F_SEAL_WRITE|unix.F_SEAL_FUTURE_WRITE) != 0 {
		return fmt.Sprintf("memfd seals %#x", seals)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err == nil && sfs.Flags&unix.ST_RDONLY != 0 {
		return "read-only mount"
	}
	return ""
}
