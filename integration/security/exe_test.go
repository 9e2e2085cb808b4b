package security_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestProcSelfExe (CVE-2019-5736): a container process cannot get a
// writable handle on the runtime binary through /proc/PID/exe, and the
// binary on the host is unchanged.
func TestProcSelfExe(t *testing.T) {
	checkCVE(t, "CVE-2019-5736 runtime binary overwrite", refFixed, func(t *testing.T, rt *testenv.Runtime) []string {
		var findings []string
		sum := fileSum(t, rt.Path)
		c := rt.Create(t, testenv.NewBundle(t))
		// The exe must be a write-sealed memfd or a file on a read-only
		// mount: a plain binary only gives ETXTBSY while it runs, and the
		// exploit waits for it to exit.
		exe := fmt.Sprintf("/proc/%d/exe", c.Pid(t))
		if exeProtection(t, exe) == "" {
			findings = append(findings, "the created init's exe is neither a write-sealed memfd nor on a read-only mount")
		}
		// While the container is only created, its pid 1 is the runtime.
		for _, p := range []string{"/proc/1/exe", "/proc/self/exe"} {
			if out := xtestExec(t, rt, c.ID, "open-wr", p); out == "ok" {
				findings = append(findings, "the container opened "+p+" for writing")
			}
		}
		rt.MustRun(t, "start", c.ID)
		if out := xtestExec(t, rt, c.ID, "open-wr", "/proc/1/exe"); out == "ok" {
			findings = append(findings, "the container opened /proc/1/exe for writing after start")
		}
		if got := fileSum(t, rt.Path); got != sum {
			findings = append(findings, "the runtime binary changed")
		}
		return findings
	})
}

// TestLeakedFdsAndCwd (CVE-2024-21626): only fds 0-2 reach the container,
// the created init holds no host directory, and process.cwd or exec --cwd
// set to /proc/self/fd/N either fail or leave the process in the rootfs.
func TestLeakedFdsAndCwd(t *testing.T) {
	checkCVE(t, "CVE-2024-21626 leaked fds, cwd outside the rootfs", refFixed, func(t *testing.T, rt *testenv.Runtime) []string {
		var findings []string
		c := rt.Create(t, testenv.NewBundle(t))
		pid := c.Pid(t)
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, e := range ents {
			p := fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())
			target, _ := os.Readlink(p)
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				findings = append(findings, fmt.Sprintf("the created init holds directory fd %s -> %s", e.Name(), target))
			} else if strings.HasPrefix(target, "/sys/fs/cgroup") {
				findings = append(findings, fmt.Sprintf("the created init holds cgroupfs fd %s -> %s", e.Name(), target))
			}
		}
		rt.MustRun(t, "start", c.ID)
		if fds := testenv.ParseFds(rt.ExecIn(t, c.ID, nil, "/xtest", "fds").Stdout); len(fds) != 3 {
			findings = append(findings, fmt.Sprintf("exec got fds %v, want only 0 1 2", fds))
		}
		outside := func(what string, r testenv.Result) {
			if r.Code != 0 {
				return // refusing is the fix
			}
			cwd := strings.TrimSpace(r.Stdout)
			if !strings.HasPrefix(cwd, "/") || strings.Contains(cwd, "unreachable") || strings.HasPrefix(cwd, "/sys/fs/cgroup") {
				findings = append(findings, fmt.Sprintf("%s: the process cwd is %q, outside the container", what, cwd))
			}
		}
		for n := 3; n <= 12; n++ {
			cwd := fmt.Sprintf("/proc/self/fd/%d", n)
			outside("exec --cwd "+cwd, rt.ExecIn(t, c.ID, []string{"--cwd", cwd}, "/xtest", "cwd"))
		}
		for n := 3; n <= 8; n++ {
			cwd := fmt.Sprintf("/proc/self/fd/%d", n)
			b := testenv.NewBundle(t, testenv.WithArgs("/xtest", "cwd"), testenv.WithSpec(func(s *specs.Spec) { s.Process.Cwd = cwd }))
			outside("process.cwd="+cwd, rt.RunBundle(t, b))
		}
		return findings
	})
}

// xtestExec runs /xtest VERB ARGS in the container and returns its trimmed
// stdout; a failed exec fails the test.
func xtestExec(t *testing.T, rt *testenv.Runtime, id string, args ...string) string {
	t.Helper()
	r := rt.ExecIn(t, id, nil, append([]string{"/xtest"}, args...)...)
	if r.Code != 0 {
		t.Fatalf("%s\nlast log error: %s", r, rt.LastError(t))
	}
	return strings.TrimSpace(r.Stdout)
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
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
