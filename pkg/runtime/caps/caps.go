// Package caps turns the OCI capability lists into bitmasks and applies the
// five sets to the calling thread. Linux credentials are per thread, so the
// caller must run on a locked OS thread and execve from that same thread.
//
// Internal to xstack; no API stability.
package caps

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// names lists capabilities by number (linux/capability.h).
var names = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// Names returns every capability name this package knows, by number.
func Names() []string { return append([]string(nil), names...) }

// Parse returns the number of a capability name ("CAP_NET_RAW" or "NET_RAW",
// any case).
func Parse(name string) (int, bool) {
	n := strings.ToUpper(name)
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	for i, c := range names {
		if c == n {
			return i, true
		}
	}
	return 0, false
}

// LastCap returns the highest capability number the running kernel knows.
var LastCap = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return len(names) - 1
})

// Set holds the five capability sets as bitmasks.
type Set struct {
	Bounding, Effective, Inheritable, Permitted, Ambient uint64
}

// FromSpec converts spec capability lists. Names that are unknown, or that
// the running kernel does not have, are returned so the caller can warn;
// runc ignores them the same way so that newer configs run on older kernels.
func FromSpec(c *specs.LinuxCapabilities) (Set, []string) {
	var s Set
	if c == nil {
		return s, nil
	}
	var unknown []string
	last := LastCap()
	conv := func(list []string) uint64 {
		var m uint64
		for _, name := range list {
			n, ok := Parse(name)
			if !ok || n > last {
				unknown = append(unknown, name)
				continue
			}
			m |= 1 << uint(n)
		}
		return m
	}
	s.Bounding = conv(c.Bounding)
	s.Effective = conv(c.Effective)
	s.Inheritable = conv(c.Inheritable)
	s.Permitted = conv(c.Permitted)
	s.Ambient = conv(c.Ambient)
	return s, unknown
}

// DropBounding removes every capability outside s.Bounding from the calling
// thread's bounding set. It needs CAP_SETPCAP, so it runs before the switch
// to the container user.
func (s Set) DropBounding() error {
	for n := 0; n <= LastCap(); n++ {
		if s.Bounding&(1<<uint(n)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(n), 0, 0, 0); err != nil {
			if err == unix.EINVAL { // the kernel does not know this one
				continue
			}
			return fmt.Errorf("drop %s from the bounding set: %w", capName(n), err)
		}
	}
	return nil
}

// Apply sets the effective, permitted and inheritable sets of the calling
// thread, then the ambient set (which must be a subset of permitted and
// inheritable).
func (s Set) Apply() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	data[0].Effective, data[1].Effective = uint32(s.Effective), uint32(s.Effective>>32)
	data[0].Permitted, data[1].Permitted = uint32(s.Permitted), uint32(s.Permitted>>32)
	data[0].Inheritable, data[1].Inheritable = uint32(s.Inheritable), uint32(s.Inheritable>>32)
	if _, _, errno := unix.RawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); errno != 0 {
		return fmt.Errorf("capset: %w", errno)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	// An ambient capability must also be permitted and inheritable. Since
	// CVE-2022-29162, configs (runc's default among them) list ambient
	// capabilities without inheritable ones; like runc, raise only those
	// the kernel accepts instead of failing the container.
	for n := 0; n <= LastCap(); n++ {
		bit := uint64(1) << uint(n)
		if s.Ambient&bit == 0 || s.Permitted&bit == 0 || s.Inheritable&bit == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(n), 0, 0); err != nil {
			return fmt.Errorf("raise ambient %s: %w", capName(n), err)
		}
	}
	return nil
}

func capName(n int) string {
	if n < len(names) {
		return names[n]
	}
	return "capability " + strconv.Itoa(n)
}
