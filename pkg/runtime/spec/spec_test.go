package spec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// newBundle returns a bundle directory with an empty rootfs directory.
func newBundle(t testing.TB) string {
	t.Helper()
	b := t.TempDir()
	if err := os.Mkdir(filepath.Join(b, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	return b
}

// baseSpec is a minimal spec that passes Validate; each case breaks one thing.
func baseSpec() *specs.Spec {
	return &specs.Spec{
		Version: "1.0.2",
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{Args: []string{"sh"}, Cwd: "/", Env: []string{"PATH=/bin"}},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.PIDNamespace}},
		},
	}
}

func intp(v int) *int { return &v }

func TestValidate(t *testing.T) {
	addNS := func(ns ...specs.LinuxNamespace) func(*specs.Spec, string) {
		return func(s *specs.Spec, _ string) { s.Linux.Namespaces = append(s.Linux.Namespaces, ns...) }
	}
	tests := []struct {
		name   string
		mutate func(s *specs.Spec, bundle string)
		want   string // substring of the error; "" means valid
	}{
		{"base is valid", func(*specs.Spec, string) {}, ""},
		{"no linux section", func(s *specs.Spec, _ string) { s.Linux = nil }, ""},

		// ociVersion
		{"version missing", func(s *specs.Spec, _ string) { s.Version = "" }, "ociVersion: missing"},
		{"version 2", func(s *specs.Spec, _ string) { s.Version = "2.0.0" }, `ociVersion: unsupported spec version "2.0.0"`},
		{"version 0.9", func(s *specs.Spec, _ string) { s.Version = "0.9.0" }, "ociVersion: unsupported"},
		{"version with v", func(s *specs.Spec, _ string) { s.Version = "v1.0.0" }, "ociVersion: unsupported"},
		{"version garbage", func(s *specs.Spec, _ string) { s.Version = "latest" }, "ociVersion: unsupported"},
		{"version dev ok", func(s *specs.Spec, _ string) { s.Version = "1.0.2-dev" }, ""},
		{"version 1.2.0 ok", func(s *specs.Spec, _ string) { s.Version = "1.2.0" }, ""},
		{"version 1.3.0 ok", func(s *specs.Spec, _ string) { s.Version = "1.3.0" }, ""},
		{"version major only ok", func(s *specs.Spec, _ string) { s.Version = "1" }, ""},

		// root
		{"root missing", func(s *specs.Spec, _ string) { s.Root = nil }, "root.path: missing"},
		{"root path empty", func(s *specs.Spec, _ string) { s.Root.Path = "" }, "root.path: missing"},
		{"rootfs missing", func(s *specs.Spec, _ string) { s.Root.Path = "nope" }, "root.path: rootfs"},
		{"rootfs missing names path", func(s *specs.Spec, b string) { s.Root.Path = "nope" }, "does not exist"},
		{"rootfs not a dir", func(s *specs.Spec, b string) {
			writeFile(b, "file")
			s.Root.Path = "file"
		}, "root.path: rootfs"},
		{"rootfs not a dir text", func(s *specs.Spec, b string) {
			writeFile(b, "file")
			s.Root.Path = "file"
		}, "is not a directory"},
		{"rootfs absolute ok", func(s *specs.Spec, b string) { s.Root.Path = filepath.Join(b, "rootfs") }, ""},
		{"rootfs symlink to dir ok", func(s *specs.Spec, b string) {
			must(os.Symlink("rootfs", filepath.Join(b, "link")))
			s.Root.Path = "link"
		}, ""},

		// process
		{"process missing", func(s *specs.Spec, _ string) { s.Process = nil }, "process: missing"},
		{"args nil", func(s *specs.Spec, _ string) { s.Process.Args = nil }, "process.args"},
		{"args first empty", func(s *specs.Spec, _ string) { s.Process.Args = []string{""} }, "process.args"},
		{"cwd missing", func(s *specs.Spec, _ string) { s.Process.Cwd = "" }, "process.cwd: missing"},
		{"cwd relative", func(s *specs.Spec, _ string) { s.Process.Cwd = "home" }, "process.cwd"},
		{"env without equals", func(s *specs.Spec, _ string) { s.Process.Env = []string{"A=1", "BROKEN"} }, `process.env: "BROKEN"`},
		{"env empty value ok", func(s *specs.Spec, _ string) { s.Process.Env = []string{"A="} }, ""},
		{"rlimit unknown type", func(s *specs.Spec, _ string) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS", Soft: 1, Hard: 1}}
		}, `process.rlimits: unknown rlimit type "RLIMIT_BOGUS"`},
		{"rlimit lower case type", func(s *specs.Spec, _ string) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "rlimit_nofile", Soft: 1, Hard: 1}}
		}, "process.rlimits"},
		{"rlimit soft above hard", func(s *specs.Spec, _ string) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 1024}}
		}, "process.rlimits: RLIMIT_NOFILE soft limit 2048"},
		{"rlimit soft equals hard ok", func(s *specs.Spec, _ string) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024}, {Type: "RLIMIT_CORE", Soft: 0, Hard: ^uint64(0)}}
		}, ""},
		{"oom score too low", func(s *specs.Spec, _ string) { s.Process.OOMScoreAdj = intp(-1001) }, "process.oomScoreAdj: -1001"},
		{"oom score too high", func(s *specs.Spec, _ string) { s.Process.OOMScoreAdj = intp(1001) }, "process.oomScoreAdj: 1001"},
		{"oom score bounds ok low", func(s *specs.Spec, _ string) { s.Process.OOMScoreAdj = intp(-1000) }, ""},
		{"oom score bounds ok high", func(s *specs.Spec, _ string) { s.Process.OOMScoreAdj = intp(1000) }, ""},

		// namespaces
		{"namespace unknown", addNS(specs.LinuxNamespace{Type: "bogus"}), `linux.namespaces[2]: unknown namespace type "bogus"`},
		{"namespace duplicate", addNS(specs.LinuxNamespace{Type: specs.PIDNamespace}), `linux.namespaces[2]: duplicate namespace type "pid"`},
		{"namespace path missing", addNS(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/nonexistent/ns/net"}), "linux.namespaces[2]: network namespace path"},
		{"namespace path relative", addNS(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "proc/self/ns/net"}), "linux.namespaces[2]: network namespace path"},
		{"namespace path not a namespace", func(s *specs.Spec, b string) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: writeFile(b, "notns")})
		}, "is not a namespace file"},
		{"namespace path wrong type", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces[1].Path = "/proc/self/ns/net" // entry 1 is "pid"
		}, "linux.namespaces[1]: pid namespace path: /proc/self/ns/net is a namespace of another type"},
		{"namespace path right type", addNS(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"}), ""},
		{"namespace path right type ipc", addNS(specs.LinuxNamespace{Type: specs.IPCNamespace, Path: "/proc/self/ns/ipc"}), ""},
		{"namespace path symlink target ok", addNS(specs.LinuxNamespace{Type: specs.UTSNamespace, Path: "/proc/thread-self/ns/uts"}), ""},

		// id mappings
		{"user ns without mappings", addNS(specs.LinuxNamespace{Type: specs.UserNamespace}), "linux.uidMappings/gidMappings: a new user namespace needs both"},
		{"user ns with uid mapping only", func(s *specs.Spec, _ string) {
			addNS(specs.LinuxNamespace{Type: specs.UserNamespace})(s, "")
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}, "linux.uidMappings/gidMappings"},
		{"user ns with mappings ok", func(s *specs.Spec, _ string) {
			addNS(specs.LinuxNamespace{Type: specs.UserNamespace})(s, "")
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 65536}}
		}, ""},
		{"mappings without user ns", func(s *specs.Spec, _ string) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}, "linux.uidMappings/gidMappings: mappings given without a user namespace"},
		{"gid mappings without user ns", func(s *specs.Spec, _ string) {
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}, "linux.uidMappings/gidMappings"},
		{"mapping size 0", func(s *specs.Spec, _ string) {
			addNS(specs.LinuxNamespace{Type: specs.UserNamespace})(s, "")
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}, {HostID: 2000, ContainerID: 1, Size: 0}}
		}, "linux.uidMappings/gidMappings: a mapping has size 0"},
		{"joined user ns without mappings ok", addNS(specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/self/ns/user"}), ""},
		{"joined mount ns refused", func(s *specs.Spec, _ string) {
			for i, ns := range s.Linux.Namespaces {
				if ns.Type == specs.MountNamespace {
					s.Linux.Namespaces[i].Path = "/proc/self/ns/mnt"
				}
			}
		}, "joining an existing mount namespace is not supported"},
		// runc 1.1 requires them; they describe the joined namespace.
		{"joined user ns with mappings ok", func(s *specs.Spec, _ string) {
			addNS(specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/self/ns/user"})(s, "")
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}, ""},

		// hostname
		{"hostname without uts", func(s *specs.Spec, _ string) { s.Hostname = "h" }, "hostname/domainname"},
		{"domainname without uts", func(s *specs.Spec, _ string) { s.Domainname = "d" }, "hostname/domainname"},
		{"hostname with joined uts", func(s *specs.Spec, _ string) {
			addNS(specs.LinuxNamespace{Type: specs.UTSNamespace, Path: "/proc/self/ns/uts"})(s, "")
			s.Hostname = "h"
		}, "hostname/domainname"},
		{"hostname with new uts ok", func(s *specs.Spec, _ string) {
			addNS(specs.LinuxNamespace{Type: specs.UTSNamespace})(s, "")
			s.Hostname = "h"
			s.Domainname = "d"
		}, ""},

		// mounts
		{"mount relative destination", func(s *specs.Spec, _ string) {
			s.Mounts = []specs.Mount{{Destination: "/ok", Type: "tmpfs"}, {Destination: "proc", Type: "proc"}}
		}, `mounts[1].destination: "proc"`},
		{"mount empty destination", func(s *specs.Spec, _ string) {
			s.Mounts = []specs.Mount{{Destination: "", Type: "tmpfs"}}
		}, "mounts[0].destination"},
		{"bind without source", func(s *specs.Spec, _ string) {
			s.Mounts = []specs.Mount{{Destination: "/d", Type: "bind"}}
		}, "mounts[0].source: a bind mount needs a source"},
		{"bind option without source", func(s *specs.Spec, _ string) {
			s.Mounts = []specs.Mount{{Destination: "/d", Options: []string{"rbind"}}}
		}, "mounts[0].source"},
		{"bind with missing source", func(s *specs.Spec, b string) {
			s.Mounts = []specs.Mount{{Destination: "/d", Source: filepath.Join(b, "missing"), Options: []string{"bind"}}}
		}, "mounts[0].source: bind source"},
		{"bind with existing source ok", func(s *specs.Spec, b string) {
			s.Mounts = []specs.Mount{{Destination: "/d", Source: b, Type: "none", Options: []string{"rbind", "ro"}}}
		}, ""},
		{"non-bind without type", func(s *specs.Spec, _ string) {
			s.Mounts = []specs.Mount{{Destination: "/tmp", Source: "tmpfs", Options: []string{"nosuid"}}}
		}, `mounts[0].type: missing for "/tmp"`},
		{"id mapped non-bind", func(s *specs.Spec, _ string) {
			s.Mounts = []specs.Mount{{Destination: "/tmp", Type: "tmpfs", UIDMappings: []specs.LinuxIDMapping{{Size: 1}}}}
		}, "mounts[0]: id-mapped mounts are only supported on bind mounts"},
		{"id mapped with uid mappings only", func(s *specs.Spec, b string) {
			s.Mounts = []specs.Mount{{Destination: "/x", Type: "bind", Source: b, Options: []string{"bind"}, UIDMappings: []specs.LinuxIDMapping{{Size: 1}}}}
		}, "mounts[0]: an id-mapped mount needs both uidMappings and gidMappings"},
		{"idmap option without any mappings", func(s *specs.Spec, b string) {
			s.Mounts = []specs.Mount{{Destination: "/x", Type: "bind", Source: b, Options: []string{"bind", "idmap"}}}
		}, "needs the container's user namespace mappings"},
		{"id mapping of size 0", func(s *specs.Spec, b string) {
			m := []specs.LinuxIDMapping{{HostID: 1000, Size: 0}}
			s.Mounts = []specs.Mount{{Destination: "/x", Type: "bind", Source: b, Options: []string{"bind"}, UIDMappings: m, GIDMappings: m}}
		}, "an id mapping of size 0"},
		{"id mapped bind", func(s *specs.Spec, b string) {
			m := []specs.LinuxIDMapping{{HostID: 1000, Size: 10}}
			s.Mounts = []specs.Mount{{Destination: "/x", Type: "bind", Source: b, Options: []string{"bind"}, UIDMappings: m, GIDMappings: m}}
		}, ""},

		// paths
		{"masked relative", func(s *specs.Spec, _ string) { s.Linux.MaskedPaths = []string{"/proc/kcore", "proc/keys"} }, `linux.maskedPaths: "proc/keys"`},
		{"readonly relative", func(s *specs.Spec, _ string) { s.Linux.ReadonlyPaths = []string{"proc/sys"} }, `linux.readonlyPaths: "proc/sys"`},

		// devices
		{"device outside dev", func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/etc/fuse", Type: "c"}}
		}, `linux.devices[0].path: "/etc/fuse" is not under /dev`},
		{"device escaping dev", func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/../etc/x", Type: "c"}}
		}, "linux.devices[0].path"},
		{"device is dev itself", func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev", Type: "c"}}
		}, "linux.devices[0].path"},
		{"device root", func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/", Type: "c"}}
		}, "linux.devices[0].path"},
		{"device relative", func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "dev/fuse", Type: "c"}}
		}, "linux.devices[0].path"},
		{"device bad type", func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c"}, {Path: "/dev/x", Type: "x"}}
		}, `linux.devices[1].type: "x"`},
		{"device empty type", func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x"}}
		}, "linux.devices[0].type"},
		{"device types ok", func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/c", Type: "c"}, {Path: "/dev/u", Type: "u"}, {Path: "/dev/b", Type: "b"}, {Path: "/dev/sub/p", Type: "p"}}
		}, ""},

		// rootfsPropagation
		{"bad propagation", func(s *specs.Spec, _ string) { s.Linux.RootfsPropagation = "sharedd" }, `linux.rootfsPropagation: unknown propagation "sharedd"`},
		{"propagation ok", func(s *specs.Spec, _ string) { s.Linux.RootfsPropagation = "rslave" }, ""},

		// unsupported features
		{"seccomp profile", func(s *specs.Spec, _ string) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}}}
		}, ""},
		{"seccomp bad action", func(s *specs.Spec, _ string) { s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"} }, "SCMP_ACT_NOPE"},
		{"seccomp listener without notify", func(s *specs.Spec, _ string) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/l.sock"}
		}, "linux.seccomp.listenerPath: given, but no rule"},
		{"seccomp notify with a listener", func(s *specs.Spec, _ string) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/l.sock",
				Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
		}, ""},
		{"seccomp notify with a relative listener", func(s *specs.Spec, _ string) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "l.sock",
				Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
		}, "is not an absolute path"},
		{"seccomp notify", func(s *specs.Spec, _ string) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
		}, "SCMP_ACT_NOTIFY"},
		{"apparmor", func(s *specs.Spec, _ string) { s.Process.ApparmorProfile = "docker-default" }, "process.apparmorProfile"},
		{"selinux label", func(s *specs.Spec, _ string) { s.Process.SelinuxLabel = "system_u:system_r:container_t:s0" }, "process.selinuxLabel"},
		{"bad scheduler", func(s *specs.Spec, _ string) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedRR} }, "process.scheduler.priority"},
		{"bad io priority", func(s *specs.Spec, _ string) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 9}
		}, "process.ioPriority.priority"},
		{"exec cpu affinity", func(s *specs.Spec, _ string) {
			s.Process.ExecCPUAffinity = &specs.CPUAffinity{Initial: "0", Final: "0-1"}
		}, ""},
		{"bad exec cpu affinity", func(s *specs.Spec, _ string) { s.Process.ExecCPUAffinity = &specs.CPUAffinity{Final: "1-0"} }, "process.execCPUAffinity.final"},
		{"intel rdt", func(s *specs.Spec, _ string) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "x"} }, "linux.intelRdt"},
		{"bad personality", func(s *specs.Spec, _ string) { s.Linux.Personality = &specs.LinuxPersonality{Domain: "BSD"} }, "linux.personality.domain"},
		{"time offsets without a time namespace", func(s *specs.Spec, _ string) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
		}, "linux.timeOffsets: given without a time namespace"},
		{"time namespace with offsets", func(s *specs.Spec, b string) {
			addNS(specs.LinuxNamespace{Type: specs.TimeNamespace})(s, b)
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}, "boottime": {Secs: -5}}
		}, ""},
		{"time offsets of an unknown clock", func(s *specs.Spec, b string) {
			addNS(specs.LinuxNamespace{Type: specs.TimeNamespace})(s, b)
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"realtime": {Secs: 10}}
		}, `linux.timeOffsets: unknown clock "realtime"`},
		{"time offsets on a joined time namespace", func(s *specs.Spec, b string) {
			addNS(specs.LinuxNamespace{Type: specs.TimeNamespace, Path: "/proc/self/ns/time"})(s, b)
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 10}}
		}, "linux.timeOffsets: cannot be set on a joined time namespace"},
		{"mount label", func(s *specs.Spec, _ string) { s.Linux.MountLabel = "system_u:object_r:container_file_t:s0" }, "linux.mountLabel"},
		{"memory policy without nodes", func(s *specs.Spec, _ string) { s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: "MPOL_BIND"} }, "linux.memoryPolicy.nodes"},
		{"memory policy", func(s *specs.Spec, _ string) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: "MPOL_INTERLEAVE", Nodes: "0"}
		}, ""},
		{"net devices", func(s *specs.Spec, b string) {
			addNS(specs.LinuxNamespace{Type: specs.NetworkNamespace})(s, b)
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {}, "eth2": {Name: "ctr0"}}
		}, ""},
		{"net devices without a network namespace", func(s *specs.Spec, _ string) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {}}
		}, "no network namespace of its own"},
		{"net device with a bad name", func(s *specs.Spec, b string) {
			addNS(specs.LinuxNamespace{Type: specs.NetworkNamespace})(s, b)
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1/x": {}}
		}, `linux.netDevices: "eth1/x"`},
		{"net device renamed too long", func(s *specs.Spec, b string) {
			addNS(specs.LinuxNamespace{Type: specs.NetworkNamespace})(s, b)
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {Name: "a-very-long-name0"}}
		}, "linux.netDevices.eth1.name"},
		{"net devices renamed alike", func(s *specs.Spec, b string) {
			addNS(specs.LinuxNamespace{Type: specs.NetworkNamespace})(s, b)
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {Name: "eth2"}, "eth2": {}}
		}, `would both be "eth2"`},
		{"unsupported refused without linux ns list", func(s *specs.Spec, _ string) {
			s.Linux.Namespaces = nil
			s.Process.ApparmorProfile = "p"
		}, "process.apparmorProfile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundle := newBundle(t)
			s := baseSpec()
			tt.mutate(s, bundle)
			err := Validate(s, bundle)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestValidateNamespacePathErrno keeps the errno of a failed open.
func TestValidateNamespacePathErrno(t *testing.T) {
	s := baseSpec()
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/nonexistent/net"})
	bundle := newBundle(t)
	err := Validate(s, bundle)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/net") {
		t.Fatalf("Validate = %v", err)
	}
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("error %v does not wrap ENOENT", err)
	}
}

