package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/cli"
	"github.com/xstack/xstack/pkg/runtime"
)

var bundleFlags = []cli.Flag{
	{Names: []string{"bundle", "b"}, Usage: "path to the root of the bundle directory, defaults to the current directory"},
	{Names: []string{"console-socket"}, Usage: "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"},
	{Names: []string{"pid-file"}, Usage: "specify the file to write the process id to"},
	{Names: []string{"no-pivot"}, Kind: cli.Bool, Usage: "do not use pivot root to jail process inside rootfs"},
	{Names: []string{"no-new-keyring"}, Kind: cli.Bool, Usage: "do not create a new session keyring for the container"},
	{Names: []string{"preserve-fds"}, Default: "0", Usage: "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"},
}

var createCommand = &cli.Command{
	Name:      "create",
	Usage:     "create a container",
	ArgsUsage: "<container-id>",
	Flags:     bundleFlags,
	Action: func(ctx *cli.Context) error {
		if err := ctx.NArg(1, 1); err != nil {
			return err
		}
		o, err := createOpts(ctx)
		if err != nil {
			return err
		}
		if _, err := g.rt.Create(ctx.Args[0], o); err != nil {
			return fmt.Errorf("xrunc create failed: %w", err)
		}
		return nil
	},
}

func createOpts(ctx *cli.Context) (runtime.CreateOpts, error) {
	if err := checkCgroupDriver(); err != nil {
		return runtime.CreateOpts{}, err
	}
	preserved, err := preservedFds(ctx)
	if err != nil {
		return runtime.CreateOpts{}, err
	}
	bundle := ctx.String("bundle")
	if bundle == "" {
		bundle = "."
	}
	return runtime.CreateOpts{
		Bundle:        bundle,
		PidFile:       ctx.String("pid-file"),
		ConsoleSocket: ctx.String("console-socket"),
		NoPivot:       ctx.Bool("no-pivot"),
		NoNewKeyring:  ctx.Bool("no-new-keyring"),
		Preserved:     preserved,
		Stdio:         runtime.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr},
	}, nil
}

// preservedFds returns the fds after stdio that the container keeps:
// systemd's socket-activation fds ($LISTEN_FDS) plus --preserve-fds.
func preservedFds(ctx *cli.Context) ([]*os.File, error) {
	n, err := ctx.Int("preserve-fds")
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, errors.New("--preserve-fds must not be negative")
	}
	if v := os.Getenv("LISTEN_FDS"); v != "" {
		listen, err := strconv.Atoi(v)
		if err != nil || listen < 0 {
			return nil, fmt.Errorf("invalid LISTEN_FDS %q", v)
		}
		n += listen
	}
	// Nothing else the caller left open may reach the container's init:
	// a leaked host directory fd is a way out of the rootfs
	// (CVE-2024-21626).
	if err := unix.CloseRange(uint(3+n), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return nil, fmt.Errorf("mark inherited fds close-on-exec: %w", err)
	}
	files := make([]*os.File, n)
	for i := range files {
		files[i] = os.NewFile(uintptr(3+i), "preserved-fd-"+strconv.Itoa(3+i))
	}
	return files, nil
}

// checkCgroupDriver rejects --systemd-cgroup: xrunc manages cgroupfs
// directly, and says why it cannot honour the flag.
func checkCgroupDriver() error {
	if !g.systemdCgroup {
		return nil
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return errors.New("systemd cgroup driver requested (--systemd-cgroup), but systemd is not running on this host")
	}
	return errors.New("the systemd cgroup driver (--systemd-cgroup) is not supported by xrunc yet; use the default cgroupfs driver")
}
