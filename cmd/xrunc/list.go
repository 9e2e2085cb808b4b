package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/xstack/xstack/pkg/cli"
	"github.com/xstack/xstack/pkg/runtime"
)

var listCommand = &cli.Command{
	Name:  "list",
	Usage: "lists containers started by xrunc with the given root",
	Flags: []cli.Flag{
		{Names: []string{"format", "f"}, Default: "table", Usage: "select one of: table or json"},
		{Names: []string{"quiet", "q"}, Kind: cli.Bool, Usage: "display only container IDs"},
	},
	Action: func(ctx *cli.Context) error {
		if err := ctx.NArg(0, 0); err != nil {
			return err
		}
		cs, err := g.rt.List()
		if err != nil {
			return err
		}
		if ctx.Bool("quiet") {
			for _, c := range cs {
				fmt.Println(c.ID())
			}
			return nil
		}
		states := make([]runtime.OCIState, 0, len(cs))
		for _, c := range cs {
			s := c.OCIState()
			s.Owner = c.Owner()
			states = append(states, s)
		}
		switch ctx.String("format") {
		case "table":
			w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
			fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
			for _, s := range states {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
			}
			return w.Flush()
		case "json":
			if len(states) == 0 {
				// runc prints a JSON null for no containers.
				_, err := fmt.Println("null")
				return err
			}
			return json.NewEncoder(os.Stdout).Encode(states)
		default:
			return fmt.Errorf("invalid format option %q", ctx.String("format"))
		}
	},
}