func TestValidateNamespacePathFIFO(t *testing.T) {
	bundle := newBundle(t)
	fifo := filepath.Join(bundle, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	s := baseSpec()
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: fifo})
	done := make(chan error, 1)
	go func() { done <- Validate(s, bundle) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "linux.namespaces[2]") {
			t.Fatalf("Validate = %v, want an error naming linux.namespaces[2]", err)
		}
	case <-time.After(3 * time.Second):
		// Unblock the open so the goroutine ends.
		if fd, err := unix.Open(fifo, unix.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			unix.Close(fd)
		}
		<-done
		t.Fatal("Validate blocked on a FIFO namespace path")
	}
}

func TestValidateRelativeBindSource(t *testing.T) {
	tests := []struct {
		name       string
		inBundle   bool // create bundle/data
		inCwd      bool // create cwd/data
		wantErrSub string
	}{
		{"present in bundle only", true, false, ""},
		{"present in cwd only", false, true, "mounts[0].source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundle := newBundle(t)
			cwd := t.TempDir()
			if tt.inBundle {
				must(os.Mkdir(filepath.Join(bundle, "data"), 0o755))
			}
			if tt.inCwd {
				must(os.Mkdir(filepath.Join(cwd, "data"), 0o755))
			}
			t.Chdir(cwd)
			s := baseSpec()
			s.Mounts = []specs.Mount{{Destination: "/data", Source: "data", Type: "bind"}}
			err := Validate(s, bundle)
			switch {
			case tt.wantErrSub == "" && err != nil:
				t.Fatalf("Validate = %v, want nil", err)
			case tt.wantErrSub != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErrSub)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErrSub)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
		check   func(*testing.T, *specs.Spec)
	}{
		{"empty", "", "parse config.json:", nil},
		{"not json", "ociVersion: 1", "parse config.json:", nil},
		{"truncated", `{"ociVersion": "1.0.2"`, "parse config.json:", nil},
		{"array", `[]`, "parse config.json:", nil},
		{"wrong type", `{"ociVersion": 1}`, "parse config.json:", nil},
		{"wrong nested type", `{"process": {"args": "sh"}}`, "parse config.json:", nil},
		{"minimal", `{"ociVersion":"1.0.2","root":{"path":"rootfs","readonly":true},"process":{"cwd":"/","args":["sh","-c","x"]},"linux":{"namespaces":[{"type":"pid","path":"/proc/1/ns/pid"}]}}`, "", func(t *testing.T, s *specs.Spec) {
			if s.Version != "1.0.2" || s.Root.Path != "rootfs" || !s.Root.Readonly || strings.Join(s.Process.Args, " ") != "sh -c x" {
				t.Errorf("decoded %+v", s)
			}
			if ns, ok := FindNamespace(s, specs.PIDNamespace); !ok || ns.Path != "/proc/1/ns/pid" {
				t.Errorf("FindNamespace(pid) = %+v, %v", ns, ok)
			}
		}},
		{"unknown fields ignored", `{"ociVersion":"1.0.2","x-extension":{"a":1}}`, "", func(t *testing.T, s *specs.Spec) {
			if s.Version != "1.0.2" {
				t.Errorf("version %q", s.Version)
			}
		}},
		{"every linux section", `{"ociVersion":"1.2.0","hostname":"h","domainname":"d","annotations":{"k":"v"},"mounts":[{"destination":"/m","type":"tmpfs"}],"hooks":{"poststop":[{"path":"/bin/true"}]},"linux":{"resources":{"pids":{"limit":5}}},"windows":{"layerFolders":["x"]},"vm":{"hypervisor":{"path":"/h"}}}`, "", func(t *testing.T, s *specs.Spec) {
			if s.Hostname != "h" || s.Domainname != "d" || s.Annotations["k"] != "v" || len(s.Mounts) != 1 || s.Mounts[0].Destination != "/m" ||
				s.Hooks == nil || len(s.Hooks.Poststop) != 1 || s.Linux == nil || s.Linux.Resources.Pids.Limit == nil || *s.Linux.Resources.Pids.Limit != 5 {
				t.Errorf("decoded %+v", s)
			}
			if s.Windows != nil || s.VM != nil {
				t.Errorf("other platforms' sections decoded: windows %+v, vm %+v", s.Windows, s.VM)
			}
		}},
		{"null", `null`, "", func(t *testing.T, s *specs.Spec) {
			if s == nil || s.Version != "" || s.Root != nil {
				t.Errorf("decoded %+v", s)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("Parse = %v, %v; want error %q", s, err, tt.wantErr)
				}
				if s != nil {
					t.Errorf("Parse returned a spec with the error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse = %v", err)
			}
			tt.check(t, s)
		})
	}
}

