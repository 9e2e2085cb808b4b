package specgen

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// Network modes of RunOptions.Network.
const (
	NetworkNone = "none" // own network namespace with only loopback (the default)
	NetworkHost = "host" // the host's network and UTS namespaces
)

const (
	cpuPeriod    = 100000 // µs, the kernel's default CFS period
	minCPUQuota  = 1000   // µs, the smallest quota the kernel accepts
	maxHostname  = 64     // HOST_NAME_MAX
	hostnameSize = 12     // default hostname: the id's first 12 characters
)

// hostNetworkFiles are bind-mounted read-only from the host into a
// container that shares the host's network, so it resolves names as the
// host does. A variable so tests can point it elsewhere.
var hostNetworkFiles = []string{"/etc/resolv.conf", "/etc/hosts"}

// Generate builds the OCI spec of container id in namespace ns from the
// image's config and the user's options (nil means none). rootfs is the
// container's mounted rootfs on the host; it is only read, to resolve the
// user (see ResolveUser). The spec's root is the bundle's "rootfs"
// directory.
func Generate(img ocispec.ImageConfig, rootfs, ns, id string, opts *xdv1.RunOptions) (*specs.Spec, error) {
	if opts == nil {
		opts = &xdv1.RunOptions{}
	}
	if err := checkName("namespace", ns); err != nil {
		return nil, err
	}
	if err := checkName("container id", id); err != nil {
		return nil, err
	}

	network := opts.GetNetwork()
	if network == "" {
		network = NetworkNone
	}
	if network != NetworkNone && network != NetworkHost {
		return nil, fmt.Errorf("network %q: want %q or %q", opts.GetNetwork(), NetworkNone, NetworkHost)
	}

	process, err := initProcess(img, rootfs, opts)
	if err != nil {
		return nil, err
	}
	hostname, err := containerHostname(id, network, opts.GetHostname())
	if err != nil {
		return nil, err
	}
	mounts, err := containerMounts(network, opts.GetMounts())
	if err != nil {
		return nil, err
	}
	resources, err := containerResources(opts)
	if err != nil {
		return nil, err
	}

	namespaces := []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}}
	if network != NetworkHost {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.UTSNamespace})
	}
	namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.MountNamespace})
	if network != NetworkHost {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})

	return &specs.Spec{
		Version:  specs.Version,
		Process:  process,
		Root:     &specs.Root{Path: "rootfs", Readonly: opts.GetReadOnly()},
		Hostname: hostname,
		Mounts:   mounts,
		Linux: &specs.Linux{
			Namespaces:    namespaces,
			CgroupsPath:   "/xd/" + ns + "/" + id,
			Resources:     resources,
			MaskedPaths:   defaultMaskedPaths(),
			ReadonlyPaths: defaultReadonlyPaths(),
		},
	}, nil
}

// checkName refuses names that would change the meaning of the cgroup
// path they are joined into.
func checkName(field, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s: empty", field)
	case name == "." || name == "..", strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%s %q: must not be \".\", \"..\" or contain \"/\"", field, name)
	}
	return nil
}

func initProcess(img ocispec.ImageConfig, rootfs string, opts *xdv1.RunOptions) (*specs.Process, error) {
	args, err := processArgs(img.Entrypoint, img.Cmd, opts)
	if err != nil {
		return nil, err
	}
	env, err := mergeEnv(nil, img.Env, "image env")
	if err != nil {
		return nil, err
	}
	if env, err = mergeEnv(env, opts.GetEnv(), "env"); err != nil {
		return nil, err
	}
	env = setDefaultEnv(env, defaultPath)
	if opts.GetTty() {
		env = setDefaultEnv(env, "TERM=xterm")
	}

	cwd, field := "/", "cwd"
	switch {
	case opts.GetWorkdir() != "":
		cwd, field = opts.GetWorkdir(), "workdir"
	case img.WorkingDir != "":
		cwd, field = img.WorkingDir, "image WorkingDir"
	}
	if cwd, err = checkCwd(field, cwd); err != nil {
		return nil, err
	}

	userString := img.User
	if opts.GetUser() != "" {
		userString = opts.GetUser()
	}
	user, err := ResolveUser(rootfs, userString)
	if err != nil {
		return nil, err
	}

	return &specs.Process{
		Terminal:        opts.GetTty(),
		User:            user,
		Args:            args,
		Env:             env,
		Cwd:             cwd,
		Capabilities:    defaultCapabilities(),
		Rlimits:         defaultRlimits(),
		NoNewPrivileges: false,
	}, nil
}

