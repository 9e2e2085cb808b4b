// xrunc is a short-lived process: skip the runtime's cgroup-aware
// GOMAXPROCS probing, which reads cgroup files at every start and keeps
// them open (the container's init would inherit the handles).

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command xrunc is an OCI runtime with runc's command line: containerd's
// shim, go-runc, podman's conmon and scripts written for runc can drive it
// unchanged. One file per command; the work is done in pkg/runtime.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	goruntime "runtime"

	"github.com/xstack/xstack/pkg/cli"
	xlog "github.com/xstack/xstack/pkg/log"
	"github.com/xstack/xstack/pkg/runtime"
	"github.com/xstack/xstack/pkg/runtime/idmap"
	"github.com/xstack/xstack/pkg/runtime/initp"
	"github.com/xstack/xstack/pkg/version"
)

func init() {
	// "xrunc init" is the container's first process. Credentials and some
	// namespaces are per thread, so it must stay on the main thread from
	// the start to its final execve.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		goruntime.LockOSThread()
	}
}

// globals are the parsed global flags.
type globals struct {
	rt            *runtime.Runtime
	logToStderr   bool
	systemdCgroup bool
	criu          string // --criu: the CRIU binary checkpoint and restore would run
}

var g globals

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		initp.Main()
	}
	if len(os.Args) > 1 && os.Args[1] == idmap.HolderArg {
		idmap.HolderMain()
	}
	app := &cli.App{
		Name:    "xrunc",
		Usage:   "an OCI runtime with runc's command line",
		Version: fmt.Sprintf("xrunc version %s\ncommit: %s\nspec: %s\ngo: %s\n", version.Version, version.Commit, version.OCISpec, goruntime.Version()),
		Stdout:  os.Stdout,
		Flags: []cli.Flag{
			{Names: []string{"debug"}, Kind: cli.Bool, Usage: "enable debug logging"},
			{Names: []string{"log"}, Usage: "set the log file to write xrunc logs to (default is '/dev/stderr')"},
			{Names: []string{"log-format"}, Default: "text", Usage: "set the log format ('text' (default), or 'json')"},
			{Names: []string{"root"}, Default: runtime.DefaultRoot, Usage: "root directory for storage of container state (this should be located in tmpfs)"},
			{Names: []string{"criu"}, Default: "criu", Usage: "path to the criu binary used for checkpoint and restore"},
			{Names: []string{"systemd-cgroup"}, Kind: cli.Bool, Usage: "enable systemd cgroup support"},
			{Names: []string{"rootless"}, Default: "auto", Usage: "ignore cgroup permission errors ('true', 'false', or 'auto')"},
		},
		Commands: []*cli.Command{
			createCommand, startCommand, runCommand, stateCommand, listCommand,
			killCommand, deleteCommand, execCommand, psCommand, pauseCommand,
			resumeCommand, updateCommand, specCommand, featuresCommand, eventsCommand,
			checkpointCommand, restoreCommand,
		},
		Before: setup,
	}
	err := app.Run(os.Args[1:])
	var exit exitError
	var withCode codeError
	switch {
	case err == nil, errors.Is(err, cli.ErrHelpShown):
		os.Exit(0)
	case errors.As(err, &exit):
		os.Exit(exit.code)
	case errors.As(err, &withCode):
		fatal(withCode.err, withCode.code)
	}
	fatal(err, 1)
}

// exitError carries a container's exit status out of run and exec.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// codeError is a failure that exits with a code other than 1 (runc's exec
// exits 255 on its own errors, so they differ from the process's codes).
type codeError struct {
	code int
	err  error
}

func (e codeError) Error() string { return e.err.Error() }

func setup(ctx *cli.Context) error {
	gc := ctx.Global
	format, ok := xlog.ParseFormat(gc.String("log-format"))
	if !ok {
		return fmt.Errorf("unknown log-format %q", gc.String("log-format"))
	}
	level := slog.LevelInfo
	if gc.Bool("debug") {
		level = slog.LevelDebug
	}
	var w io.Writer = os.Stderr
	g.logToStderr = true
	if path := gc.String("log"); path != "" && path != "/dev/stderr" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		w = f
		g.logToStderr = false
	}
	slog.SetDefault(slog.New(xlog.NewHandler(w, format, level)))
	g.rt = &runtime.Runtime{Root: gc.String("root"), Log: slog.Default()}
	g.systemdCgroup = gc.Bool("systemd-cgroup")
	g.criu = gc.String("criu")
	return nil
}

// fatal logs err like runc does: to the log, and also plainly to stderr
// when the log is a file (containerd reads the file, humans the terminal).
func fatal(err error, code int) {
	if g.rt == nil {
		// Failed before the global flags were applied.
		slog.SetDefault(slog.New(xlog.NewHandler(os.Stderr, xlog.Text, slog.LevelInfo)))
		g.logToStderr = true
	}
	slog.Error(err.Error())
	if !g.logToStderr {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}
