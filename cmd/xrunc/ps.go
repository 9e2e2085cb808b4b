package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/xstack/xstack/pkg/cli"
)

var psCommand = &cli.Command{
	Name:         "ps",
	Usage:        "ps displays the processes running inside a container",
	ArgsUsage:    "<container-id> [ps options]",
	KeepArgOrder: true,
	Flags: []cli.Flag{
		{Names: []string{"format", "f"}, Default: "table", Usage: "select one of: table or json"},
	},
	Action: func(ctx *cli.Context) error {
		if len(ctx.Args) < 1 {
			return &cli.UsageError{Msg: `"ps" requires a minimum of 1 argument(s)`}
		}
		c, err := g.rt.Load(ctx.Args[0])
		if err != nil {
			return err
		}
		pids, err := c.Pids()
		if err != nil {
			return err
		}
		switch ctx.String("format") {
		case "json":
			if pids == nil {
				pids = []int{}
			}
			return json.NewEncoder(os.Stdout).Encode(pids)
		case "table":
			args := ctx.Args[1:]
			if len(args) == 0 {
				args = []string{"-ef"}
			}
			return psTable(pids, args)
		default:
			return fmt.Errorf("invalid format option %q", ctx.String("format"))
		}
	},
}

// psTable runs ps(1) and keeps the header and the container's lines.
func psTable(pids []int, args []string) error {
	out, err := exec.Command("ps", args...).Output()
	if err != nil {
		return fmt.Errorf("ps %s: %w", strings.Join(args, " "), err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	if !sc.Scan() {
		return fmt.Errorf("ps printed nothing")
	}
	header := sc.Text()
	col := -1
	for i, f := range strings.Fields(header) {
		if f == "PID" {
			col = i
		}
	}
	if col < 0 {
		return fmt.Errorf("no PID column in ps output (ps %s)", strings.Join(args, " "))
	}
	want := make(map[int]bool, len(pids))
	for _, p := range pids {
		want[p] = true
	}
	fmt.Println(header)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) <= col {
			continue
		}
		if pid, err := strconv.Atoi(f[col]); err == nil && want[pid] {
			fmt.Println(sc.Text())
		}
	}
	return nil
}
