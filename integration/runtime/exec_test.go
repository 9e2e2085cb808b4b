package runtime_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// capBit reports whether capability number bit is set in a hex mask.
func capBit(mask string, bit uint) bool {
	v, err := strconv.ParseUint(mask, 16, 64)
	return err == nil && v&(1<<bit) != 0
}

const (
	capChown        = 0
	capKill         = 5
	capNetBind      = 10
	capNetRaw       = 13
	capSysAdmin     = 21
	capAuditWrite   = 29
	defaultCapsMask = "0000000020000420" // AUDIT_WRITE, KILL, NET_BIND_SERVICE
)

// TestExec covers exec in the running container: forms, exit codes,
// --cwd, --env, --user, --cap, --no-new-privs, --preserve-fds, --detach.
func TestExec(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		oomScoreAdj := 600
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Process.NoNewPrivileges = false
			s.Process.Env = append(s.Process.Env, "FROM_SPEC=1")
			s.Process.OOMScoreAdj = &oomScoreAdj
		}))
		c := rt.CreateStart(t, b)

		t.Run("cmdline", func(t *testing.T) {
			out := execOK(t, rt, c.ID, nil, "/bin/sh", "-c", "echo hello; echo err >&2")
			if out != "hello\n" {
				t.Errorf("stdout %q", out)
			}
			r := execIn(t, rt, c.ID, nil, "/bin/sh", "-c", "echo err >&2")
			if r.Stderr != "err\n" {
				t.Errorf("stderr %q", r.Stderr)
			}
		})
		t.Run("defaults from config.json", func(t *testing.T) {
			// Without --process, the container's process description
			// is the base, oomScoreAdj included (the caller's, a shim at
			// -999 say, would otherwise leak in).
			if out := execOK(t, rt, c.ID, nil, "/xtest", "oomscoreadj"); strings.TrimSpace(out) != "600" {
				t.Errorf("exec's oom_score_adj %q, want config.json's 600", out)
			}
		})
		t.Run("exit code", func(t *testing.T) {
			for _, code := range []int{0, 1, 5, 127, 255} {
				if r := execIn(t, rt, c.ID, nil, "/xtest", "exit", strconv.Itoa(code)); r.Code != code {
					t.Errorf("exit %d: got %s", code, r)
				}
			}
		})
		t.Run("process file", func(t *testing.T) {
			p := specs.Process{
				Args: []string{"/xtest", "env"},
				Env:  []string{"PATH=/bin", "PROC_FILE=yes"},
				Cwd:  "/tmp",
				User: specs.User{UID: 1000, GID: 1000},
			}
			data, _ := json.Marshal(p)
			f := filepath.Join(b.Dir, "process.json")
			os.WriteFile(f, data, 0o644)
			out := execOK(t, rt, c.ID, []string{"--process", f})
			if !strings.Contains(out, "PROC_FILE=yes\n") {
				t.Errorf("env from --process: %q", out)
			}
			p.Args = []string{"/bin/sh", "-c", "/xtest cwd; /xtest id"}
			data, _ = json.Marshal(p)
			os.WriteFile(f, data, 0o644)
			out = execOK(t, rt, c.ID, []string{"-p", f})
			m := kv(out)
			if !strings.HasPrefix(out, "/tmp\n") || m["uid"] != "1000" || m["gid"] != "1000" {
				t.Errorf("cwd/user from --process: %q", out)
			}
		})
		t.Run("cwd", func(t *testing.T) {
			for _, flag := range []string{"--cwd", "--cwd="} {
				args := []string{flag, "/tmp"}
				if strings.HasSuffix(flag, "=") {
					args = []string{flag + "/tmp"}
				}
				if out := execOK(t, rt, c.ID, args, "/xtest", "cwd"); out != "/tmp\n" {
					t.Errorf("%s /tmp: cwd %q", flag, out)
				}
			}
			// Default: the spec's cwd.
			if out := execOK(t, rt, c.ID, nil, "/xtest", "cwd"); out != "/\n" {
				t.Errorf("default cwd %q", out)
			}
		})
		t.Run("env", func(t *testing.T) {
			// runc (urfave/cli) refuses -e and --env in one command
			// line, so each form is used alone.
			out := execOK(t, rt, c.ID, []string{"-e", "FOO=bar", "-e", "BAZ=qux", "-e", "EMPTY="}, "/xtest", "env")
			out2 := execOK(t, rt, c.ID, []string{"--env", "FOO=bar", "--env=BAZ=qux", "--env", "EMPTY="}, "/xtest", "env")
			if out2 != out {
				t.Errorf("--env and -e differ:\n%s\n%s", out, out2)
			}
			for _, want := range []string{"FOO=bar\n", "BAZ=qux\n", "EMPTY=\n", "FROM_SPEC=1\n", "PATH="} {
				if !strings.Contains(out, want) {
					t.Errorf("env lacks %q: %q", want, out)
				}
			}
			// -e overrides a variable of the spec.
			out = execOK(t, rt, c.ID, []string{"-e", "FROM_SPEC=2"}, "/xtest", "env")
			if !strings.Contains(out, "FROM_SPEC=2\n") || strings.Contains(out, "FROM_SPEC=1\n") {
				t.Errorf("-e override: %q", out)
			}
		})
		t.Run("user", func(t *testing.T) {
			for _, tc := range []struct {
				flags      []string
				uid, gid   string
				wantGroups string
			}{
				{[]string{"-u", "1000:1000"}, "1000", "1000", ""},
				{[]string{"--user", "1000:1001"}, "1000", "1001", ""},
				{[]string{"--user=1000:1000", "--additional-gids", "1001"}, "1000", "1000", "1001"},
				{[]string{"-u", "0:0"}, "0", "0", ""},
			} {
				m := kv(execOK(t, rt, c.ID, tc.flags, "/xtest", "id"))
				if m["uid"] != tc.uid || m["euid"] != tc.uid || m["gid"] != tc.gid || m["egid"] != tc.gid {
					t.Errorf("%q: id %v", tc.flags, m)
				}
				if tc.wantGroups != "" && !strings.Contains(","+m["groups"]+",", ","+tc.wantGroups+",") {
					t.Errorf("%q: groups %q lack %s", tc.flags, m["groups"], tc.wantGroups)
				}
				if tc.uid != "0" && m["groups"] != "" && strings.Contains(","+m["groups"]+",", ",0,") {
					t.Errorf("%q: non-root exec kept group 0: %q", tc.flags, m["groups"])
				}
			}
		})
		t.Run("cap", func(t *testing.T) {
			m := kv(execOK(t, rt, c.ID, []string{"--cap", "CAP_NET_RAW"}, "/xtest", "caps"))
			if !capBit(m["CapEff"], capNetRaw) || !capBit(m["CapPrm"], capNetRaw) || !capBit(m["CapBnd"], capNetRaw) {
				t.Errorf("--cap CAP_NET_RAW not in eff/prm/bnd: %v", m)
			}
			if !capBit(m["CapEff"], capKill) {
				t.Errorf("--cap dropped the spec's caps: %v", m)
			}
			// CVE-2022-29162: exec --cap must not fill the inheritable set.
			if m["CapInh"] != "0000000000000000" || m["CapAmb"] != "0000000000000000" {
				t.Errorf("CapInh/CapAmb not empty after exec --cap: %v", m)
			}
			m = kv(execOK(t, rt, c.ID, nil, "/xtest", "caps"))
			if m["CapEff"] != defaultCapsMask || m["CapInh"] != "0000000000000000" {
				t.Errorf("plain exec caps: %v", m)
			}
		})
		t.Run("no new privs", func(t *testing.T) {
			if out := execOK(t, rt, c.ID, nil, "/xtest", "nnp"); out != "0\n" {
				t.Errorf("nnp without flag (spec false): %q", out)
			}
			if out := execOK(t, rt, c.ID, []string{"--no-new-privs"}, "/xtest", "nnp"); out != "1\n" {
				t.Errorf("nnp with --no-new-privs: %q", out)
			}
		})
		t.Run("preserve fds", func(t *testing.T) {
			f, err := os.CreateTemp(b.Dir, "preserved-")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r := rt.Exec(t, testenv.Opts{ExtraFiles: []*os.File{f}}, "exec", "--preserve-fds", "1", c.ID, "/xtest", "fds")
			if r.Code != 0 {
				t.Fatalf("%s", r)
			}
			fds := parseFds(r.Stdout)
			if got, ok := fds[3]; !ok || !strings.HasSuffix(got, filepath.Base(f.Name())) {
				t.Errorf("fd 3 not preserved: %q", r.Stdout)
			}
			if len(fds) != 4 {
				t.Errorf("want fds 0-3 only, got %q", r.Stdout)
			}
			// Without --preserve-fds the extra fd does not reach it.
			r = rt.Exec(t, testenv.Opts{ExtraFiles: []*os.File{f}}, "exec", c.ID, "/xtest", "fds")
			if fds := parseFds(r.Stdout); len(fds) != 3 {
				t.Errorf("without --preserve-fds: %q", r.Stdout)
			}
		})
		t.Run("detach", func(t *testing.T) {
			pidFile := filepath.Join(b.Dir, "exec.pid")
			start := time.Now()
			r := rt.Run(t, "exec", "-d", "--pid-file", pidFile, c.ID, "/xtest", "sleep", "600")
			if r.Code != 0 || time.Since(start) > 20*time.Second {
				t.Fatalf("exec -d: %s", r)
			}
			pb, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(pb)))
			if err != nil || !testenv.ProcAlive(pid) {
				t.Fatalf("pid file %q: not a live process", pb)
			}
			testenv.KillOnCleanup(t, pid)
			found := false
			for _, p := range psPids(t, rt, c.ID) {
				found = found || p == pid
			}
			if !found {
				t.Errorf("detached exec pid %d not in ps", pid)
			}
			// runc's exec -d may return while its init is still about to
			// execve the process (same pid): wait for the exec briefly.
			var cmd []byte
			for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				cmd, _ = os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				if strings.Contains(string(cmd), "sleep") || time.Now().After(deadline) {
					break
				}
			}
			if !strings.Contains(string(cmd), "sleep") {
				t.Errorf("pid file names %q, not the exec'd process", cmd)
			}
			syscall.Kill(pid, syscall.SIGKILL)
		})
		t.Run("namespaces and cgroup", func(t *testing.T) {
			initPid := c.Pid(t)
			out := execOK(t, rt, c.ID, nil, "/xtest", "ns")
			ns := kv(out)
			if len(ns) < 7 {
				t.Fatalf("ns output %q", out)
			}
			for name, link := range ns {
				host, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", initPid, name))
				if err != nil {
					t.Errorf("init ns %s: %v", name, err)
					continue
				}
				if host != link {
					t.Errorf("exec ns %s = %s, init's = %s", name, link, host)
				}
			}
			self, _ := os.Readlink("/proc/self/ns/pid")
			if ns["pid"] == self {
				t.Errorf("exec is in the host pid namespace")
			}
			cg := execOK(t, rt, c.ID, nil, "/xtest", "cgroup")
			initCg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", initPid))
			if cg != string(initCg) {
				t.Errorf("exec cgroup\n%s\ninit cgroup\n%s", cg, initCg)
			}
			if !strings.Contains(cg, b.CgroupsPath) {
				t.Errorf("exec not in %s: %s", b.CgroupsPath, cg)
			}
			// PID namespace: exec'd process is not pid 1 and its
			// parent is outside the namespace (ppid 0).
			m := kv(execOK(t, rt, c.ID, nil, "/xtest", "pid"))
			if m["pid"] == "1" || m["ppid"] != "0" {
				t.Errorf("exec pid/ppid: %v", m)
			}
		})
		t.Run("missing container", func(t *testing.T) {
			// runc exec exits 255 on errors of its own.
			r := execIn(t, rt, "xit-nope", nil, "/xtest", "id")
			if r.Code != 255 || !strings.Contains(rt.ErrorText(t, r), "container does not exist") {
				t.Errorf("exec into a missing container: %s", r)
			}
		})
		t.Run("not found", func(t *testing.T) {
			r := execIn(t, rt, c.ID, nil, "/no/such/binary")
			if r.Code != 255 || !strings.Contains(rt.ErrorText(t, r), "no such file or directory") {
				t.Errorf("exec of a missing binary: %s\nlog: %s", r, rt.LastError(t))
			}
			r = execIn(t, rt, c.ID, nil, "no-such-cmd")
			if r.Code != 255 || !strings.Contains(rt.ErrorText(t, r), "executable file not found") {
				t.Errorf("exec of a missing command: %s\nlog: %s", r, rt.LastError(t))
			}
		})
	})
}

