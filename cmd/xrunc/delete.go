package main

import (
	"errors"

	"github.com/xstack/xstack/pkg/cli"
	"github.com/xstack/xstack/pkg/runtime"
)

var deleteCommand = &cli.Command{
	Name:      "delete",
	Usage:     "delete any resources held by the container often used with detached container",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		{Names: []string{"force", "f"}, Kind: cli.Bool, Usage: "forcibly deletes the container if it is still running (uses SIGKILL)"},
	},
	Action: func(ctx *cli.Context) error {
		if err := ctx.NArg(1, 1); err != nil {
			return err
		}
		force := ctx.Bool("force")
		c, err := g.rt.Load(ctx.Args[0])
		if err != nil {
			if force && errors.Is(err, runtime.ErrNotExist) {
				// Idempotent cleanup, as callers (containerd's shim delete)
				// rely on; also removes a directory left by a create that
				// was killed before it wrote any state.
				return g.rt.RemoveLeftovers(ctx.Args[0])
			}
			return err
		}
		err = c.Delete(force)
		if force && errors.Is(err, runtime.ErrNotExist) {
			return nil
		}
		return err
	},
}
