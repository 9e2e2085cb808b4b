package main

import (
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/cli"
	"github.com/xstack/xstack/pkg/runtime"
	rspec "github.com/xstack/xstack/pkg/runtime/spec"
	"github.com/xstack/xstack/pkg/runtime/terminal"
)

var runCommand = &cli.Command{
	Name:      "run",
	Usage:     "create and run a container",
	ArgsUsage: "<container-id>",
	Flags: append(append([]cli.Flag(nil), bundleFlags...),
		cli.Flag{Names: []string{"detach", "d"}, Kind: cli.Bool, Usage: "detach from the container's process"},
		cli.Flag{Names: []string{"keep"}, Kind: cli.Bool, Usage: "do not delete the container after it exits"},
		cli.Flag{Names: []string{"no-subreaper"}, Kind: cli.Bool, Usage: "disable the use of the subreaper used to reap reparented processes"},
	),
	Action: func(ctx *cli.Context) error {
		if err := ctx.NArg(1, 1); err != nil {
			return err
		}
		o, err := createOpts(ctx)
		if err != nil {
			return err
		}
		detach := ctx.Bool("detach")
		var console *consolePair
		if !detach && o.ConsoleSocket == "" {
			if s, err := rspec.Load(o.Bundle); err == nil && s.Process != nil && s.Process.Terminal {
				if console, err = newConsolePair(); err != nil {
					return err
				}
				defer console.close()
				o.Console = console.remote
			}
		}
		if !detach && !ctx.Bool("no-subreaper") {
			// Orphans of a container without its own pid namespace end up
			// with us rather than with the host's init.
			_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
		}
		c, err := g.rt.Create(ctx.Args[0], o)
		if err != nil {
			return fmt.Errorf("xrunc run failed: %w", err)
		}
		if detach {
			if err := c.Start(); err != nil {
				_ = c.Delete(true)
				return fmt.Errorf("xrunc run failed: %w", err)
			}
			return nil
		}
		code, err := runForeground(c, console)
		if !ctx.Bool("keep") {
			if derr := c.Delete(true); derr != nil && err == nil {
				err = derr
			}
		}
		if err != nil {
			return err
		}
		return exitError{code}
	},
}

func runForeground(c *runtime.Container, console *consolePair) (int, error) {
	signals := forwardSignals(func(s os.Signal) { _ = c.Signal(s.(unix.Signal), false) })
	defer signal.Stop(signals)
	var wait func()
	if console != nil {
		var err error
		if wait, err = console.attach(); err != nil {
			return -1, err
		}
	}
	if err := c.Start(); err != nil {
		return -1, fmt.Errorf("xrunc run failed: %w", err)
	}
	code, err := c.Wait()
	if wait != nil {
		wait()
	}
	return code, err
}

// forwardSignals relays the signals xrunc receives to the container
// process, like runc's signal handler.
func forwardSignals(send func(os.Signal)) chan os.Signal {
	ch := make(chan os.Signal, 32)
	signal.Notify(ch)
	go func() {
		for s := range ch {
			switch s {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGWINCH, unix.SIGPIPE:
				// Ours, or handled by the console code.
				continue
			}
			send(s)
		}
	}()
	return ch
}

// consolePair is the console socket xrunc uses itself when it runs a
// terminal container in the foreground: the init sends the pty master over
// it and xrunc copies between its own terminal and the master.
type consolePair struct {
	local  *os.File
	remote *os.File
	master *os.File
	raw    *terminal.State
}

func newConsolePair() (*consolePair, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socketpair: %w", err)
	}
	return &consolePair{local: os.NewFile(uintptr(fds[0]), "console-local"), remote: os.NewFile(uintptr(fds[1]), "console-remote")}, nil
}

// attach receives the master, puts our terminal in raw mode and starts
// copying. The returned func waits for the output to drain.
func (p *consolePair) attach() (func(), error) {
	master, err := terminal.RecvMaster(p.local)
	if err != nil {
		return nil, err
	}
	p.master = master
	if p.raw, err = terminal.MakeRaw(int(os.Stdin.Fd())); err != nil {
		return nil, err
	}
	terminal.CopyWinsize(int(os.Stdin.Fd()), master)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	go func() {
		for range winch {
			terminal.CopyWinsize(int(os.Stdin.Fd()), master)
		}
	}()
	return terminal.Pump(master, os.Stdin, os.Stdout), nil
}

func (p *consolePair) close() {
	p.raw.Restore()
	p.local.Close()
	p.remote.Close()
	if p.master != nil {
		p.master.Close()
	}
}
