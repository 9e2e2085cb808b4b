// The shim's GOMAXPROCS is 1 (see pkg/shim/launch): skip the runtime's
// cgroup-aware probing, which keeps two cgroup files open and re-reads
// them all the shim's life.

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command xshim is the per-container shim: containerd's shim v2 task API
// over ttrpc, running an OCI runtime (xrunc by default) for the container
// and keeping its exit status. It takes containerd's command line, so
// containerd itself can run it: `xshim -namespace NS -address A -id ID start`
// starts the shim and prints its address, `... -bundle B delete` cleans up
// after it, and without an action it serves (as started by `start`).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/xstack/xstack/pkg/shim"
	"github.com/xstack/xstack/pkg/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var f shim.Flags
	var showVersion bool
	fs := flag.NewFlagSet("xshim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.Namespace, "namespace", "", "namespace of the container")
	fs.StringVar(&f.ID, "id", "", "id of the container")
	fs.StringVar(&f.Address, "address", "", "the daemon's socket")
	fs.StringVar(&f.PublishBinary, "publish-binary", "", "ignored: events go to $TTRPC_ADDRESS")
	fs.StringVar(&f.Bundle, "bundle", "", "the container's bundle (default: the current directory)")
	fs.BoolVar(&f.Debug, "debug", false, "debug logging")
	fs.BoolVar(&showVersion, "v", false, "print the version")
	// Accepted for containerd 2.x; this shim has one socket and no info.
	fs.String("socket", "", "ignored")
	fs.String("debug-socket", "", "ignored")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if showVersion {
		fmt.Fprintf(stdout, "xshim:\n  Version: %s\n  Revision: %s\n", version.Version, version.Commit)
		return 0
	}
	switch action := fs.Arg(0); action {
	case "start":
		// The runtime options (if any) arrive on stdin. (A terminal is
		// someone trying it by hand.)
		var rawOptions []byte
		if st, err := os.Stdin.Stat(); err == nil && st.Mode()&os.ModeCharDevice == 0 {
			if rawOptions, err = io.ReadAll(io.LimitReader(stdin, 1<<20)); err != nil {
				fmt.Fprintf(stderr, "xshim start: read options: %v\n", err)
				return 1
			}
		}
		address, err := shim.Start(f, rawOptions)
		if err != nil {
			fmt.Fprintf(stderr, "xshim start: %v\n", err)
			return 1
		}
		fmt.Fprint(stdout, address)
		return 0
	case "delete":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := shim.Delete(ctx, f, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "xshim delete: %v\n", err)
			return 1
		}
		b, err := shim.MarshalDeleteResponse(resp)
		if err != nil {
			fmt.Fprintf(stderr, "xshim delete: %v\n", err)
			return 1
		}
		_, _ = stdout.Write(b)
		return 0
	case "":
		if err := shim.Serve(f); err != nil {
			fmt.Fprintf(stderr, "xshim: %v\n", err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(stderr, "xshim: unknown action %q (want start, delete, or none to serve)\n", action)
		return 2
	}
}
