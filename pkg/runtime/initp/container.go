package initp

import (
	"fmt"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/hooks"
	"github.com/xstack/xstack/pkg/runtime/rootfs"
	"github.com/xstack/xstack/pkg/runtime/syncproto"
	"github.com/xstack/xstack/pkg/runtime/terminal"
)

// fifoResult is the outcome of opening exec.fifo for writing, which blocks
// until "xrunc start" opens it for reading.
type fifoResult struct {
	fd  int
	err error
}

// newContainer sets up a new container and execs its program.
func newContainer(conn *syncproto.Conn, cfg *syncproto.InitConfig, bindTrees []int) error {
	s := cfg.Container
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if cfg.NewCgroupNS {
		// The parent placed us in our cgroup before sending the config, so
		// the new namespace's root is the container's cgroup. Namespaces
		// are per thread: the final execve happens from this thread.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	if err := joinSessionKeyring(cfg); err != nil {
		return err
	}

	// Start waiting for "xrunc start" now: the open goes through the
	// host's /proc, which is gone after the root switch. It blocks until a
	// reader opens the fifo, on a thread of its own.
	var fifo chan fifoResult
	if cfg.FifoFd >= 0 {
		fifo = make(chan fifoResult, 1)
		path := "/proc/self/fd/" + strconv.Itoa(cfg.FifoFd)
		go func() {
			fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
			fifo <- fifoResult{fd, err}
		}()
	}

	rc := &rootfs.Config{
		Rootfs:      cfg.Rootfs,
		Readonly:    s.ReadonlyRoot,
		Mounts:      s.Mounts,
		Devices:     s.Devices,
		Propagation: s.RootfsPropagation,
		UserNS:      s.UserNS,
		CgroupNS:    cfg.NewCgroupNS,
		Cgroups:     cfg.Cgroups,
		NoPivot:     cfg.NoPivot,
		Cwd:         cfg.Process.Cwd,
		BindTrees:   map[int]int{},
	}
	for i, idx := range cfg.BindTrees {
		rc.BindTrees[idx] = bindTrees[i]
	}
	if err := rootfs.Prepare(rc); err != nil {
		return err
	}
	if err := createHooks(conn, cfg); err != nil {
		return err
	}
	if err := rootfs.SwitchRoot(rc); err != nil {
		return err
	}
	if cfg.Process.Terminal {
		if err := setupConsole(cfg, true); err != nil {
			return err
		}
	}
	if err := rootfs.FinalizeRoot(rc); err != nil {
		return err
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	if s.Domainname != "" {
		if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
			return fmt.Errorf("set domainname: %w", err)
		}
	}
	if err := applySysctls(s.Sysctl); err != nil {
		return err
	}
	if err := rootfs.ProtectPaths(s.ReadonlyPaths, s.MaskedPaths); err != nil {
		return err
	}

	if err := handshake(conn); err != nil {
		return err
	}
	exe, env, beforeExec, listener, err := prepareProcess(cfg)
	if err != nil {
		return err
	}
	if err := sendDone(conn, listener); err != nil {
		return err
	}
	if fifo == nil {
		if err := hooks.Run(hooks.StartContainer, s.StartContainerHooks, hookState(cfg, specs.StateCreated)); err != nil {
			return err
		}
		if err := beforeExec(); err != nil {
			return err
		}
		return execve(exe, cfg.Process.Args, env)
	}
	// From here on the parent is gone; errors go to the container's stderr.
	conn.Close()
	res := <-fifo
	if res.err != nil {
		fmt.Fprintln(os.Stderr, "xrunc init: open exec fifo:", res.err)
		os.Exit(255)
	}
	if _, err := unix.Write(res.fd, []byte("0")); err != nil {
		fmt.Fprintln(os.Stderr, "xrunc init: write exec fifo:", err)
		os.Exit(255)
	}
	if err := hooks.Run(hooks.StartContainer, s.StartContainerHooks, hookState(cfg, specs.StateCreated)); err != nil {
		fmt.Fprintln(os.Stderr, "xrunc init:", err)
		os.Exit(255)
	}
	if err := beforeExec(); err != nil {
		fmt.Fprintln(os.Stderr, "xrunc init:", err)
		os.Exit(255)
	}
	if err := execve(exe, cfg.Process.Args, env); err != nil {
		fmt.Fprintln(os.Stderr, "xrunc init:", err)
		os.Exit(255)
	}
	return nil
}

// createHooks lets the parent run prestart and createRuntime hooks while
// the container's namespaces exist but the root is not switched yet, then
// runs createContainer hooks here, in the container's namespaces (their
// paths still resolve on the host's filesystem).
func createHooks(conn *syncproto.Conn, cfg *syncproto.InitConfig) error {
	if !cfg.CreateHooks {
		return nil
	}
	if err := conn.Send(&syncproto.Message{Type: syncproto.TypeHooks}); err != nil {
		return err
	}
	if _, _, err := conn.Expect(syncproto.TypeHooksDone); err != nil {
		return err
	}
	return hooks.Run(hooks.CreateContainer, cfg.Container.CreateContainerHooks, hookState(cfg, specs.StateCreating))
}

func hookState(cfg *syncproto.InitConfig, status specs.ContainerState) *specs.State {
	return &specs.State{
		Version:     cfg.Container.OCIVersion,
		ID:          cfg.ID,
		Status:      status,
		Pid:         os.Getpid(),
		Bundle:      cfg.Bundle,
		Annotations: cfg.Container.Annotations,
	}
}

// setupConsole creates the pty, hands the master to whoever listens on the
// console socket and makes the slave our terminal. With bind, the slave is
// also mounted at /dev/console (new containers only).
func setupConsole(cfg *syncproto.InitConfig, bind bool) error {
	if cfg.ConsoleFd < 0 {
		return fmt.Errorf("process.terminal is set but no console socket was given")
	}
	sock := os.NewFile(uintptr(cfg.ConsoleFd), "console-socket")
	defer sock.Close()
	master, slave, err := terminal.Open()
	if err != nil {
		return err
	}
	defer master.Close()
	defer slave.Close()
	if box := cfg.Process.ConsoleSize; box != nil {
		if err := terminal.SetSize(master, uint16(box.Height), uint16(box.Width)); err != nil {
			return err
		}
	}
	if bind {
		if err := rootfs.BindConsole(slave); err != nil {
			return err
		}
	}
	if err := terminal.SendMaster(sock, master); err != nil {
		return err
	}
	return terminal.MakeControlling(slave)
}
