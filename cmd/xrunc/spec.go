package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/xstack/xstack/pkg/cli"
	rspec "github.com/xstack/xstack/pkg/runtime/spec"
	"github.com/xstack/xstack/pkg/version"
)

var specCommand = &cli.Command{
	Name:  "spec",
	Usage: "create a new specification file",
	Flags: []cli.Flag{
		{Names: []string{"bundle", "b"}, Usage: "path to the root of the bundle directory"},
		{Names: []string{"rootless"}, Kind: cli.Bool, Usage: "generate a configuration for a rootless container"},
	},
	Action: func(ctx *cli.Context) error {
		if err := ctx.NArg(0, 0); err != nil {
			return err
		}
		s := rspec.Example(version.OCISpec)
		if ctx.Bool("rootless") {
			s = rspec.ExampleRootless(version.OCISpec)
		}
		path := filepath.Join(ctx.String("bundle"), rspec.ConfigName)
		if _, err := os.Stat(path); err == nil {
			return errors.New("File " + path + " exists. Remove it first")
		}
		b, err := json.MarshalIndent(s, "", "\t")
		if err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
		return f.Close()
	},
}
