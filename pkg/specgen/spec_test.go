package specgen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

func testImage() ocispec.ImageConfig {
	return ocispec.ImageConfig{
		Env:        []string{"FOO=image", "PATH=/opt/bin:/bin"},
		Entrypoint: []string{"/entry.sh"},
		Cmd:        []string{"serve"},
		WorkingDir: "/srv",
		User:       "daemon",
	}
}

// TestGenerateDefaults checks a spec generated with no options against
// every default the package promises.
func TestGenerateDefaults(t *testing.T) {
	t.Parallel()
	rootfs := testRootfs(t)
	s, err := Generate(testImage(), rootfs, "default", "0123456789abcdef", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != specs.Version {
		t.Errorf("ociVersion = %q; want %q", s.Version, specs.Version)
	}
	if !reflect.DeepEqual(s.Root, &specs.Root{Path: "rootfs"}) {
		t.Errorf("root = %+v", s.Root)
	}
	if s.Hostname != "0123456789ab" {
		t.Errorf("hostname = %q; want the id's first 12 characters", s.Hostname)
	}
	if len(s.Annotations) != 0 || s.Hooks != nil {
		t.Errorf("annotations %v hooks %v; want none", s.Annotations, s.Hooks)
	}

	p := s.Process
	if p.Terminal || p.NoNewPrivileges {
		t.Errorf("terminal %v noNewPrivileges %v; want false", p.Terminal, p.NoNewPrivileges)
	}
	checkEqual(t, "args", p.Args, []string{"/entry.sh", "serve"})
	checkEqual(t, "env", p.Env, []string{"FOO=image", "PATH=/opt/bin:/bin"})
	checkEqual(t, "cwd", p.Cwd, "/srv")
	checkEqual(t, "user", p.User, specs.User{UID: 1, GID: 1, AdditionalGids: []uint32{1}})
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
		"CAP_KILL", "CAP_AUDIT_WRITE"}
	checkEqual(t, "capabilities", p.Capabilities, &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps})
	checkEqual(t, "rlimits", p.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}})

	type mnt struct{ dst, typ, src, opts string }
	var mounts []mnt
	for _, m := range s.Mounts {
		mounts = append(mounts, mnt{m.Destination, m.Type, m.Source, strings.Join(m.Options, ",")})
	}
	checkEqual(t, "mounts", mounts, []mnt{
		{"/proc", "proc", "proc", "nosuid,noexec,nodev"},
		{"/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k"},
		{"/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro"},
		{"/dev/pts", "devpts", "devpts", "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{"/dev/shm", "tmpfs", "shm", "nosuid,noexec,nodev,mode=1777,size=65536k"},
		{"/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev"},
		{"/sys/fs/cgroup", "cgroup", "cgroup", "nosuid,noexec,nodev,relatime,ro"},
	})

	l := s.Linux
	checkEqual(t, "namespaces", l.Namespaces, []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
		{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.CgroupNamespace},
	})
	checkEqual(t, "cgroupsPath", l.CgroupsPath, "/xd/default/0123456789abcdef")
	checkEqual(t, "maskedPaths", l.MaskedPaths, []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
		"/sys/devices/virtual/powercap", "/proc/scsi"})
	checkEqual(t, "readonlyPaths", l.ReadonlyPaths, []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"})
	if r := l.Resources; r.Memory != nil || r.CPU != nil || r.Pids != nil {
		t.Errorf("resources = %+v; want no limits", r)
	}

	type dev struct {
		allow        bool
		typ          string
		major, minor int64 // -1: wildcard
		access       string
	}
	var devs []dev
	for _, d := range l.Resources.Devices {
		major, minor := int64(-1), int64(-1)
		if d.Major != nil {
			major = *d.Major
		}
		if d.Minor != nil {
			minor = *d.Minor
		}
		devs = append(devs, dev{d.Allow, d.Type, major, minor, d.Access})
	}
	checkEqual(t, "devices", devs, []dev{
		{false, "", -1, -1, "rwm"},
		{true, "c", 1, 3, "rwm"}, {true, "c", 1, 5, "rwm"}, {true, "c", 1, 7, "rwm"}, {true, "c", 1, 8, "rwm"},
		{true, "c", 1, 9, "rwm"}, {true, "c", 5, 0, "rwm"}, {true, "c", 136, -1, "rwm"}, {true, "c", 5, 2, "rwm"},
	})

	// The spec survives a JSON round trip (what xd writes into the bundle).
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back specs.Spec
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	checkEqual(t, "round trip", &back, s)
}

