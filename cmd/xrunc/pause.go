package main

import "github.com/xstack/xstack/pkg/cli"

var pauseCommand = &cli.Command{
	Name:      "pause",
	Usage:     "pause suspends all processes inside the container",
	ArgsUsage: "<container-id>",
	Action: func(ctx *cli.Context) error {
		if err := ctx.NArg(1, 1); err != nil {
			return err
		}
		c, err := g.rt.Load(ctx.Args[0])
		if err != nil {
			return err
		}
		return c.Pause()
	},
}

var resumeCommand = &cli.Command{
	Name:      "resume",
	Usage:     "resumes all processes that have been previously paused",
	ArgsUsage: "<container-id>",
	Action: func(ctx *cli.Context) error {
		if err := ctx.NArg(1, 1); err != nil {
			return err
		}
		c, err := g.rt.Load(ctx.Args[0])
		if err != nil {
			return err
		}
		return c.Resume()
	},
}
