// Command xctl is xd's command line client (run, ps, exec, logs, images...).
// Everything is in pkg/xctl.
package main

import (
	"os"

	"github.com/xstack/xstack/pkg/xctl"
)

func main() {
	os.Exit(xctl.Main(os.Args))
}
