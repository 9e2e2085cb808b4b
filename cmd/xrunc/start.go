package main

import "github.com/xstack/xstack/pkg/cli"

var startCommand = &cli.Command{
	Name:      "start",
	Usage:     "executes the user defined process in a created container",
	ArgsUsage: "<container-id>",
	Action: func(ctx *cli.Context) error {
		if err := ctx.NArg(1, 1); err != nil {
			return err
		}
		c, err := g.rt.Load(ctx.Args[0])
		if err != nil {
			return err
		}
		return c.Start()
	},
}
