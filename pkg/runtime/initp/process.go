package initp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/caps"
	"github.com/xstack/xstack/pkg/runtime/procattr"
	"github.com/xstack/xstack/pkg/runtime/seccomp"
	"github.com/xstack/xstack/pkg/runtime/syncproto"
	"github.com/xstack/xstack/pkg/runtime/user"
)

// prepareProcess applies everything about the process itself, in the order
// the kernel allows: the bounding set needs CAP_SETPCAP so it is dropped
// first; the switch to the container user keeps the permitted set only
// with PR_SET_KEEPCAPS; the final sets are installed last. It returns the
// resolved executable, the environment, and what to do right before
// execve: load the seccomp filter as late as possible, so the fewest of
// xrunc's own syscalls go through it. Without no_new_privs the filter needs
// CAP_SYS_ADMIN, so it is loaded here, before the capabilities are dropped
// (as runc does). A profile with user notification is loaded before this
// returns, and its listener fd (else -1) is returned for the parent.
func prepareProcess(cfg *syncproto.InitConfig) (string, []string, func() error, int, error) {
	p := cfg.Process
	loadSeccomp := func() error { return nil }
	listener, notify := -1, false
	if cfg.Seccomp != nil {
		prog, err := seccomp.Compile(cfg.Seccomp)
		if err != nil {
			return "", nil, nil, -1, fmt.Errorf("seccomp: %w", err)
		}
		notify = prog.Notify
		loadSeccomp = func() error {
			fd, err := seccomp.Load(prog)
			if err != nil {
				return fmt.Errorf("load seccomp profile: %w", err)
			}
			listener = fd // -1 unless the profile notifies
			return nil
		}
	}
	env := dedupEnv(p.Env)
	if !hasEnv(env, "HOME") {
		env = append(env, "HOME="+homeOf(p.User.UID))
	}

	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	} else {
		unix.Umask(0o022)
	}
	// Before any seccomp filter, which may not allow set_mempolicy.
	if err := procattr.SetMemoryPolicy(cfg.MemoryPolicy); err != nil {
		return "", nil, nil, -1, err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return "", nil, nil, -1, fmt.Errorf("set no_new_privs: %w", err)
		}
	}

	if !p.NoNewPrivileges {
		if err := loadSeccomp(); err != nil {
			return "", nil, nil, -1, err
		}
		loadSeccomp = func() error { return nil }
	}
	// While the init still has all its capabilities: a realtime policy, a
	// negative nice or the RT I/O class need CAP_SYS_NICE or CAP_SYS_ADMIN.
	var personality *specs.LinuxPersonality
	if cfg.Container != nil {
		personality = cfg.Container.Personality
	}
	if err := procattr.Apply(p.Scheduler, p.IOPriority, personality); err != nil {
		return "", nil, nil, -1, err
	}
	capSet, _ := caps.FromSpec(p.Capabilities)
	if err := capSet.DropBounding(); err != nil {
		return "", nil, nil, -1, err
	}
	// Try the working directory as root first: it may be reachable only
	// with root's permissions, or only with the user's (root squashing).
	cwdDone := unix.Chdir(p.Cwd) == nil
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return "", nil, nil, -1, fmt.Errorf("set keepcaps: %w", err)
	}
	if err := setUser(p.User); err != nil {
		return "", nil, nil, -1, err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return "", nil, nil, -1, fmt.Errorf("clear keepcaps: %w", err)
	}
	if err := capSet.Apply(); err != nil {
		return "", nil, nil, -1, err
	}
	if !cwdDone {
		if err := unix.Chdir(p.Cwd); err != nil {
			return "", nil, nil, -1, fmt.Errorf("chdir to cwd (%q) set in config.json: %w", p.Cwd, err)
		}
	}
	if err := verifyCwd(); err != nil {
		return "", nil, nil, -1, err
	}
	if err := closeExtraFds(cfg.PreserveFds); err != nil {
		return "", nil, nil, -1, err
	}
	exe, err := lookPath(p.Args[0], env)
	if err != nil {
		return "", nil, nil, -1, err
	}
	if err := keepNofile(p.Rlimits); err != nil {
		return "", nil, nil, -1, err
	}
	if notify && p.NoNewPrivileges {
		// The notification fd must reach the parent, and through it the
		// agent, before the container runs: load now, as late as the
		// parent's presence allows.
		if err := loadSeccomp(); err != nil {
			return "", nil, nil, -1, err
		}
		loadSeccomp = func() error { return nil }
	}
	return exe, env, loadSeccomp, listener, nil
}

