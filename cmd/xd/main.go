// Command xd is xstack's daemon: images, snapshots, containers and tasks,
// one xshim per container, served over ttrpc (proto/xd/v1). Containers
// outlive xd: stopping, killing or upgrading it leaves them running, and the
// next xd re-attaches to them.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/xstack/xstack/pkg/daemon"
	"github.com/xstack/xstack/pkg/sdnotify"
	"github.com/xstack/xstack/pkg/version"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("xd", flag.ContinueOnError)
	configPath := fs.String("config", "", "TOML configuration file (every key has a default)")
	root := fs.String("root", "", "persistent data: metadata, content, snapshots, logs (default /var/lib/xd)")
	state := fs.String("state", "", "runtime state: bundles, FIFOs (default /run/xd)")
	address := fs.String("address", "", "API socket (default /run/xd/xd.sock)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (default info)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Printf("xd version %s (commit %s)\n", version.Version, version.Commit)
		return 0
	}
	cfg, err := daemon.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "xd: %v\n", err)
		return 1
	}
	for flagValue, field := range map[string]*string{*root: &cfg.Root, *state: &cfg.State, *address: &cfg.Address, *logLevel: &cfg.LogLevel} {
		if flagValue != "" {
			*field = flagValue
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "xd: log level %q: %v\n", cfg.LogLevel, err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if os.Geteuid() != 0 {
		log.Error("xd must run as root")
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// The shims write to FIFOs xd reads; a vanished reader must not kill xd.
	signal.Ignore(syscall.SIGPIPE)

	srv, err := daemon.New(cfg, log)
	if err != nil {
		log.Error("start", "error", err)
		return 1
	}
	defer srv.Close()
	if err := srv.Listen(); err != nil {
		log.Error("start", "error", err)
		return 1
	}
	if err := srv.Recover(ctx); err != nil {
		log.Error("recover", "error", err)
		return 1
	}
	if _, err := sdnotify.Notify(sdnotify.Ready); err != nil {
		log.Warn("systemd notify", "error", err)
	}
	log.Info("xd serving", "address", cfg.Address, "root", cfg.Root, "state", cfg.State, "version", version.Version)
	if err := srv.Serve(ctx); err != nil {
		log.Error("serve", "error", err)
		return 1
	}
	sdnotify.Notify(sdnotify.Stopping)
	log.Info("xd stopping; containers keep running")
	return 0
}