// TestGenerateSetsAreIndependent: each capability set is its own slice,
// so a later edit (e.g. dropping one from effective) cannot leak.
func TestGenerateSetsAreIndependent(t *testing.T) {
	t.Parallel()
	s, err := Generate(testImage(), testRootfs(t), "ns", "id", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Process.Capabilities
	c.Effective[0] = "CAP_SYS_ADMIN"
	if c.Bounding[0] == "CAP_SYS_ADMIN" || c.Permitted[0] == "CAP_SYS_ADMIN" {
		t.Error("capability sets share memory")
	}
	s2, _ := Generate(testImage(), testRootfs(t), "ns", "id", nil)
	if s2.Process.Capabilities.Effective[0] == "CAP_SYS_ADMIN" {
		t.Error("Generate hands out shared defaults")
	}
}

func TestGenerateOptions(t *testing.T) {
	t.Parallel()
	rootfs := testRootfs(t)
	hostDir := t.TempDir()
	hostFile := filepath.Join(hostDir, "file")
	if err := os.WriteFile(hostFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		img   ocispec.ImageConfig
		opts  *xdv1.RunOptions
		check func(t *testing.T, s *specs.Spec)
	}{
		{name: "env overrides and tty", img: testImage(), opts: &xdv1.RunOptions{Env: []string{"FOO=user", "BAR=1"}, Tty: true},
			check: func(t *testing.T, s *specs.Spec) {
				checkEqual(t, "env", s.Process.Env, []string{"FOO=user", "PATH=/opt/bin:/bin", "BAR=1", "TERM=xterm"})
				checkEqual(t, "terminal", s.Process.Terminal, true)
			}},
		{name: "default PATH", img: ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"A=1"}}, opts: nil,
			check: func(t *testing.T, s *specs.Spec) {
				checkEqual(t, "env", s.Process.Env, []string{"A=1", defaultPath})
				checkEqual(t, "cwd", s.Process.Cwd, "/")
				checkEqual(t, "user", s.Process.User, specs.User{AdditionalGids: []uint32{0}})
			}},
		{name: "user PATH kept", img: ocispec.ImageConfig{Cmd: []string{"sh"}}, opts: &xdv1.RunOptions{Env: []string{"PATH=/x"}},
			check: func(t *testing.T, s *specs.Spec) { checkEqual(t, "env", s.Process.Env, []string{"PATH=/x"}) }},
		{name: "workdir, user, hostname, read-only", img: testImage(),
			opts: &xdv1.RunOptions{Workdir: "/data/./x/", User: "alice:wheel", Hostname: "web", ReadOnly: true},
			check: func(t *testing.T, s *specs.Spec) {
				checkEqual(t, "cwd", s.Process.Cwd, "/data/x")
				checkEqual(t, "user", s.Process.User, specs.User{UID: 1000, GID: 10, AdditionalGids: []uint32{10, 100, 999}})
				checkEqual(t, "hostname", s.Hostname, "web")
				checkEqual(t, "root", s.Root, &specs.Root{Path: "rootfs", Readonly: true})
			}},
		{name: "short id is the hostname", img: testImage(), opts: nil, check: func(t *testing.T, s *specs.Spec) {
			checkEqual(t, "hostname", s.Hostname, "id")
		}},
		{name: "explicit none network", img: testImage(), opts: &xdv1.RunOptions{Network: "none"}, check: func(t *testing.T, s *specs.Spec) {
			if !hasNamespace(s, specs.NetworkNamespace) || !hasNamespace(s, specs.UTSNamespace) {
				t.Error("want network and uts namespaces")
			}
		}},
		{name: "limits", img: testImage(), opts: &xdv1.RunOptions{MemoryBytes: 64 << 20, MilliCpus: 1500, PidsLimit: 100},
			check: func(t *testing.T, s *specs.Spec) {
				r := s.Linux.Resources
				if r.Memory == nil || *r.Memory.Limit != 64<<20 {
					t.Errorf("memory = %+v", r.Memory)
				}
				if r.CPU == nil || *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 {
					t.Errorf("cpu = %+v", r.CPU)
				}
				if r.Pids == nil || *r.Pids.Limit != 100 {
					t.Errorf("pids = %+v", r.Pids)
				}
				if len(r.Devices) != 9 {
					t.Errorf("devices = %d rules; want the defaults", len(r.Devices))
				}
			}},
		{name: "smallest cpu", img: testImage(), opts: &xdv1.RunOptions{MilliCpus: 10}, check: func(t *testing.T, s *specs.Spec) {
			checkEqual(t, "quota", *s.Linux.Resources.CPU.Quota, int64(1000))
		}},
		{name: "bind mounts", img: testImage(), opts: &xdv1.RunOptions{Mounts: []*xdv1.Mount{
			{Source: hostDir + "/", Destination: "/data/sub/", Readonly: true},
			{Source: hostFile, Destination: "/data"},
			{Source: hostDir, Destination: "/dev/shm"},
		}}, check: func(t *testing.T, s *specs.Spec) {
			var got []string
			for _, m := range s.Mounts {
				got = append(got, m.Destination)
			}
			// Sorted by depth (stable: equal depths keep their order); the
			// user's /dev/shm replaces the default one.
			checkEqual(t, "destinations", got, []string{"/proc", "/dev", "/sys", "/data", "/dev/pts", "/dev/mqueue", "/data/sub", "/dev/shm", "/sys/fs/cgroup"})
			find := func(dst string) specs.Mount {
				for _, m := range s.Mounts {
					if m.Destination == dst {
						return m
					}
				}
				t.Fatalf("no mount at %s", dst)
				return specs.Mount{}
			}
			checkEqual(t, "/data/sub", find("/data/sub"), specs.Mount{Destination: "/data/sub", Type: "bind", Source: hostDir, Options: []string{"rbind", "rprivate", "ro"}})
			checkEqual(t, "/data", find("/data"), specs.Mount{Destination: "/data", Type: "bind", Source: hostFile, Options: []string{"rbind", "rprivate", "rw"}})
			checkEqual(t, "/dev/shm", find("/dev/shm").Source, hostDir)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Generate(tc.img, rootfs, "ns", "id", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

// TestGenerateHostNetwork is not parallel: it points hostNetworkFiles at
// files of its own.
func TestGenerateHostNetwork(t *testing.T) {
	etc := t.TempDir()
	resolv := filepath.Join(etc, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	saved := hostNetworkFiles
	hostNetworkFiles = []string{resolv, filepath.Join(etc, "hosts") /* missing: skipped */, etc /* a dir: skipped */}
	t.Cleanup(func() { hostNetworkFiles = saved })

	s, err := Generate(testImage(), testRootfs(t), "ns", "0123456789abcdef", &xdv1.RunOptions{Network: "host"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Hostname != "" {
		t.Errorf("hostname = %q; want none with the host's network", s.Hostname)
	}
	checkEqual(t, "namespaces", s.Linux.Namespaces, []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
	})
	var binds []specs.Mount
	for _, m := range s.Mounts {
		if m.Type == "bind" {
			binds = append(binds, m)
		}
	}
	checkEqual(t, "binds", binds, []specs.Mount{{Destination: resolv, Type: "bind", Source: resolv, Options: []string{"rbind", "rprivate", "ro"}}})

	// The user's own mount at that destination wins.
	s, err = Generate(testImage(), testRootfs(t), "ns", "id", &xdv1.RunOptions{Network: "host",
		Mounts: []*xdv1.Mount{{Source: etc, Destination: resolv}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range s.Mounts {
		if m.Destination == resolv {
			n++
			checkEqual(t, "source", m.Source, etc)
		}
	}
	checkEqual(t, "mounts at "+resolv, n, 1)
}

func TestGenerateErrors(t *testing.T) {
	t.Parallel()
	rootfs := testRootfs(t)
	missing := filepath.Join(t.TempDir(), "missing")
	ok := testImage()
	for _, tc := range []struct {
		name    string
		img     ocispec.ImageConfig
		ns, id  string
		opts    *xdv1.RunOptions
		wantErr string
	}{
		{name: "relative workdir", opts: &xdv1.RunOptions{Workdir: "app"}, wantErr: `workdir "app": must be an absolute path`},
		{name: "relative image workdir", img: ocispec.ImageConfig{Cmd: []string{"sh"}, WorkingDir: "app"}, wantErr: `image WorkingDir "app"`},
		{name: "missing mount source", opts: &xdv1.RunOptions{Mounts: []*xdv1.Mount{{Source: missing, Destination: "/x"}}},
			wantErr: `mounts[0].source "` + missing + `": does not exist on the host`},
		{name: "relative mount source", opts: &xdv1.RunOptions{Mounts: []*xdv1.Mount{{Source: "data", Destination: "/x"}}},
			wantErr: `mounts[0].source "data": must be an absolute host path`},
		{name: "empty mount source", opts: &xdv1.RunOptions{Mounts: []*xdv1.Mount{{Destination: "/x"}}}, wantErr: `mounts[0].source ""`},
		{name: "relative mount destination", opts: &xdv1.RunOptions{Mounts: []*xdv1.Mount{{Source: "/", Destination: "x"}}},
			wantErr: `mounts[0].destination "x": must be an absolute path`},
		{name: "mount over root", opts: &xdv1.RunOptions{Mounts: []*xdv1.Mount{{Source: "/", Destination: "/x/.."}}}, wantErr: "cannot mount over the root"},
		{name: "mount over proc", opts: &xdv1.RunOptions{Mounts: []*xdv1.Mount{{Source: "/", Destination: "/proc/sys"}}}, wantErr: "cannot mount over /proc"},
		{name: "nil mount", opts: &xdv1.RunOptions{Mounts: []*xdv1.Mount{nil}}, wantErr: "mounts[0]: empty"},
		{name: "duplicate destination", opts: &xdv1.RunOptions{Mounts: []*xdv1.Mount{{Source: "/", Destination: "/x"}, {Source: "/", Destination: "/x/"}}},
			wantErr: `mounts[1].destination "/x": mounted twice`},
		{name: "unknown network", opts: &xdv1.RunOptions{Network: "bridge"}, wantErr: `network "bridge"`},
		{name: "hostname with host network", opts: &xdv1.RunOptions{Network: "host", Hostname: "h"}, wantErr: `hostname "h": cannot be set`},
		{name: "hostname too long", opts: &xdv1.RunOptions{Hostname: strings.Repeat("h", 65)}, wantErr: "longer than 64"},
		{name: "unknown user", opts: &xdv1.RunOptions{User: "mallory"}, wantErr: `unknown user "mallory"`},
		{name: "unknown image user", img: ocispec.ImageConfig{Cmd: []string{"sh"}, User: "ghost"}, wantErr: `unknown user "ghost"`},
		{name: "no command", img: ocispec.ImageConfig{}, wantErr: "no command specified"},
		{name: "bad env", opts: &xdv1.RunOptions{Env: []string{"JUSTAKEY"}}, wantErr: `env[0] "JUSTAKEY": want KEY=VALUE`},
		{name: "bad image env", img: ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"A=1", "B"}}, wantErr: `image env[1] "B"`},
		{name: "negative memory", opts: &xdv1.RunOptions{MemoryBytes: -1}, wantErr: "memory_bytes -1"},
		{name: "negative cpu", opts: &xdv1.RunOptions{MilliCpus: -1}, wantErr: "milli_cpus -1"},
		{name: "cpu below minimum", opts: &xdv1.RunOptions{MilliCpus: 9}, wantErr: "milli_cpus 9: below the minimum of 10"},
		{name: "cpu overflow", opts: &xdv1.RunOptions{MilliCpus: 1 << 62}, wantErr: "too large"},
		{name: "negative pids", opts: &xdv1.RunOptions{PidsLimit: -1}, wantErr: "pids_limit -1"},
		{name: "empty id", id: "-", wantErr: "container id: empty"},
		{name: "id with slash", id: "../../escape", wantErr: `container id "../../escape"`},
		{name: "dotdot namespace", ns: "..", wantErr: `namespace ".."`},
		{name: "empty namespace", ns: "-", wantErr: "namespace: empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := tc.img
			if img.Cmd == nil && img.Entrypoint == nil && tc.name != "no command" {
				img = ok
			}
			ns, id := tc.ns, tc.id
			switch ns {
			case "":
				ns = "default"
			case "-":
				ns = ""
			}
			switch id {
			case "":
				id = "c1"
			case "-":
				id = ""
			}
			s, err := Generate(img, rootfs, ns, id, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Generate = %+v, %v; want error containing %q", s, err, tc.wantErr)
			}
		})
	}
}

func hasNamespace(s *specs.Spec, typ specs.LinuxNamespaceType) bool {
	for _, n := range s.Linux.Namespaces {
		if n.Type == typ {
			return true
		}
	}
	return false
}

func checkEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s =\n\t%+v\nwant\n\t%+v", what, got, want)
	}
}
