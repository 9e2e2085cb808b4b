package runtime_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestHostname: the uts namespace gets the spec's hostname.
func TestHostname(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		out := runOK(t, rt, testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Hostname = "xit-host"
		}), testenv.WithArgs("/xtest", "hostname")))
		if out != "xit-host\n" {
			t.Errorf("got %q", out)
		}
	})
}

// TestDomainname: the uts namespace gets the spec's domainname.
func TestDomainname(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		rt.SkipIf(t, "runc", "runc 1.1.5 ignores the spec's domainname (support came in runc 1.2)")
		out := runOK(t, rt, testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Hostname = "xit-host"
			s.Domainname = "xit.example"
		}), testenv.WithArgs("/bin/sh", "-c", "/xtest hostname; /xtest domainname")))
		if out != "xit-host\nxit.example\n" {
			t.Errorf("got %q", out)
		}
	})
}

// TestProcessArgsEnvCwd: args reach the process verbatim, env is the
// spec's, cwd is set (and created when missing, as runc does).
func TestProcessArgsEnvCwd(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		out := runOK(t, rt, testenv.NewBundle(t, testenv.WithArgs("/bin/sh", "-c", `printf '[%s]' "$@"`, "sh", "a b", `c"d`, "", "$HOME")))
		if out != `[a b][c"d][][$HOME]` {
			t.Errorf("args: %q", out)
		}
		out = runOK(t, rt, testenv.NewBundle(t, testenv.WithArgs("/xtest", "env"), testenv.WithSpec(func(s *specs.Spec) {
			s.Process.Env = []string{"PATH=/bin", "A=1", "B=with space", "C="}
		})))
		for _, want := range []string{"PATH=/bin\n", "A=1\n", "B=with space\n", "C=\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("env lacks %q: %q", want, out)
			}
		}
		// runc adds HOME from /etc/passwd when the spec has none.
		if !strings.Contains(out, "HOME=/root\n") {
			t.Errorf("env lacks HOME=/root: %q", out)
		}
		for _, cwd := range []string{"/home/user", "/tmp", "/"} {
			out := runOK(t, rt, testenv.NewBundle(t, testenv.WithArgs("/xtest", "cwd"), testenv.WithSpec(func(s *specs.Spec) { s.Process.Cwd = cwd })))
			if out != cwd+"\n" {
				t.Errorf("cwd %s: got %q", cwd, out)
			}
		}
		b := testenv.NewBundle(t, testenv.WithWritableRoot(), testenv.WithArgs("/xtest", "cwd"), testenv.WithSpec(func(s *specs.Spec) { s.Process.Cwd = "/new/cwd" }))
		if out := runOK(t, rt, b); out != "/new/cwd\n" {
			t.Errorf("missing cwd: got %q", out)
		}
	})
}

// TestProcessUser: uid, gid, additionalGids and umask.
func TestProcessUser(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		umask := uint32(0o027)
		out := runOK(t, rt, testenv.NewBundle(t, testenv.WithArgs("/bin/sh", "-c", "/xtest id; echo umask=$(/xtest umask)"), testenv.WithSpec(func(s *specs.Spec) {
			s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1001, 5}, Umask: &umask}
		})))
		m := kv(out)
		if m["uid"] != "1000" || m["euid"] != "1000" || m["gid"] != "1000" || m["egid"] != "1000" {
			t.Errorf("ids: %v", m)
		}
		if m["groups"] != "5,1000,1001" && m["groups"] != "5,1001" {
			t.Errorf("groups %q, want 5 and 1001 (and maybe 1000)", m["groups"])
		}
		if m["umask"] != "0027" {
			t.Errorf("umask %q, want 0027", m["umask"])
		}
		// Default umask is 0022; root has no supplementary groups.
		m = kv(runOK(t, rt, testenv.NewBundle(t, testenv.WithArgs("/bin/sh", "-c", "/xtest id; echo umask=$(/xtest umask)"))))
		if m["umask"] != "0022" || m["uid"] != "0" || (m["groups"] != "" && m["groups"] != "0") {
			t.Errorf("root defaults: %v", m)
		}
	})
}

