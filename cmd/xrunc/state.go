package main

import (
	"encoding/json"
	"os"

	"github.com/xstack/xstack/pkg/runtime"
)

func printState(c *runtime.Container) error {
	b, err := json.MarshalIndent(c.OCIState(), "", "  ")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
}