// TestParseCoversSpec: every section of specs.Spec is decoded, except the
// other platforms'; a new field in a runtime-spec upgrade fails here until
// linuxSpec has it.
func TestParseCoversSpec(t *testing.T) {
	otherPlatforms := map[string]bool{"solaris": true, "windows": true, "vm": true, "zos": true, "freebsd": true}
	decoded := map[string]bool{}
	view := reflect.TypeFor[linuxSpec]()
	for i := range view.NumField() {
		decoded[jsonName(view.Field(i))] = true
	}
	full := reflect.TypeFor[specs.Spec]()
	for i := range full.NumField() {
		name := jsonName(full.Field(i))
		if decoded[name] == otherPlatforms[name] {
			t.Errorf("specs.Spec field %q: decoded %v, other platform %v", name, decoded[name], otherPlatforms[name])
		}
	}
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

func TestLoad(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		b := t.TempDir()
		_, err := Load(b)
		want := "JSON specification file " + filepath.Join(b, "config.json") + " not found"
		if err == nil || err.Error() != want {
			t.Fatalf("Load = %v, want %q", err, want)
		}
	})
	t.Run("ok", func(t *testing.T) {
		b := newBundle(t)
		data, err := json.Marshal(Example("1.0.2"))
		must(err)
		must(os.WriteFile(filepath.Join(b, ConfigName), data, 0o644))
		s, err := Load(b)
		if err != nil {
			t.Fatal(err)
		}
		if s.Hostname != "xrunc" || s.Process.Args[0] != "sh" {
			t.Errorf("loaded %+v", s)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		b := t.TempDir()
		must(os.WriteFile(filepath.Join(b, ConfigName), nil, 0o644))
		if _, err := Load(b); err == nil || !strings.HasPrefix(err.Error(), "parse config.json:") {
			t.Fatalf("Load = %v", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		b := t.TempDir()
		f, err := os.Create(filepath.Join(b, ConfigName))
		must(err)
		must(f.Truncate(16<<20 + 1))
		f.Close()
		if _, err := Load(b); err == nil || !strings.Contains(err.Error(), "more than the 16777216 allowed") {
			t.Fatalf("Load = %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		b := t.TempDir()
		must(os.Mkdir(filepath.Join(b, ConfigName), 0o755))
		if _, err := Load(b); err == nil {
			t.Fatal("Load of a directory config.json succeeded")
		}
	})
}

func TestExamplesValidate(t *testing.T) {
	tests := []struct {
		name string
		s    *specs.Spec
	}{
		{"Example", Example("1.0.2-dev")},
		{"ExampleRootless", ExampleRootless("1.0.2-dev")},
		{"Example current", Example(specs.Version)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundle := newBundle(t)
			if err := Validate(tt.s, bundle); err != nil {
				t.Fatalf("Validate = %v", err)
			}
			// And through a JSON round trip, as "xrunc spec" then "xrunc run" do.
			data, err := json.Marshal(tt.s)
			must(err)
			s, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(s, bundle); err != nil {
				t.Fatalf("Validate after round trip = %v", err)
			}
		})
	}
	t.Run("no rootfs dir", func(t *testing.T) {
		err := Validate(Example("1.0.2"), t.TempDir())
		if err == nil || !strings.HasPrefix(err.Error(), "root.path:") {
			t.Fatalf("Validate = %v", err)
		}
	})
}

func TestExampleContents(t *testing.T) {
	s := Example("1.0.2")
	if s.Version != "1.0.2" || s.Root.Path != "rootfs" || !s.Root.Readonly || !s.Process.Terminal || !s.Process.NoNewPrivileges {
		t.Errorf("Example basics: %+v", s)
	}
	for _, ns := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.CgroupNamespace} {
		if !HasNamespace(s, ns) {
			t.Errorf("Example lacks %s namespace", ns)
		}
	}
	if HasNamespace(s, specs.UserNamespace) || len(s.Linux.UIDMappings) != 0 {
		t.Errorf("Example has a user namespace")
	}

	r := ExampleRootless("1.0.2")
	if !HasNamespace(r, specs.UserNamespace) || HasNamespace(r, specs.NetworkNamespace) {
		t.Errorf("rootless namespaces: %+v", r.Linux.Namespaces)
	}
	if r.Linux.Resources != nil {
		t.Errorf("rootless has resources")
	}
	wantMap := []specs.LinuxIDMapping{{HostID: uint32(os.Geteuid()), ContainerID: 0, Size: 1}}
	if len(r.Linux.UIDMappings) != 1 || r.Linux.UIDMappings[0] != wantMap[0] {
		t.Errorf("uid mappings %+v, want %+v", r.Linux.UIDMappings, wantMap)
	}
	if len(r.Linux.GIDMappings) != 1 || r.Linux.GIDMappings[0].HostID != uint32(os.Getegid()) || r.Linux.GIDMappings[0].Size != 1 {
		t.Errorf("gid mappings %+v", r.Linux.GIDMappings)
	}
	byDest := map[string]specs.Mount{}
	for _, m := range r.Mounts {
		byDest[m.Destination] = m
	}
	if _, ok := byDest["/sys/fs/cgroup"]; ok {
		t.Errorf("rootless keeps the cgroup mount")
	}
	if sys := byDest["/sys"]; !IsBind(sys) || sys.Source != "/sys" {
		t.Errorf("rootless /sys = %+v, want a bind of /sys", sys)
	}
	for _, o := range byDest["/dev/pts"].Options {
		if strings.HasPrefix(o, "gid=") {
			t.Errorf("rootless devpts keeps %q", o)
		}
	}
	if len(r.Mounts) != len(s.Mounts)-1 {
		t.Errorf("rootless has %d mounts, want %d", len(r.Mounts), len(s.Mounts)-1)
	}
	// ExampleRootless must not change what Example returns.
	again := Example("1.0.2")
	if !HasNamespace(again, specs.NetworkNamespace) || again.Linux.Resources == nil || len(again.Mounts) != len(s.Mounts) {
		t.Errorf("Example changed after ExampleRootless")
	}
}

func TestFindNamespace(t *testing.T) {
	s := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.NetworkNamespace, Path: "/var/run/netns/a"},
	}}}
	tests := []struct {
		spec     *specs.Spec
		typ      specs.LinuxNamespaceType
		wantOK   bool
		wantPath string
	}{
		{s, specs.PIDNamespace, true, ""},
		{s, specs.NetworkNamespace, true, "/var/run/netns/a"},
		{s, specs.UserNamespace, false, ""},
		{&specs.Spec{}, specs.PIDNamespace, false, ""},
		{&specs.Spec{Linux: &specs.Linux{}}, specs.PIDNamespace, false, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			ns, ok := FindNamespace(tt.spec, tt.typ)
			if ok != tt.wantOK || ns.Path != tt.wantPath || (ok && ns.Type != tt.typ) {
				t.Errorf("FindNamespace(%s) = %+v, %v", tt.typ, ns, ok)
			}
			if HasNamespace(tt.spec, tt.typ) != tt.wantOK {
				t.Errorf("HasNamespace(%s) = %v", tt.typ, !tt.wantOK)
			}
		})
	}
}