// dedupEnv keeps one entry per variable, the last one given winning, in
// the order of first appearance: "exec -e X=2" overrides the spec's X=1.
func dedupEnv(env []string) []string {
	out := make([]string, 0, len(env))
	index := make(map[string]int, len(env))
	for _, e := range env {
		key, _, _ := strings.Cut(e, "=")
		if i, ok := index[key]; ok {
			out[i] = e
			continue
		}
		index[key] = len(out)
		out = append(out, e)
	}
	return out
}

// keepNofile re-applies the spec's RLIMIT_NOFILE from this process. The
// parent set it with prlimit, possibly before the Go runtime here started
// and raised the soft limit for itself; the runtime would then "restore"
// that raised value on exec. Setting it through syscall.Setrlimit puts the
// spec's value back and tells the runtime to leave it alone. Without a
// spec value, the runtime restores the limit inherited from the caller.
func keepNofile(rlimits []specs.POSIXRlimit) error {
	for _, r := range rlimits {
		if r.Type != "RLIMIT_NOFILE" {
			continue
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			return fmt.Errorf("set RLIMIT_NOFILE: %w", err)
		}
	}
	return nil
}

// setUser switches the calling thread to the container user with raw
// per-thread system calls: the glibc and Go wrappers change every thread,
// which is not possible (or wanted) here; execve happens from this thread.
func setUser(u specs.User) error {
	groups := make([]uint32, len(u.AdditionalGids))
	copy(groups, u.AdditionalGids)
	var ptr unsafe.Pointer
	if len(groups) > 0 {
		ptr = unsafe.Pointer(&groups[0])
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(ptr), 0); errno != 0 {
		// A user namespace with setgroups denied can only keep no groups.
		if !(errno == unix.EPERM && len(groups) == 0) {
			return fmt.Errorf("setgroups %v: %w", groups, errno)
		}
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); errno != 0 {
		return fmt.Errorf("setresgid %d: %w", u.GID, errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); errno != 0 {
		return fmt.Errorf("setresuid %d: %w", u.UID, errno)
	}
	return nil
}

// verifyCwd refuses a working directory outside the container's root: a
// leaked host fd used as cwd (process.cwd = /proc/self/fd/N) would give the
// container the host's filesystem (CVE-2024-21626). getcwd(2) reports such
// a directory as "(unreachable)/...".
func verifyCwd() error {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Getcwd(buf)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return errors.New("current working directory is outside of the container's root")
		}
		return fmt.Errorf("getcwd: %w", err)
	}
	if n == 0 || buf[0] != '/' {
		return errors.New("current working directory is outside of the container's root")
	}
	return nil
}

// closeExtraFds marks every fd above stdio and the preserved ones
// close-on-exec, so nothing of xrunc's (sockets, the sync pipe, the Go
// runtime's epoll fd, anything leaked by a caller) reaches the container.
func closeExtraFds(preserve int) error {
	first := uint(3 + preserve)
	if err := unix.CloseRange(first, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("mark fds close-on-exec: %w", err)
	}
	return nil
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

// homeOf looks up uid's home directory in the container's /etc/passwd (we
// are inside the container's root already).
func homeOf(uid uint32) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return "/"
	}
	defer f.Close()
	entries, err := user.ParsePasswd(f)
	if err != nil {
		return "/"
	}
	return user.HomeFor(entries, uid)
}

// lookPath finds the executable the way execvp(3) would, with the
// process's own PATH (not ours).
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := checkExecutable(name); err != nil {
			return "", fmt.Errorf("exec: %q: %w", name, err)
		}
		return name, nil
	}
	path := ""
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("no such file or directory")
		}
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	if err := unix.Access(p, unix.X_OK); err != nil {
		return fmt.Errorf("permission denied")
	}
	return nil
}

// execve replaces the init with the container's program.
func execve(exe string, args, env []string) error {
	if err := syscall.Exec(exe, args, env); err != nil {
		return fmt.Errorf("exec %s: %w", exe, err)
	}
	return nil
}

// sendDone tells the parent the process is ready to run, handing over the
// seccomp listener fd if there is one.
func sendDone(conn *syncproto.Conn, listener int) error {
	if listener < 0 {
		return conn.Send(&syncproto.Message{Type: syncproto.TypeDone})
	}
	defer unix.Close(listener)
	return conn.Send(&syncproto.Message{Type: syncproto.TypeDone}, listener)
}
