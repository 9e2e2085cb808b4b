package runtime_test

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

func u(v uint) *uint { return &v }

// mkdirRules make mkdir(2) and mkdirat(2) (busybox may use either) fail
// with errno.
func mkdirRules(errno uint) []specs.LinuxSyscall {
	return []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: u(errno)}}
}

// TestSeccomp: the spec's profile is enforced from inside the container:
// a blocked syscall fails with the errno the profile asks for, argument
// conditions select which calls are blocked, and exec'd processes get the
// container's filter too.
func TestSeccomp(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		for _, tc := range []struct {
			name    string
			nnp     bool
			profile specs.LinuxSeccomp
			script  string
			want    string
		}{
			{
				name:    "errno",
				nnp:     true,
				profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}, Syscalls: mkdirRules(95)},
				script:  "mkdir /tmp/a 2>&1; echo rc=$?",
				want:    "Operation not supported",
			},
			{
				name:    "without no_new_privs",
				profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: mkdirRules(13)},
				script:  "mkdir /tmp/a 2>&1; echo rc=$?",
				want:    "Permission denied",
			},
			{
				// kill(pid, SIGUSR1) is refused, kill(pid, 0) is not.
				name: "argument condition",
				nnp:  true,
				profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{
					Names: []string{"kill"}, Action: specs.ActErrno, ErrnoRet: u(1),
					Args: []specs.LinuxSeccompArg{{Index: 1, Value: 10, Op: specs.OpEqualTo}},
				}}},
				script: "kill -USR1 $$ 2>/dev/null || echo usr1-denied; kill -0 $$ && echo zero-ok",
				want:   "usr1-denied\nzero-ok",
			},
			{
				name: "default errno with an allow list",
				nnp:  true,
				profile: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
					{Names: []string{"chdir"}, Action: specs.ActErrno, ErrnoRet: u(2)},
				}},
				script: "cd /tmp 2>&1 || echo cd-failed",
				want:   "cd-failed",
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
					p := tc.profile
					s.Linux.Seccomp = &p
					s.Process.NoNewPrivileges = tc.nnp
				}), testenv.WithArgs("/bin/sh", "-c", tc.script))
				out := runOK(t, rt, b)
				if !strings.Contains(out, tc.want) {
					t.Fatalf("output %q lacks %q", out, tc.want)
				}
			})
		}
		t.Run("exec inherits the profile", func(t *testing.T) {
			b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: mkdirRules(95)}
				s.Process.NoNewPrivileges = true
			}), testenv.WithArgs("/bin/sleep", "100"))
			c := rt.CreateStart(t, b)
			r := rt.Run(t, "exec", c.ID, "/bin/sh", "-c", "mkdir /tmp/x 2>&1; true")
			if r.Code != 0 || !strings.Contains(r.Stdout, "Operation not supported") {
				t.Fatalf("exec: %s", r)
			}
		})
	})
}

// TestSeccompBadProfile: a profile xrunc cannot apply is refused with the
// field named, before anything is created.
func TestSeccompBadProfile(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}
		}), testenv.WithArgs("/bin/true"))
		r := runFG(t, rt, b)
		if r.Code == 0 || !strings.Contains(r.Stderr, "seccomp") || !strings.Contains(r.Stderr, "SCMP_ACT_BOGUS") {
			t.Fatalf("bad profile: %s", r)
		}
	})
}

// TestSeccompNotifyRefused: user notification needs a listener socket xrunc
// does not support yet; it says so rather than run unfiltered.
func TestSeccompNotifyRefused(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		rt.SkipIf(t, "runc", "runc 1.1 supports seccomp user notification")
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/nowhere.sock",
				Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
		}), testenv.WithArgs("/bin/true"))
		r := runFG(t, rt, b)
		if r.Code == 0 || !strings.Contains(r.Stderr, "listenerPath") {
			t.Fatalf("notify profile: %s", r)
		}
	})
}
