package main

import (
	"encoding/json"
	"os"

	"github.com/xstack/xstack/pkg/cli"
)

var stateCommand = &cli.Command{
	Name:      "state",
	Usage:     "output the state of a container",
	ArgsUsage: "<container-id>",
	Action: func(ctx *cli.Context) error {
		if err := ctx.NArg(1, 1); err != nil {
			return err
		}
		c, err := g.rt.Load(ctx.Args[0])
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(c.OCIState(), "", "  ")
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(b)
		return err
	},
}