// TestCapabilities: all five capability sets, as the kernel derives them
// at execve from what the runtime set.
func TestCapabilities(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		bnd := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"}
		const (
			mBnd  = "0000000000002021" // CHOWN(0) KILL(5) NET_RAW(13)
			mRaw  = "0000000000002000"
			mZero = "0000000000000000"
		)
		for _, tc := range []struct {
			name string
			user specs.User
			caps specs.LinuxCapabilities
			want map[string]string
		}{
			{
				// Root: the kernel grants every bounding cap at exec.
				"root", specs.User{},
				specs.LinuxCapabilities{Bounding: bnd, Effective: bnd, Permitted: bnd},
				map[string]string{"CapBnd": mBnd, "CapPrm": mBnd, "CapEff": mBnd, "CapInh": mZero, "CapAmb": mZero},
			},
			{
				// Non-root with ambient NET_RAW keeps exactly it.
				"ambient", specs.User{UID: 1000, GID: 1000},
				specs.LinuxCapabilities{Bounding: bnd, Effective: []string{"CAP_NET_RAW"}, Permitted: []string{"CAP_NET_RAW"},
					Inheritable: []string{"CAP_NET_RAW"}, Ambient: []string{"CAP_NET_RAW"}},
				map[string]string{"CapBnd": mBnd, "CapPrm": mRaw, "CapEff": mRaw, "CapInh": mRaw, "CapAmb": mRaw},
			},
			{
				// Non-root without ambient: nothing survives exec, and
				// inheritable stays empty (CVE-2022-29162).
				"non-root", specs.User{UID: 1000, GID: 1000},
				specs.LinuxCapabilities{Bounding: bnd, Effective: bnd, Permitted: bnd},
				map[string]string{"CapBnd": mBnd, "CapPrm": mZero, "CapEff": mZero, "CapInh": mZero, "CapAmb": mZero},
			},
			{
				"none", specs.User{},
				specs.LinuxCapabilities{},
				map[string]string{"CapBnd": mZero, "CapPrm": mZero, "CapEff": mZero, "CapInh": mZero, "CapAmb": mZero},
			},
		} {
			caps := tc.caps
			m := kv(runOK(t, rt, testenv.NewBundle(t, testenv.WithArgs("/xtest", "caps"), testenv.WithSpec(func(s *specs.Spec) {
				s.Process.User = tc.user
				s.Process.Capabilities = &caps
				s.Process.NoNewPrivileges = false
			}))))
			for k, want := range tc.want {
				if m[k] != want {
					t.Errorf("%s: %s=%s, want %s", tc.name, k, m[k], want)
				}
			}
		}
	})
}

// TestRlimits: process.rlimits are applied. The process is busybox cat:
// a Go program would see its own raised RLIMIT_NOFILE soft limit.
func TestRlimits(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		out := runOK(t, rt, testenv.NewBundle(t, testenv.WithArgs("/bin/cat", "/proc/self/limits"), testenv.WithSpec(func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048},
				{Type: "RLIMIT_NPROC", Soft: 500, Hard: 600},
				{Type: "RLIMIT_CORE", Soft: 0, Hard: 4096},
				{Type: "RLIMIT_MSGQUEUE", Soft: 8192, Hard: 8192},
			}
		})))
		got := parseLimits(out)
		for k, want := range map[string]string{
			"Max open files": "1024 2048", "Max processes": "500 600",
			"Max core file size": "0 4096", "Max msgqueue size": "8192 8192",
		} {
			if got[k] != want {
				t.Errorf("%s = %q, want %q\n%s", k, got[k], want, out)
			}
		}
	})
}

// parseLimits maps the names of /proc/PID/limits to "soft hard".
func parseLimits(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n")[1:] {
		if len(l) < 26 {
			continue
		}
		f := strings.Fields(l[25:])
		if len(f) >= 2 {
			m[strings.TrimSpace(l[:25])] = f[0] + " " + f[1]
		}
	}
	return m
}

