package criu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// checkTimeout bounds `criu check`, which probes many kernel features.
const checkTimeout = 20 * time.Second

// ErrNotImplemented is wrapped by every Unsupported error.
var ErrNotImplemented = errors.New("not supported by this version of xrunc")

// Unsupported returns the error for the checkpoint or restore operation,
// naming what this host lacks on top of xrunc's own missing support.
func Unsupported(op, criuPath string) error {
	return fmt.Errorf("%s: %w (%s)", op, ErrNotImplemented, Probe(criuPath))
}

// Probe says what `criu check` makes of this host, in one line.
func Probe(criuPath string) string {
	bin, err := exec.LookPath(criuPath)
	if err != nil {
		return fmt.Sprintf("nor is CRIU installed: %q not found", criuPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "check")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Sprintf("and %s cannot run on this kernel either: criu check: %s", bin, firstError(out.String(), err))
	}
	return fmt.Sprintf("although %s passes criu check here", bin)
}

// firstError picks the first "Error" line of criu's output: the cause,
// which the later lines only propagate.
func firstError(out string, err error) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Error") {
			if _, msg, ok := strings.Cut(l, "): "); ok {
				return msg
			}
			return l
		}
	}
	if s := strings.TrimSpace(out); s != "" {
		return s
	}
	return err.Error()
}