// containerHostname is the user's hostname, else the id's first 12
// characters. With the host's network there is no UTS namespace, so no
// hostname can be set.
func containerHostname(id, network, hostname string) (string, error) {
	if network == NetworkHost {
		if hostname != "" {
			return "", fmt.Errorf("hostname %q: cannot be set with network %q", hostname, NetworkHost)
		}
		return "", nil
	}
	if hostname == "" {
		hostname = id
		if len(hostname) > hostnameSize {
			hostname = hostname[:hostnameSize]
		}
		return hostname, nil
	}
	if len(hostname) > maxHostname || strings.ContainsRune(hostname, 0) {
		return "", fmt.Errorf("hostname %q: longer than %d bytes or contains NUL", hostname, maxHostname)
	}
	return hostname, nil
}

// containerMounts returns the default mounts, those of the user (which
// replace a default with the same destination), and with the host's
// network its resolv.conf and hosts. Mounts are ordered by depth, so a
// parent is always mounted before what is mounted below it.
func containerMounts(network string, user []*xdv1.Mount) ([]specs.Mount, error) {
	var binds []specs.Mount
	dests := map[string]bool{}
	for i, m := range user {
		bind, err := bindMount(i, m)
		if err != nil {
			return nil, err
		}
		if dests[bind.Destination] {
			return nil, fmt.Errorf("mounts[%d].destination %q: mounted twice", i, bind.Destination)
		}
		dests[bind.Destination] = true
		binds = append(binds, bind)
	}

	var mounts []specs.Mount
	for _, m := range defaultMounts() {
		if !dests[m.Destination] {
			mounts = append(mounts, m)
		}
	}
	mounts = append(mounts, binds...)
	if network == NetworkHost {
		for _, f := range hostNetworkFiles {
			if dests[f] {
				continue // the user's own file wins
			}
			if st, err := os.Stat(f); err != nil || !st.Mode().IsRegular() {
				continue
			}
			mounts = append(mounts, specs.Mount{Destination: f, Type: "bind", Source: f, Options: []string{"rbind", "rprivate", "ro"}})
		}
	}
	sort.SliceStable(mounts, func(i, j int) bool {
		return depth(mounts[i].Destination) < depth(mounts[j].Destination)
	})
	return mounts, nil
}

// depth counts the components of a clean absolute path other than "/".
func depth(p string) int {
	return strings.Count(p, "/")
}

// bindMount validates the user's mount i and turns it into a recursive
// bind mount.
func bindMount(i int, m *xdv1.Mount) (specs.Mount, error) {
	if m == nil {
		return specs.Mount{}, fmt.Errorf("mounts[%d]: empty", i)
	}
	src, dst := m.GetSource(), m.GetDestination()
	if !path.IsAbs(src) || strings.ContainsRune(src, 0) {
		return specs.Mount{}, fmt.Errorf("mounts[%d].source %q: must be an absolute host path", i, src)
	}
	src = path.Clean(src)
	if _, err := os.Stat(src); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return specs.Mount{}, fmt.Errorf("mounts[%d].source %q: does not exist on the host", i, src)
		}
		return specs.Mount{}, fmt.Errorf("mounts[%d].source %q: %w", i, src, err)
	}
	if !path.IsAbs(dst) || strings.ContainsRune(dst, 0) {
		return specs.Mount{}, fmt.Errorf("mounts[%d].destination %q: must be an absolute path", i, dst)
	}
	dst = path.Clean(dst)
	if dst == "/" {
		return specs.Mount{}, fmt.Errorf("mounts[%d].destination %q: cannot mount over the root", i, dst)
	}
	if dst == "/proc" || strings.HasPrefix(dst, "/proc/") {
		// The runtime refuses these too (CVE-2025-52881): say so early.
		return specs.Mount{}, fmt.Errorf("mounts[%d].destination %q: cannot mount over /proc", i, dst)
	}
	mode := "rw"
	if m.GetReadonly() {
		mode = "ro"
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", mode}}, nil
}

// containerResources turns the user's limits into cgroup settings on top
// of the default device rules.
func containerResources(opts *xdv1.RunOptions) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{Devices: defaultDevices()}
	if mem := opts.GetMemoryBytes(); mem < 0 {
		return nil, fmt.Errorf("memory_bytes %d: must not be negative", mem)
	} else if mem > 0 {
		r.Memory = &specs.LinuxMemory{Limit: &mem}
	}
	if milli := opts.GetMilliCpus(); milli < 0 {
		return nil, fmt.Errorf("milli_cpus %d: must not be negative", milli)
	} else if milli > 0 {
		if milli > math.MaxInt64/(cpuPeriod/1000) {
			return nil, fmt.Errorf("milli_cpus %d: too large", milli)
		}
		quota := milli * (cpuPeriod / 1000)
		if quota < minCPUQuota {
			return nil, fmt.Errorf("milli_cpus %d: below the minimum of %d", milli, minCPUQuota/(cpuPeriod/1000))
		}
		period := uint64(cpuPeriod)
		r.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if pids := opts.GetPidsLimit(); pids < 0 {
		return nil, fmt.Errorf("pids_limit %d: must not be negative", pids)
	} else if pids > 0 {
		r.Pids = &specs.LinuxPids{Limit: &pids}
	}
	return r, nil
}
