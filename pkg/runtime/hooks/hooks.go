// Package hooks runs OCI lifecycle hooks: each hook program gets the
// container's state as JSON on stdin, its own args and env, and an
// optional timeout; the first failure stops the sequence.
//
// Internal to xstack; no API stability.
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Kinds, in lifecycle order.
const (
	Prestart        = "prestart"
	CreateRuntime   = "createRuntime"
	CreateContainer = "createContainer"
	StartContainer  = "startContainer"
	Poststart       = "poststart"
	Poststop        = "poststop"
)

// All lists every kind, as "xrunc features" reports them.
var All = []string{Prestart, CreateRuntime, CreateContainer, StartContainer, Poststart, Poststop}

// Of returns the hooks of one kind from a spec.
func Of(s *specs.Spec, kind string) []specs.Hook {
	if s == nil || s.Hooks == nil {
		return nil
	}
	switch kind {
	case Prestart:
		return s.Hooks.Prestart //nolint:staticcheck // deprecated by the spec, still honoured
	case CreateRuntime:
		return s.Hooks.CreateRuntime
	case CreateContainer:
		return s.Hooks.CreateContainer
	case StartContainer:
		return s.Hooks.StartContainer
	case Poststart:
		return s.Hooks.Poststart
	case Poststop:
		return s.Hooks.Poststop
	}
	return nil
}

// maxOutput bounds what a hook's output adds to an error message.
const maxOutput = 4096

// Run runs the hooks of kind in order. The first failure stops the others
// and fails the operation, except for poststop hooks: the container is
// already gone, so all of them run and their failures are returned
// together, for the caller to log as a warning (runtime-spec, "poststop").
func Run(kind string, hs []specs.Hook, state *specs.State) error {
	if len(hs) == 0 {
		return nil
	}
	stdin, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("%s hooks: encode state: %w", kind, err)
	}
	var errs []error
	for i, h := range hs {
		if err := runOne(h, stdin); err != nil {
			errs = append(errs, fmt.Errorf("%s hook #%d (%s): %w", kind, i, h.Path, err))
			if kind != Poststop {
				break
			}
		}
	}
	return errors.Join(errs...)
}

func runOne(h specs.Hook, stdin []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("timeout must be positive, got %d", *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	args := h.Args
	if len(args) == 0 {
		args = []string{h.Path}
	}
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = args
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err != nil {
		if o := strings.TrimSpace(out.String()); o != "" {
			if len(o) > maxOutput {
				o = o[:maxOutput] + "..."
			}
			return fmt.Errorf("%w, output: %s", err, o)
		}
		return err
	}
	return nil
}
