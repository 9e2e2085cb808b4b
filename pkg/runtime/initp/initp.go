// Package initp is the container side of xrunc: the code that runs as
// "xrunc init" inside the container's namespaces (entered by the nsenter
// constructor), sets up the rootfs and the process's credentials, and
// finally execs the container's program. The parent side is pkg/runtime;
// the conversation between them is pkg/runtime/syncproto.
//
// Credentials and some namespaces are per thread in Linux, so everything
// here runs on the main thread, locked before main() (see cmd/xrunc), and
// the final execve happens from that same thread.
//
// Internal to xstack; no API stability.
package initp

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/procattr"
	"github.com/xstack/xstack/pkg/runtime/syncproto"
)

// Main is the entry point of "xrunc init". It never returns.
func Main() {
	// Until the container's program replaces us, nothing in the container
	// may ptrace us or open our /proc files (CVE-2016-9962).
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	// We were executed through /proc/self/fd/N (see exeseal); give the
	// process a name that says what it is in top and /proc/PID/comm.
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&[]byte("xrunc:init\x00")[0])), 0, 0, 0)
	fd, err := strconv.Atoi(os.Getenv(syncproto.EnvSyncFd))
	if err != nil {
		fmt.Fprintln(os.Stderr, "xrunc init: must be started by xrunc (no sync fd)")
		os.Exit(255)
	}
	conn := syncproto.NewConn(fd)
	err = run(conn)
	// run only returns on failure; success ends in execve.
	if err == nil {
		err = errors.New("init returned without executing the container process")
	}
	if serr := conn.Send(&syncproto.Message{Type: syncproto.TypeError, Error: err.Error()}); serr != nil {
		// The parent is gone (create returned, start released us): the
		// container's stderr is the only place left to report.
		fmt.Fprintln(os.Stderr, "xrunc init:", err)
	}
	os.Exit(255)
}

func run(conn *syncproto.Conn) error {
	// The spare threads come up while the config is decoded and the
	// parent moves us into the container's cgroups (its limits apply only
	// once we report ready).
	threadsReady := spareThreads()
	if err := conn.Send(&syncproto.Message{Type: syncproto.TypeBooted}); err != nil {
		return fmt.Errorf("report start-up: %w", err)
	}
	cfg, nsFds, err := conn.ExpectConfig()
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if len(nsFds) != len(cfg.JoinTypes)+len(cfg.BindTrees) {
		return fmt.Errorf("protocol error: %d fds for %d namespaces and %d bind trees", len(nsFds), len(cfg.JoinTypes), len(cfg.BindTrees))
	}
	nsFds, treeFds := nsFds[:len(cfg.JoinTypes)], nsFds[len(cfg.JoinTypes):]
	// On this, the main thread, which execs the container's process (and
	// before the parent sets an exec's final affinity).
	if !cfg.KeepAffinity {
		all := procattr.AllCPUs()
		if err := unix.SchedSetaffinity(0, &all); err != nil {
			return fmt.Errorf("reset the CPU affinity inherited from xrunc's caller: %w", err)
		}
	}
	if cfg.SpecJSON != nil {
		if err := cfg.FromSpec(); err != nil {
			return err
		}
	}
	if cfg.Process == nil {
		return errors.New("protocol error: config message without a process")
	}
	// Clean out what our own start-up needed; the container's program gets
	// exactly the spec's environment.
	os.Unsetenv(syncproto.EnvSyncFd)
	if cfg.MountNSFd >= 0 {
		if err := joinMountNamespace(cfg.MountNSFd); err != nil {
			return err
		}
	}

	switch cfg.Mode {
	case syncproto.ModeCreate:
		if cfg.Container == nil {
			return errors.New("protocol error: create config without a container")
		}
		if _, _, err := conn.Expect(syncproto.TypePlaced); err != nil {
			return fmt.Errorf("wait for cgroup placement: %w", err)
		}
		threadsReady()
		if err := enterNamespaces(nsFds, cfg.JoinTypes, cfg.Unshare); err != nil {
			return err
		}
		return newContainer(conn, cfg, treeFds)
	case syncproto.ModeExec:
		threadsReady()
		return joinContainer(conn, cfg)
	}
	return fmt.Errorf("protocol error: unknown init mode %q", cfg.Mode)
}

// enterNamespaces joins and creates the namespaces the parent did not give
// us at fork time, on this thread only. Namespaces are per thread, and
// this (locked, main) thread does all the container's setup and the final
// execve; a mount namespace needs the thread's own filesystem context.
func enterNamespaces(fds []int, types []uintptr, unshare uintptr) error {
	if unshare&unix.CLONE_NEWNS != 0 || slices.Contains(types, unix.CLONE_NEWNS) {
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return fmt.Errorf("unshare filesystem context: %w", err)
		}
	}
	for i, fd := range fds {
		if err := unix.Setns(fd, int(types[i])); err != nil {
			return fmt.Errorf("join namespace %#x: %w", types[i], err)
		}
		unix.Close(fd)
	}
	if unshare != 0 {
		if err := unix.Unshare(int(unshare)); err != nil {
			return fmt.Errorf("create namespaces %#x: %w", unshare, err)
		}
	}
	return nil
}

// joinMountNamespace enters a mount namespace on this (locked, main)
// thread only: a multi-threaded process shares its filesystem context, so
// the thread leaves it first. The final execve happens from this thread.
func joinMountNamespace(fd int) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare filesystem context: %w", err)
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("join mount namespace: %w", err)
	}
	unix.Close(fd)
	return nil
}

// handshake tells the parent the setup is done and waits until it has
// saved the container's state.
func handshake(conn *syncproto.Conn) error {
	if err := conn.Send(&syncproto.Message{Type: syncproto.TypeReady}); err != nil {
		return err
	}
	if _, _, err := conn.Expect(syncproto.TypeRun); err != nil {
		return fmt.Errorf("wait for the go-ahead: %w", err)
	}
	return nil
}

func joinSessionKeyring(cfg *syncproto.InitConfig) error {
	if cfg.NoNewKeyring {
		return nil
	}
	// A fresh session keyring keeps the container from reading the host
	// session's keys. Kernels without keyrings, or where the user
	// namespace forbids it, keep the inherited one, as with runc.
	if _, err := unix.KeyctlJoinSessionKeyring("_ses." + cfg.ID); err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EDQUOT) {
			return nil
		}
		return fmt.Errorf("join session keyring: %w", err)
	}
	return nil
}

// spareThreads makes the Go runtime start the threads it will want later,
// before the container's limits apply: under a pids.max lower than our
// thread count every new thread fails, and the runtime aborts ("failed to
// create new OS thread"); the goroutine that waits for "xrunc start" on
// exec.fifo is one such later need. Goroutines blocked in a system call at
// the same time each hold a thread; once they return, the threads stay
// idle for the runtime to reuse. The returned function waits until they
// have returned, and puts GOMAXPROCS back.
func spareThreads() (wait func()) {
	const spare = 2
	// With a P each (we run on GOMAXPROCS=1, which the parent sets), the
	// goroutines get threads at once rather than when the scheduler finds
	// the first one blocked, and this goroutine goes on meanwhile.
	procs := runtime.GOMAXPROCS(spare + 1)
	var wg sync.WaitGroup
	for range spare {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts := unix.Timespec{Nsec: 1_000_000}
			unix.Nanosleep(&ts, nil)
		}()
	}
	return func() {
		wg.Wait()
		runtime.GOMAXPROCS(procs)
	}
}
