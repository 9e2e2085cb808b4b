package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/cli"
	"github.com/xstack/xstack/pkg/runtime"
	rspec "github.com/xstack/xstack/pkg/runtime/spec"
	"github.com/xstack/xstack/pkg/runtime/user"
)

var execCommand = &cli.Command{
	Name:      "exec",
	Usage:     "execute new process inside the container",
	ArgsUsage: "<container-id> <command> [command options]  || -p process.json <container-id>",
	// Words after the command belong to it, flags included.
	KeepArgOrder: true,
	Flags: []cli.Flag{
		{Names: []string{"console-socket"}, Usage: "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"},
		{Names: []string{"cwd"}, Usage: "current working directory in the container"},
		{Names: []string{"env", "e"}, Kind: cli.List, Usage: "set environment variables"},
		{Names: []string{"tty", "t"}, Kind: cli.Bool, Usage: "allocate a pseudo-TTY"},
		{Names: []string{"user", "u"}, Usage: "UID (format: <uid>[:<gid>])"},
		{Names: []string{"additional-gids", "g"}, Kind: cli.List, Usage: "additional gids"},
		{Names: []string{"process", "p"}, Usage: "path to the process.json"},
		{Names: []string{"detach", "d"}, Kind: cli.Bool, Usage: "detach from the container's process"},
		{Names: []string{"pid-file"}, Usage: "specify the file to write the process id to"},
		{Names: []string{"process-label"}, Usage: "set the asm process label for the process commonly used with selinux"},
		{Names: []string{"apparmor"}, Usage: "set the apparmor profile for the process"},
		{Names: []string{"no-new-privs"}, Kind: cli.Bool, Usage: "set the no new privileges value for the process"},
		{Names: []string{"cap", "c"}, Kind: cli.List, Usage: "add a capability to the bounding set for the process"},
		{Names: []string{"preserve-fds"}, Default: "0", Usage: "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"},
		{Names: []string{"cgroup"}, Kind: cli.List, Usage: "run the process in an (existing) sub-cgroup(s)"},
		{Names: []string{"ignore-paused"}, Kind: cli.Bool, Usage: "allow exec in a paused container"},
	},
	Action: func(ctx *cli.Context) error {
		if err := execAction(ctx); err != nil {
			var exit exitError
			if errors.As(err, &exit) {
				return err
			}
			return codeError{code: 255, err: err}
		}
		return nil
	},
}

func execAction(ctx *cli.Context) error {
	if len(ctx.Args) < 1 {
		return &cli.UsageError{Msg: `"exec" requires a minimum of 1 argument(s)`}
	}
	c, err := g.rt.Load(ctx.Args[0])
	if err != nil {
		return err
	}
	p, err := execProcess(ctx, c)
	if err != nil {
		return err
	}
	preserved, err := preservedFds(ctx)
	if err != nil {
		return err
	}
	o := runtime.ExecOpts{
		Process:       p,
		PidFile:       ctx.String("pid-file"),
		ConsoleSocket: ctx.String("console-socket"),
		Preserved:     preserved,
		Stdio:         runtime.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr},
		IgnorePaused:  ctx.Bool("ignore-paused"),
	}
	detach := ctx.Bool("detach")
	var console *consolePair
	if p.Terminal && !detach && o.ConsoleSocket == "" {
		if console, err = newConsolePair(); err != nil {
			return err
		}
		defer console.close()
		o.Console = console.remote
	}
	proc, err := c.Exec(o)
	if err != nil {
		return fmt.Errorf("exec failed: %w", err)
	}
	if detach {
		return nil
	}
	signals := forwardSignals(func(s os.Signal) { _ = proc.Signal(s) })
	defer signal.Stop(signals)
	var wait func()
	if console != nil {
		if wait, err = console.attach(); err != nil {
			_ = proc.Signal(unix.SIGKILL)
		}
	}
	code, werr := proc.Wait()
	if wait != nil {
		wait()
	}
	if err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	return exitError{code}
}

// execProcess builds the process to run: from --process, or from the
// container's own process description with the command-line overrides,
// as runc does.
func execProcess(ctx *cli.Context, c *runtime.Container) (*specs.Process, error) {
	for _, unsupported := range []string{"process-label", "apparmor"} {
		if ctx.String(unsupported) != "" {
			return nil, fmt.Errorf("--%s: security labels are not supported by xrunc yet", unsupported)
		}
	}
	if len(ctx.List("cgroup")) > 0 {
		return nil, errors.New("--cgroup: exec into a sub-cgroup is not supported by xrunc yet")
	}
	if path := ctx.String("process"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read process file: %w", err)
		}
		var p specs.Process
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("parse process file %s: %w", path, err)
		}
		return &p, nil
	}
	if len(ctx.Args) < 2 {
		return nil, &cli.UsageError{Msg: "exec: a command is required (or --process)"}
	}
	// Like runc, the defaults come from the bundle's current config.json.
	spec, err := rspec.Load(c.State().Bundle)
	if err != nil {
		return nil, err
	}
	base := spec.Process
	if base == nil {
		return nil, errors.New("the bundle's config.json has no process to take defaults from")
	}
	// Everything else of the container's process (rlimits, scheduler,
	// oomScoreAdj, execCPUAffinity...) carries over, as with runc.
	cp := *base
	p := &cp
	p.Args = ctx.Args[1:]
	p.Env = append(append([]string(nil), base.Env...), ctx.List("env")...)
	p.Terminal = ctx.Bool("tty")
	p.User.AdditionalGids = append([]uint32(nil), base.User.AdditionalGids...)
	if base.Capabilities != nil {
		caps := *base.Capabilities
		p.Capabilities = &caps
	} else {
		p.Capabilities = &specs.LinuxCapabilities{}
	}
	if cwd := ctx.String("cwd"); cwd != "" {
		p.Cwd = cwd
	}
	for _, cap := range ctx.List("cap") {
		// Never the inheritable set (CVE-2022-29162).
		caps := p.Capabilities
		caps.Bounding = append(append([]string(nil), caps.Bounding...), cap)
		caps.Effective = append(append([]string(nil), caps.Effective...), cap)
		caps.Permitted = append(append([]string(nil), caps.Permitted...), cap)
	}
	if ctx.IsSet("no-new-privs") {
		p.NoNewPrivileges = ctx.Bool("no-new-privs")
	}
	if u := ctx.String("user"); u != "" {
		uid, gid, hasGID, err := user.ParseUIDGID(u)
		if err != nil {
			return nil, err
		}
		p.User.UID = uid
		if hasGID {
			p.User.GID = gid
		}
	}
	for _, s := range ctx.List("additional-gids") {
		gid, err := user.ParseID(s)
		if err != nil {
			return nil, fmt.Errorf("--additional-gids: %w", err)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, gid)
	}
	return p, nil
}
