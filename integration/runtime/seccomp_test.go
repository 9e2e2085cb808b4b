package runtime_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

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

// TestSeccompNotify: with SCMP_ACT_NOTIFY the runtime sends the listener
// fd to the agent at listenerPath, with the container's state and the
// listenerMetadata, for the init and again for each exec; the agent's
// answers become the syscalls' results. The agent here answers every mkdir
// with EXDEV, which no real mkdir on the read-only root would return.
func TestSeccompNotify(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		// Without no_new_privs the filter is loaded earlier, before the
		// capabilities are dropped: both paths must hand the fd over.
		for _, nnp := range []bool{true, false} {
			t.Run(fmt.Sprintf("noNewPrivileges=%v", nnp), func(t *testing.T) {
				agent := startNotifyAgent(t)
				b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
					s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: agent.path, ListenerMetadata: "xtest-meta",
						Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}}}
					s.Process.NoNewPrivileges = nnp
				}), testenv.WithArgs("/bin/sh", "-c", "/xtest mkdir /made-by-init; exec /xtest sleep 3600"))
				c := rt.CreateStart(t, b)
				if out := strings.TrimSpace(execOK(t, rt, c.ID, nil, "/xtest", "mkdir", "/made-by-exec")); out != "EXDEV" {
					t.Errorf("exec's mkdir: %q, want the agent's EXDEV", out)
				}
				waitFor(t, func() bool { return strings.Contains(c.Output(t), "EXDEV") }, "the init's mkdir answered by the agent")
				got := agent.states()
				if len(got) < 2 {
					t.Fatalf("agent got %d listener fds, want one for the init and one for the exec", len(got))
				}
				for _, st := range got {
					if st.Metadata != "xtest-meta" || len(st.Fds) != 1 || st.Fds[0] != specs.SeccompFdName || st.State.ID != c.ID || st.Pid <= 0 {
						t.Errorf("agent got %+v", st)
					}
				}
				if n := agent.answered(); n < 2 {
					t.Errorf("agent answered %d notifications, want the init's and the exec's", n)
				}
			})
		}
	})
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for end := time.Now().Add(shortWait); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// notifyAgent is a seccomp agent: it takes listener fds on a unix socket
// and answers every notification with EXDEV.
type notifyAgent struct {
	path    string
	mu      sync.Mutex
	got     []specs.ContainerProcessState
	answers int
}

func (a *notifyAgent) states() []specs.ContainerProcessState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]specs.ContainerProcessState(nil), a.got...)
}

func (a *notifyAgent) answered() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.answers
}

func startNotifyAgent(t *testing.T) *notifyAgent {
	t.Helper()
	a := &notifyAgent{path: filepath.Join(testenv.TempDir(t, 0o700), "agent.sock")}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: a.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.AcceptUnix()
			if err != nil {
				return
			}
			buf, oob := make([]byte, 64<<10), make([]byte, 256)
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			conn.Close()
			if err != nil {
				continue
			}
			var st specs.ContainerProcessState
			json.Unmarshal(buf[:n], &st)
			var fds []int
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) > 0 {
				fds, _ = unix.ParseUnixRights(&msgs[0])
			}
			a.mu.Lock()
			a.got = append(a.got, st)
			a.mu.Unlock()
			for _, fd := range fds {
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer unix.Close(fd)
					a.serve(fd, stop)
				}()
			}
		}
	}()
	return a
}

// serve answers notifications on one listener fd until stop.
func (a *notifyAgent) serve(fd int, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, 100); err != nil || n == 0 {
			continue
		}
		if pfd[0].Revents&unix.POLLHUP != 0 {
			return // every process of the filter is gone
		}
		var req [80]byte // struct seccomp_notif, zeroed as the kernel asks
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req[0]))); errno != 0 {
			continue
		}
		var resp [24]byte // struct seccomp_notif_resp: id, val, error, flags
		copy(resp[:8], req[:8])
		errno := -int32(unix.EXDEV)
		binary.LittleEndian.PutUint32(resp[16:], uint32(errno))
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp[0]))); errno == 0 {
			a.mu.Lock()
			a.answers++
			a.mu.Unlock()
		}
	}
}
