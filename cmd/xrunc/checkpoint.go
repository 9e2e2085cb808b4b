package main

import (
	"fmt"

	"github.com/xstack/xstack/pkg/cli"
	"github.com/xstack/xstack/pkg/runtime"
	"github.com/xstack/xstack/pkg/runtime/criu"
)

// criuFlags are the CRIU options runc's checkpoint and restore share.
var criuFlags = []cli.Flag{
	{Names: []string{"image-path"}, Usage: "path for saving criu image files"},
	{Names: []string{"work-path"}, Usage: "path for saving work files and logs"},
	{Names: []string{"tcp-established"}, Kind: cli.Bool, Usage: "allow open tcp connections"},
	{Names: []string{"ext-unix-sk"}, Kind: cli.Bool, Usage: "allow external unix sockets"},
	{Names: []string{"shell-job"}, Kind: cli.Bool, Usage: "allow shell jobs"},
	{Names: []string{"lazy-pages"}, Kind: cli.Bool, Usage: "use userfaultfd to lazily restore memory pages"},
	{Names: []string{"file-locks"}, Kind: cli.Bool, Usage: "handle file locks, for safety"},
	{Names: []string{"manage-cgroups-mode"}, Usage: "cgroups mode: soft|full|strict|ignore"},
	{Names: []string{"empty-ns"}, Kind: cli.List, Usage: "create a namespace, but don't restore its properties"},
	{Names: []string{"auto-dedup"}, Kind: cli.Bool, Usage: "enable auto deduplication of memory images"},
}

// Checkpoint and restore need CRIU, which xrunc does not drive yet: both
// commands check what runc would check first (the container), then fail
// saying why, CRIU's own state on this host included.
var checkpointCommand = &cli.Command{
	Name:      "checkpoint",
	Usage:     "checkpoint a running container (needs CRIU; not supported by this version)",
	ArgsUsage: "<container-id>",
	Flags: append([]cli.Flag{
		{Names: []string{"parent-path"}, Usage: "path for previous criu image files in pre-dump"},
		{Names: []string{"leave-running"}, Kind: cli.Bool, Usage: "leave the process running after checkpointing"},
		{Names: []string{"status-fd"}, Usage: "criu writes \\0 to this FD once lazy-pages is ready"},
		{Names: []string{"page-server"}, Usage: "ADDRESS:PORT of the page server"},
		{Names: []string{"pre-dump"}, Kind: cli.Bool, Usage: "dump container's memory information only"},
	}, criuFlags...),
	Action: func(ctx *cli.Context) error {
		if err := ctx.NArg(1, 1); err != nil {
			return err
		}
		c, err := g.rt.Load(ctx.Args[0])
		if err != nil {
			return err
		}
		if c.Status() != runtime.Running {
			return fmt.Errorf("container %s is not running", c.ID())
		}
		return criu.Unsupported("checkpoint", g.criu)
	},
}

var restoreCommand = &cli.Command{
	Name:      "restore",
	Usage:     "restore a container from a checkpoint (needs CRIU; not supported by this version)",
	ArgsUsage: "<container-id>",
	Flags: append([]cli.Flag{
		{Names: []string{"bundle", "b"}, Usage: "path to the root of the bundle directory"},
		{Names: []string{"console-socket"}, Usage: "path to an AF_UNIX socket which will receive the pty master"},
		{Names: []string{"detach", "d"}, Kind: cli.Bool, Usage: "detach from the container's process"},
		{Names: []string{"pid-file"}, Usage: "specify the file to write the process id to"},
		{Names: []string{"no-subreaper"}, Kind: cli.Bool, Usage: "disable the use of the subreaper used to reap reparented processes"},
		{Names: []string{"no-pivot"}, Kind: cli.Bool, Usage: "do not use pivot root to jail process inside rootfs"},
		{Names: []string{"lsm-profile"}, Usage: "restore with a different LSM profile"},
		{Names: []string{"lsm-mount-context"}, Usage: "restore with a different LSM mount context"},
	}, criuFlags...),
	Action: func(ctx *cli.Context) error {
		if err := ctx.NArg(1, 1); err != nil {
			return err
		}
		if _, err := g.rt.Load(ctx.Args[0]); err == nil {
			return fmt.Errorf("container with given ID already exists")
		}
		return criu.Unsupported("restore", g.criu)
	},
}