func parseFds(out string) map[int]string { return testenv.ParseFds(out) }

// TestExecStopped: exec into a stopped or created container.
func TestExecStopped(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t, testenv.WithArgs("/xtest", "exit", "0"))
		c := rt.CreateStart(t, b)
		rt.WaitStatus(t, c.ID, "stopped", shortWait)
		r := execIn(t, rt, c.ID, nil, "/xtest", "id")
		if r.Code != 255 || !strings.Contains(rt.ErrorText(t, r), "cannot exec in a stopped container") {
			t.Errorf("exec into stopped: want exit 255 \"cannot exec in a stopped container\", got %s\nlog: %s", r, rt.LastError(t))
		}
		if r.Stdout != "" {
			t.Errorf("exec into stopped ran: %q", r.Stdout)
		}
	})
}

// TestExecUserNS: exec joins the user namespace: root inside, mapped uid
// on the host.
func TestExecUserNS(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		const hostID = 200000
		b := testenv.NewBundle(t, testenv.WithUserNS(hostID, hostID))
		c := rt.CreateStart(t, b)
		m := kv(execOK(t, rt, c.ID, nil, "/xtest", "id"))
		if m["uid"] != "0" || m["gid"] != "0" {
			t.Errorf("exec in userns: %v", m)
		}
		out := execOK(t, rt, c.ID, nil, "/xtest", "uidmap")
		if !strings.Contains(out, fmt.Sprintf("uid_map 0 %d 65536", hostID)) || !strings.Contains(out, fmt.Sprintf("gid_map 0 %d 65536", hostID)) {
			t.Errorf("exec uid/gid map: %q", out)
		}
		initPid := c.Pid(t)
		ns := kv(execOK(t, rt, c.ID, nil, "/xtest", "ns"))
		if host, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", initPid)); host != ns["user"] {
			t.Errorf("exec user ns %s, init's %s", ns["user"], host)
		}
		// From the host, the exec'd process runs as the mapped uid.
		pidFile := filepath.Join(b.Dir, "exec.pid")
		rt.MustRun(t, "exec", "-d", "--pid-file", pidFile, c.ID, "/xtest", "sleep", "600")
		pb, _ := os.ReadFile(pidFile)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(pb)))
		testenv.KillOnCleanup(t, pid)
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "Uid:") {
				if f := strings.Fields(l); len(f) < 2 || f[1] != strconv.Itoa(hostID) {
					t.Errorf("host view of exec'd process: %q, want uid %d", l, hostID)
				}
			}
		}
		// Not host root: cannot write a root-owned host file it sees
		// through /proc/PID/root of... a mapped root cannot write
		// into a directory owned by unmapped host root.
		if out := execOK(t, rt, c.ID, nil, "/xtest", "open-wr", "/proc/sys/kernel/hostname"); strings.TrimSpace(out) == "ok" {
			t.Errorf("userns root can open /proc/sys/kernel/hostname for writing")
		}
	})
}
