package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/xstack/xstack/pkg/cli"
	"github.com/xstack/xstack/pkg/runtime"
	"github.com/xstack/xstack/pkg/runtime/events"
)

var eventsCommand = &cli.Command{
	Name:      "events",
	Usage:     "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		{Names: []string{"interval"}, Default: "5s", Usage: "set the stats collection interval"},
		{Names: []string{"stats"}, Kind: cli.Bool, Usage: "display the container's stats then exit"},
	},
	Action: func(ctx *cli.Context) error {
		if err := ctx.NArg(1, 1); err != nil {
			return err
		}
		c, err := g.rt.Load(ctx.Args[0])
		if err != nil {
			return err
		}
		interval, err := time.ParseDuration(ctx.String("interval"))
		if err != nil {
			return &cli.UsageError{Msg: fmt.Sprintf("invalid value %q for flag -interval: %v", ctx.String("interval"), err)}
		}
		if interval <= 0 {
			return errors.New("duration interval must be greater than 0")
		}
		if c.Status() == runtime.Stopped {
			return fmt.Errorf("container with id %s is not running", c.ID())
		}
		return events.Run(os.Stdout, c, interval, ctx.Bool("stats"))
	},
}