// TestNoNewPrivsOOMScore: noNewPrivileges and oomScoreAdj.
func TestNoNewPrivsOOMScore(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		for _, tc := range []struct {
			nnp  bool
			oom  int
			want string
		}{
			{true, 500, "nnp=1\noom=500\n"},
			// Lowering the score needs CAP_SYS_RESOURCE, which this
			// machine's root lacks; raising it does not.
			{false, 700, "nnp=0\noom=700\n"},
		} {
			oom := tc.oom
			out := runOK(t, rt, testenv.NewBundle(t, testenv.WithArgs("/bin/sh", "-c", "echo nnp=$(/xtest nnp); echo oom=$(/xtest oomscoreadj)"), testenv.WithSpec(func(s *specs.Spec) {
				s.Process.NoNewPrivileges = tc.nnp
				s.Process.OOMScoreAdj = &oom
			})))
			if out != tc.want {
				t.Errorf("nnp %v oom %d: got %q", tc.nnp, tc.oom, out)
			}
		}
	})
}

// TestSysctl: linux.sysctl is written in the container's namespaces only.
func TestSysctl(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		out := runOK(t, rt, testenv.NewBundle(t, testenv.WithArgs("/bin/sh", "-c", "/xtest sysctl net.ipv4.ip_forward; /xtest sysctl kernel.msgmax"), testenv.WithSpec(func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.msgmax": "12345"}
		})))
		if out != "1\n12345\n" {
			t.Errorf("sysctls inside: %q", out)
		}
	})
}

// TestSchedulerIOPriorityPersonality: process.scheduler, process.ioPriority
// and linux.personality reach the init; an exec --process with its own
// scheduler and I/O priority gets those; bad values fail create naming the
// field.
func TestSchedulerIOPriorityPersonality(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		rt.SkipIf(t, "runc", "runc 1.1.5 predates process.scheduler, process.ioPriority and linux.personality (runc 1.2) and ignores them")
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 7}
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE, Priority: 0}
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
		}))
		c := rt.CreateStart(t, b)
		// The init itself, read from the host.
		pid := c.Pid(t)
		stat := readFile(t, fmt.Sprintf("/proc/%d/stat", pid))
		f := strings.Fields(stat[strings.LastIndex(stat, ")")+2:])
		// After the command name: field 3 (state) is f[0], so field 19
		// (nice) is f[16] and field 41 (policy) is f[38].
		if f[16] != "7" || f[38] != "3" {
			t.Errorf("init nice %s policy %s, want 7 and 3 (SCHED_BATCH)", f[16], f[38])
		}
		const whoProcess = 1
		io, _, errno := unix.RawSyscall(unix.SYS_IOPRIO_GET, whoProcess, uintptr(pid), 0)
		if errno != 0 || io>>13 != 3 {
			t.Errorf("init I/O priority %#x (%v), want class 3 (idle)", io, errno)
		}
		if pers := strings.TrimSpace(readFile(t, fmt.Sprintf("/proc/%d/personality", pid))); pers != "00000008" {
			t.Errorf("init personality %s, want 00000008 (LINUX32)", pers)
		}

		proc := specs.Process{
			Args:       []string{"/xtest", "sched"},
			Env:        []string{"PATH=/bin"},
			Cwd:        "/",
			Scheduler:  &specs.Scheduler{Policy: specs.SchedIdle},
			IOPriority: &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 6},
		}
		data, _ := json.Marshal(proc)
		pf := filepath.Join(b.Dir, "process-sched.json")
		if err := os.WriteFile(pf, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out := execOK(t, rt, c.ID, []string{"--process", pf})
		ex := kv(out)
		if ex["policy"] != "5" || ex["ioclass"] != "2" || ex["iolevel"] != "6" {
			t.Errorf("exec --process with SCHED_IDLE and BE/6: %q", out)
		}

		bad := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 100}
		}))
		if _, r := rt.TryCreate(t, bad); r.Code == 0 || !strings.Contains(rt.ErrorText(t, r), "process.scheduler.priority") {
			t.Errorf("create with SCHED_FIFO priority 100: %s", r)
		}
	})
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
