package main

import (
	"github.com/xstack/xstack/pkg/cli"
	"github.com/xstack/xstack/pkg/runtime"
)

// containerCommand is a command that takes one container id and calls one
// method on the container.
func containerCommand(name, usage string, fn func(*runtime.Container) error) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "<container-id>",
		Action: func(ctx *cli.Context) error {
			if err := ctx.NArg(1, 1); err != nil {
				return err
			}
			c, err := g.rt.Load(ctx.Args[0])
			if err != nil {
				return err
			}
			return fn(c)
		},
	}
}

var (
	startCommand  = containerCommand("start", "executes the user defined process in a created container", (*runtime.Container).Start)
	pauseCommand  = containerCommand("pause", "pause suspends all processes inside the container", (*runtime.Container).Pause)
	resumeCommand = containerCommand("resume", "resumes all processes that have been previously paused", (*runtime.Container).Resume)
	stateCommand  = containerCommand("state", "output the state of a container", printState)
)
