package specgen

import (
	"errors"
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// errNoCommand is returned when neither the user nor the image gives a
// command to run.
var errNoCommand = errors.New("no command specified")

// processArgs combines the image's Entrypoint and Cmd with the user's.
// As with docker, setting the entrypoint (even to nothing) drops the
// image's Cmd: the image's default arguments belong to its entrypoint.
func processArgs(imgEntrypoint, imgCmd []string, opts *xdv1.RunOptions) ([]string, error) {
	var args []string
	if opts.GetEntrypointSet() {
		args = append(args, opts.GetEntrypoint()...)
	} else {
		args = append(args, imgEntrypoint...)
	}
	switch {
	case len(opts.GetArgs()) > 0:
		args = append(args, opts.GetArgs()...)
	case !opts.GetEntrypointSet():
		args = append(args, imgCmd...)
	}
	if len(args) == 0 || args[0] == "" {
		return nil, errNoCommand
	}
	return args, nil
}

// mergeEnv returns base with overrides applied by key: a key already in
// base keeps its position and takes the new value, a new key is appended.
// field names overrides in errors.
func mergeEnv(base, overrides []string, field string) ([]string, error) {
	out := make([]string, 0, len(base)+len(overrides))
	index := map[string]int{}
	add := func(kv string) {
		key, _, _ := strings.Cut(kv, "=")
		if i, ok := index[key]; ok {
			out[i] = kv
			return
		}
		index[key] = len(out)
		out = append(out, kv)
	}
	for _, kv := range base {
		add(kv)
	}
	for i, kv := range overrides {
		key, _, ok := strings.Cut(kv, "=")
		if !ok || key == "" || strings.ContainsRune(kv, 0) {
			return nil, fmt.Errorf("%s[%d] %q: want KEY=VALUE", field, i, kv)
		}
		add(kv)
	}
	return out, nil
}

// setDefaultEnv appends kv unless its key is already set in env.
func setDefaultEnv(env []string, kv string) []string {
	key, _, _ := strings.Cut(kv, "=")
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return env
		}
	}
	return append(env, kv)
}

// checkCwd accepts an absolute path and returns it cleaned.
func checkCwd(field, dir string) (string, error) {
	if !path.IsAbs(dir) {
		return "", fmt.Errorf("%s %q: must be an absolute path", field, dir)
	}
	if strings.ContainsRune(dir, 0) {
		return "", fmt.Errorf("%s %q: contains a NUL byte", field, dir)
	}
	return path.Clean(dir), nil
}

// ExecProcess builds the process of an exec into a container created from
// spec: req's args (required); the container's env with req.Env overriding
// by key (plus TERM=xterm with a tty); req.User resolved in rootfs, else
// the container's user; req.Cwd, else the container's; and the init's
// capabilities, rlimits, no_new_privileges and LSM labels, so an exec
// never gets more privilege than the container it enters.
func ExecProcess(spec *specs.Spec, rootfs string, req *xdv1.ExecRequest) (*specs.Process, error) {
	if spec == nil || spec.Process == nil {
		return nil, errors.New("exec: container spec has no process")
	}
	if req == nil {
		return nil, errors.New("exec: no request")
	}
	parent := spec.Process
	if len(req.GetArgs()) == 0 || req.GetArgs()[0] == "" {
		return nil, fmt.Errorf("exec: args: %w", errNoCommand)
	}
	p := &specs.Process{
		Terminal:        req.GetTty(),
		Args:            append([]string(nil), req.GetArgs()...),
		NoNewPrivileges: parent.NoNewPrivileges,
		ApparmorProfile: parent.ApparmorProfile,
		SelinuxLabel:    parent.SelinuxLabel,
		Capabilities:    cloneCapabilities(parent.Capabilities),
		Rlimits:         append([]specs.POSIXRlimit(nil), parent.Rlimits...),
	}

	env, err := mergeEnv(parent.Env, req.GetEnv(), "exec: env")
	if err != nil {
		return nil, err
	}
	if req.GetTty() {
		env = setDefaultEnv(env, "TERM=xterm")
	}
	p.Env = env

	cwd := parent.Cwd
	field := "exec: container cwd"
	if req.GetCwd() != "" {
		cwd, field = req.GetCwd(), "exec: cwd"
	}
	if p.Cwd, err = checkCwd(field, cwd); err != nil {
		return nil, err
	}

	if req.GetUser() != "" {
		if p.User, err = ResolveUser(rootfs, req.GetUser()); err != nil {
			return nil, fmt.Errorf("exec: %w", err)
		}
	} else {
		p.User = parent.User
		p.User.AdditionalGids = append([]uint32(nil), parent.User.AdditionalGids...)
		if parent.User.Umask != nil {
			umask := *parent.User.Umask
			p.User.Umask = &umask
		}
	}
	return p, nil
}

func cloneCapabilities(c *specs.LinuxCapabilities) *specs.LinuxCapabilities {
	if c == nil {
		return nil
	}
	return &specs.LinuxCapabilities{
		Bounding:    append([]string(nil), c.Bounding...),
		Effective:   append([]string(nil), c.Effective...),
		Inheritable: append([]string(nil), c.Inheritable...),
		Permitted:   append([]string(nil), c.Permitted...),
		Ambient:     append([]string(nil), c.Ambient...),
	}
}
