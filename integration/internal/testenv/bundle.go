package testenv

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SpecVersion is the ociVersion written by the bundle builder, the one
// `runc spec` 1.1 writes.
const SpecVersion = "1.0.2-dev"

// DefaultCaps are the capabilities `runc spec` gives a container.
var DefaultCaps = []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}

// DefaultSpec is the spec `runc spec` writes (without ambient
// capabilities), with terminal off and the given args.
func DefaultSpec(args ...string) *specs.Spec {
	caps := func() []string { return append([]string(nil), DefaultCaps...) }
	return &specs.Spec{
		Version: SpecVersion,
		Process: &specs.Process{
			Terminal: false,
			User:     specs.User{UID: 0, GID: 0},
			Args:     args,
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"TERM=xterm",
			},
			Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps(),
				Effective: caps(),
				Permitted: caps(),
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "xtest",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
				"/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
}

// Bundle is an OCI bundle in a temp dir: config.json plus a copy of the
// test rootfs. ID is the container id the helpers use for it.
type Bundle struct {
	ID     string
	Dir    string
	Rootfs string
	Spec   *specs.Spec
	// CgroupsPath is the spec's linux.cgroupsPath, under the test's
	// cgroup parent.
	CgroupsPath string
}

// BundleOption changes a bundle before its config.json is written.
type BundleOption func(b *Bundle)

// WithArgs sets process.args.
func WithArgs(args ...string) BundleOption {
	return func(b *Bundle) { b.Spec.Process.Args = args }
}

// WithSpec applies an editor to the spec.
func WithSpec(edit func(s *specs.Spec)) BundleOption {
	return func(b *Bundle) { edit(b.Spec) }
}

// WithID sets the container id.
func WithID(id string) BundleOption {
	return func(b *Bundle) { b.ID = id }
}

// WithRootfs runs prepare on the rootfs directory, to plant files and
// symlinks before the container starts.
func WithRootfs(prepare func(rootfs string)) BundleOption {
	return func(b *Bundle) { prepare(b.Rootfs) }
}

// WithWritableRoot sets root.readonly to false.
func WithWritableRoot() BundleOption {
	return func(b *Bundle) { b.Spec.Root.Readonly = false }
}

// NewBundle makes a bundle whose process runs args ("/xtest sleep 3600" if
// none), applies the options and writes config.json. The bundle lives in a
// world-traversable temp dir (user namespaces need it) removed at cleanup;
// its cgroupsPath is /xstack-it-<rand>/<id>, and that parent is removed from
// every cgroup hierarchy at cleanup.
func NewBundle(t testing.TB, opts ...BundleOption) *Bundle {
	t.Helper()
	RequireRoot(t)
	dir := TempDir(t, 0o755)
	b := &Bundle{
		ID:     "xit-" + RandHex(6),
		Dir:    dir,
		Rootfs: filepath.Join(dir, "rootfs"),
		Spec:   DefaultSpec("/xtest", "sleep", "3600"),
	}
	NewRootfs(t, b.Rootfs)
	for _, o := range opts {
		o(b)
	}
	b.CgroupsPath = CgroupParent(t) + "/" + b.ID
	if b.Spec.Linux != nil && b.Spec.Linux.CgroupsPath == "" {
		b.Spec.Linux.CgroupsPath = b.CgroupsPath
	}
	b.Save(t)
	return b
}

// Edit changes the spec and rewrites config.json.
func (b *Bundle) Edit(t testing.TB, edit func(s *specs.Spec)) {
	t.Helper()
	edit(b.Spec)
	b.Save(t)
}

// Save writes config.json from Spec.
func (b *Bundle) Save(t testing.TB) {
	t.Helper()
	data, err := json.MarshalIndent(b.Spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// WriteConfig replaces config.json with raw bytes (for invalid configs).
func (b *Bundle) WriteConfig(t testing.TB, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// CgroupDirs returns the host directories of this bundle's cgroup in every
// mounted hierarchy that has it.
func (b *Bundle) CgroupDirs() []string {
	var out []string
	for _, h := range CgroupHierarchies() {
		d := filepath.Join(h, b.CgroupsPath)
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

// WithUserNS adds a user namespace mapping container ids 0..65535 to host
// ids uid.. and gid.., and shifts the owners of the rootfs to match.
func WithUserNS(uid, gid uint32) BundleOption {
	return func(b *Bundle) {
		b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		b.Spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uid, Size: 65536}}
		b.Spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: gid, Size: 65536}}
		if err := ChownTree(b.Rootfs, int(uid), int(gid)); err != nil {
			panic(err)
		}
	}
}
