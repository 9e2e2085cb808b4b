package xctl

import (
	"path"
	"strings"

	"github.com/xstack/xstack/pkg/units"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// containerFlags are the flags create and run share.
func containerFlags() []*flagDef {
	return []*flagDef{
		{long: "name", kind: stringFlag, usage: "container name (default: random)"},
		{long: "interactive", short: "i", kind: boolFlag, usage: "keep stdin open"},
		{long: "tty", short: "t", kind: boolFlag, usage: "allocate a pseudo-terminal"},
		{long: "env", short: "e", kind: listFlag, usage: "set an environment variable KEY=VALUE (KEY alone: take it from xctl's environment)"},
		{long: "user", short: "u", kind: stringFlag, usage: "user: name, uid, uid:gid or name:group"},
		{long: "workdir", short: "w", kind: stringFlag, usage: "working directory in the container"},
		{long: "hostname", kind: stringFlag, usage: "container host name"},
		{long: "volume", short: "v", kind: listFlag, usage: "bind mount SRC:DST[:ro|rw] (absolute paths)"},
		{long: "memory", short: "m", kind: stringFlag, usage: "memory limit: bytes or with unit k, m, g (64m, 1g)"},
		{long: "cpus", kind: stringFlag, usage: "number of CPUs (1.5)"},
		{long: "pids-limit", kind: stringFlag, usage: "maximum number of processes"},
		{long: "read-only", kind: boolFlag, usage: "mount the root filesystem read-only"},
		{long: "net", kind: stringFlag, usage: "network: none (loopback only, default) or host"},
		{long: "entrypoint", kind: stringFlag, usage: "override the image's entrypoint (\"\" clears it)"},
		{long: "runtime", kind: stringFlag, usage: "runtime: io.xstack.xshim.v1 or io.containerd.runc.v2 (default: xd's)"},
		{long: "runtime-binary", kind: stringFlag, usage: "OCI runtime binary the shim runs (default: the shim's)"},
		{long: "label", short: "l", kind: listFlag, usage: "set a label KEY=VALUE"},
		{long: "restart", kind: stringFlag, usage: "when its init exits: no (default), always, unless-stopped, on-failure[:N]"},
	}
}

// runFlags are create's flags plus run's own.
func runFlags() []*flagDef {
	return append(containerFlags(),
		&flagDef{long: "rm", kind: boolFlag, usage: "delete the task and the container when it exits"},
		&flagDef{long: "detach", short: "d", kind: boolFlag, usage: "run in the background and print the container name"},
	)
}

// containerRequest builds Containers.Create's request from the flags and
// the positional IMAGE [CMD...].
func containerRequest(fs *flagSet, args []string, lookupEnv func(string) (string, bool)) (*xdv1.CreateContainerRequest, error) {
	if len(args) == 0 {
		return nil, usagef("an image is required")
	}
	o := &xdv1.RunOptions{
		Args:     args[1:],
		User:     fs.str("user"),
		Workdir:  fs.str("workdir"),
		Hostname: fs.str("hostname"),
		ReadOnly: fs.boolean("read-only"),
		Tty:      fs.boolean("tty"),
		Stdin:    fs.boolean("interactive"),
	}
	if fs.isSet("entrypoint") {
		o.EntrypointSet = true
		if e := fs.str("entrypoint"); e != "" {
			o.Entrypoint = []string{e}
		}
	}
	for _, kv := range fs.list("env") {
		k, _, ok := strings.Cut(kv, "=")
		if k == "" {
			return nil, usagef("invalid environment variable %q: want KEY=VALUE", kv)
		}
		if !ok {
			v, found := lookupEnv(k)
			if !found {
				continue
			}
			kv = k + "=" + v
		}
		o.Env = append(o.Env, kv)
	}
	if o.Workdir != "" && !path.IsAbs(o.Workdir) {
		return nil, usagef("invalid --workdir %q: must be an absolute path", o.Workdir)
	}
	for _, v := range fs.list("volume") {
		m, err := parseVolume(v)
		if err != nil {
			return nil, err
		}
		o.Mounts = append(o.Mounts, m)
	}
	var err error
	if s := fs.str("memory"); s != "" {
		if o.MemoryBytes, err = units.ParseSize(s); err != nil {
			return nil, usagef("--memory: %v", err)
		}
	}
	if s := fs.str("cpus"); s != "" {
		if o.MilliCpus, err = parseCPUs(s); err != nil {
			return nil, usagef("%v", err)
		}
	}
	if o.PidsLimit, err = fs.integer("pids-limit"); err != nil {
		return nil, err
	}
	if o.PidsLimit < 0 {
		return nil, usagef("invalid --pids-limit %d: must be positive", o.PidsLimit)
	}
	switch n := fs.str("net"); n {
	case "", "none", "host":
		o.Network = n
	default:
		return nil, usagef("invalid --net %q: want none or host", n)
	}
	o.Restart = fs.str("restart") // xd checks it
	labels := map[string]string{}
	for _, l := range fs.list("label") {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, usagef("invalid label %q: want KEY=VALUE", l)
		}
		labels[k] = v
	}
	if len(labels) == 0 {
		labels = nil
	}
	return &xdv1.CreateContainerRequest{
		Id:            fs.str("name"),
		Image:         args[0],
		Options:       o,
		Runtime:       fs.str("runtime"),
		RuntimeBinary: fs.str("runtime-binary"),
		Labels:        labels,
	}, nil
}

// parseVolume parses -v SRC:DST[:ro|rw]. Only bind mounts of absolute host
// paths exist (xd has no named volumes).
func parseVolume(v string) (*xdv1.Mount, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, usagef("invalid volume %q: want SRC:DST[:ro|rw]", v)
	}
	m := &xdv1.Mount{Source: parts[0], Destination: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.Readonly = true
		case "rw":
		default:
			return nil, usagef("invalid volume %q: mode %q is not ro or rw", v, parts[2])
		}
	}
	if !path.IsAbs(m.Source) {
		return nil, usagef("invalid volume %q: source %q must be an absolute host path", v, m.Source)
	}
	if !path.IsAbs(m.Destination) {
		return nil, usagef("invalid volume %q: destination %q must be an absolute path", v, m.Destination)
	}
	if path.Clean(m.Destination) == "/" {
		return nil, usagef("invalid volume %q: cannot mount over /", v)
	}
	return m, nil
}
