package seccomp

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// helperEnv selects a helper mode of the re-executed test binary: the filter
// is loaded in a child so the test process itself stays unfiltered.
const helperEnv = "XSTACK_SECCOMP_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := helper(mode, os.Getenv("XSTACK_SECCOMP_TEST_DIR")); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helper(mode, dir string) error {
	runtime.LockOSThread() // without TSYNC the filter only covers this thread
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	var p *specs.LinuxSeccomp
	switch mode {
	case "errno":
		p = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: u(42)},
				{Names: []string{"fchmodat"}, Action: specs.ActErrno, ErrnoRet: u(43),
					Args: []specs.LinuxSeccompArg{{Index: 2, Op: specs.OpEqualTo, Value: 0o777}}}},
		}
	case "notify":
		p = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Flags:         []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagWaitKillableRecv},
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"kexec_load"}, Action: specs.ActNotify}},
		}
	case "big":
		// The kernel's checker must accept a docker-sized program: allow
		// every x86_64 name (the three with conditional rules aside) and
		// deny the rest with EPERM.
		p = bigProfile(len(sysX86_64) - 3)
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	prog, err := Compile(p)
	if err != nil {
		return err
	}
	fd, err := Load(prog)
	if err != nil {
		return err
	}
	if m, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil || m != 2 {
		return fmt.Errorf("PR_GET_SECCOMP = %d, %v; want mode 2 (filter)", m, err)
	}
	switch mode {
	case "errno":
		if fd != -1 {
			return fmt.Errorf("listener fd %d without notify", fd)
		}
		err := os.Mkdir(filepath.Join(dir, "denied"), 0o755)
		if !errors.Is(err, unix.Errno(42)) {
			return fmt.Errorf("mkdir: got %v, want errno 42", err)
		}
		f := filepath.Join(dir, "file")
		if err := os.WriteFile(f, []byte("ok"), 0o600); err != nil {
			return fmt.Errorf("write file: %w", err)
		}
		if err := unix.Fchmodat(unix.AT_FDCWD, f, 0o777, 0); !errors.Is(err, unix.Errno(43)) {
			return fmt.Errorf("fchmodat 0777: got %v, want errno 43", err)
		}
		if err := unix.Fchmodat(unix.AT_FDCWD, f, 0o644, 0); err != nil {
			return fmt.Errorf("fchmodat 0644: %w", err)
		}
	case "notify":
		if fd <= 2 {
			return fmt.Errorf("listener fd %d, want > 2", fd)
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			return fmt.Errorf("listener fd %d: %w", fd, err)
		}
		if flags&unix.FD_CLOEXEC == 0 {
			return fmt.Errorf("listener fd %d is not close-on-exec", fd)
		}
		if err := unix.Close(fd); err != nil {
			return err
		}
	}
	if _, err := os.ReadDir(dir); err != nil {
		return fmt.Errorf("other syscalls must work: %w", err)
	}
	fmt.Println("ok", os.Getpid())
	return nil
}

func TestLoad(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: loading a seccomp filter is tested as root only")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("skipping: filters are compiled for x86_64")
	}
	if _, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil {
		t.Skipf("skipping: seccomp unavailable: %v", err)
	}
	avail, _ := os.ReadFile("/proc/sys/kernel/seccomp/actions_avail")
	for _, mode := range []string{"errno", "notify", "big"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "notify" && !strings.Contains(string(avail), "user_notif") {
				t.Skip("skipping: kernel lacks SECCOMP_RET_USER_NOTIF")
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+mode, "XSTACK_SECCOMP_TEST_DIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("helper %s: %v\n%s", mode, err, out)
			}
			if !strings.HasPrefix(string(out), "ok ") {
				t.Fatalf("helper %s: unexpected output %q", mode, out)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	t.Parallel()
	for _, prog := range []*Program{nil, {}} {
		if _, err := Load(prog); err == nil {
			t.Errorf("Load(%v): no error", prog)
		}
	}
}
