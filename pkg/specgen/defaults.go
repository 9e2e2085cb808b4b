package specgen

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultPath is the PATH a process gets when neither the image nor the
// user sets one (the value docker and containerd use).
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultCapabilities is the capability set of a non-privileged container,
// the same list containerd and docker grant.
func defaultCapabilities() *specs.LinuxCapabilities {
	caps := []string{
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FSETID",
		"CAP_FOWNER",
		"CAP_MKNOD",
		"CAP_NET_RAW",
		"CAP_SETGID",
		"CAP_SETUID",
		"CAP_SETFCAP",
		"CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT",
		"CAP_KILL",
		"CAP_AUDIT_WRITE",
	}
	// Each set gets its own slice so that editing one never edits another.
	return &specs.LinuxCapabilities{
		Bounding:  append([]string(nil), caps...),
		Effective: append([]string(nil), caps...),
		Permitted: append([]string(nil), caps...),
	}
}

func defaultRlimits() []specs.POSIXRlimit {
	return []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}}
}

// defaultMounts are the kernel filesystems every container gets.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// defaultMaskedPaths hide kernel information and knobs that leak host
// state or let a container attack the host; the runtime covers them with
// /dev/null (files) or an empty read-only tmpfs (directories).
func defaultMaskedPaths() []string {
	return []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
		"/proc/scsi",
	}
}

func defaultReadonlyPaths() []string {
	return []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
}

// defaultDevices denies every device, then allows the few a process
// expects to find in /dev.
func defaultDevices() []specs.LinuxDeviceCgroup {
	dev := func(major, minor int64) specs.LinuxDeviceCgroup {
		d := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Access: "rwm"}
		if minor >= 0 {
			d.Minor = &minor
		}
		return d
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		dev(1, 3),    // /dev/null
		dev(1, 5),    // /dev/zero
		dev(1, 7),    // /dev/full
		dev(1, 8),    // /dev/random
		dev(1, 9),    // /dev/urandom
		dev(5, 0),    // /dev/tty
		dev(136, -1), // /dev/pts/* (any minor)
		dev(5, 2),    // /dev/ptmx
	}
}