func TestRootfsPath(t *testing.T) {
	tests := []struct {
		root   *specs.Root
		bundle string
		want   string
	}{
		{nil, "/b", ""},
		{&specs.Root{Path: "rootfs"}, "/b", "/b/rootfs"},
		{&specs.Root{Path: "./a/../rootfs/"}, "/b", "/b/rootfs"},
		{&specs.Root{Path: "../r"}, "/srv/b", "/srv/r"},
		{&specs.Root{Path: "/abs//root/"}, "/b", "/abs/root"},
		{&specs.Root{Path: "/x/../y"}, "/b", "/y"},
	}
	for _, tt := range tests {
		name := "nil"
		if tt.root != nil {
			name = tt.root.Path
		}
		t.Run(name, func(t *testing.T) {
			if got := RootfsPath(&specs.Spec{Root: tt.root}, tt.bundle); got != tt.want {
				t.Errorf("RootfsPath = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIsBind(t *testing.T) {
	tests := []struct {
		name string
		m    specs.Mount
		want bool
	}{
		{"type bind", specs.Mount{Type: "bind"}, true},
		{"bind option", specs.Mount{Type: "none", Options: []string{"ro", "bind"}}, true},
		{"rbind option", specs.Mount{Options: []string{"rbind"}}, true},
		{"tmpfs", specs.Mount{Type: "tmpfs", Options: []string{"nosuid"}}, false},
		{"bind-like data", specs.Mount{Type: "tmpfs", Options: []string{"binder", "rbind=1"}}, false},
		{"empty", specs.Mount{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsBind(tt.m); got != tt.want {
				t.Errorf("IsBind(%+v) = %v, want %v", tt.m, got, tt.want)
			}
		})
	}
}

func TestCheckProcessExported(t *testing.T) {
	// CheckProcess is used for exec's process.json too.
	tests := []struct {
		p    specs.Process
		want string
	}{
		{specs.Process{Args: []string{"ls"}, Cwd: "/"}, ""},
		{specs.Process{Args: []string{"ls"}}, "process.cwd: missing"},
		{specs.Process{Cwd: "/"}, "process.args"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			err := CheckProcess(&tt.p)
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("CheckProcess = %v, want %q", err, tt.want)
			}
		})
	}
}

// fieldPrefixes are how every Validate error starts: with the field name.
var fieldPrefixes = []string{"ociVersion:", "root.path:", "process:", "process.", "linux.", "mounts[", "hostname/domainname:"}

func FuzzParseValidate(f *testing.F) {
	for _, s := range []*specs.Spec{Example("1.0.2"), ExampleRootless("1.0.2-dev"), baseSpec()} {
		data, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh"]},"linux":{"namespaces":[{"type":"pid","path":"/proc/self/ns/net"}]}}`))
	f.Add([]byte(`{"ociVersion":"1","mounts":[{"destination":"/x","options":["rbind"],"source":"/nonexistent"}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	bundle := newBundle(f)

	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("Parse returned an error with empty text")
			}
			if s != nil {
				t.Fatal("Parse returned both a spec and an error")
			}
			return
		}
		if s == nil {
			t.Fatal("Parse returned neither a spec nor an error")
		}
		// Validate opens namespace paths; keep it away from arbitrary
		// host files (device nodes, FIFOs) the fuzzer might name.
		if s.Linux != nil {
			for i, ns := range s.Linux.Namespaces {
				if ns.Path != "" && !strings.HasPrefix(ns.Path, "/proc/self/ns/") {
					s.Linux.Namespaces[i].Path = filepath.Join(bundle, "no-such-ns")
				}
			}
		}
		err = Validate(s, bundle)
		if err == nil {
			return
		}
		msg := err.Error()
		if msg == "" {
			t.Fatal("Validate returned an error with empty text")
		}
		for _, p := range fieldPrefixes {
			if strings.HasPrefix(msg, p) {
				return
			}
		}
		t.Fatalf("Validate error %q does not start with a field name", msg)
	})
}

func writeFile(dir, name string) string {
	p := filepath.Join(dir, name)
	must(os.WriteFile(p, []byte("x"), 0o644))
	return p
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
