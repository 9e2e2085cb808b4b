package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/pkg/runtime/procattr"
	"github.com/xstack/xstack/pkg/runtime/seccomp"
)

// checkUnsupported refuses container configuration this runtime does not
// implement yet, and checks the container-wide kernel attributes it does. Silently ignoring a security or isolation setting would run the
// container with weaker guarantees than its author asked for.
func checkUnsupported(s *specs.Spec, _ string) error {
	l := s.Linux
	if l == nil {
		return nil
	}
	switch {
	case l.IntelRdt != nil:
		return fmt.Errorf("linux.intelRdt: not supported by this version of xrunc%s", hostLacks("a resctrl filesystem (Intel RDT)", hasFilesystem("resctrl")))
	case l.MountLabel != "":
		return fmt.Errorf("linux.mountLabel: SELinux is not supported by this version of xrunc%s", hostLacks("SELinux", selinuxEnabled()))
	}
	if err := checkNetDevices(s); err != nil {
		return err
	}
	if l.MemoryPolicy != nil {
		if _, err := procattr.MemoryPolicy(l.MemoryPolicy); err != nil {
			return err
		}
	}
	if l.Personality != nil {
		if _, err := procattr.Personality(l.Personality); err != nil {
			return err
		}
	}
	return checkTimeNamespace(s)
}

// checkTimeNamespace: offsets need a new time namespace, and only the
// monotonic and boottime clocks have one.
func checkTimeNamespace(s *specs.Spec) error {
	ns, ok := FindNamespace(s, specs.TimeNamespace)
	switch {
	case len(s.Linux.TimeOffsets) == 0:
		return nil
	case !ok:
		return fmt.Errorf("linux.timeOffsets: given without a time namespace in linux.namespaces")
	case ns.Path != "":
		return fmt.Errorf("linux.timeOffsets: cannot be set on a joined time namespace (%s)", ns.Path)
	}
	for clock := range s.Linux.TimeOffsets {
		if clock != "monotonic" && clock != "boottime" {
			return fmt.Errorf("linux.timeOffsets: unknown clock %q (monotonic or boottime)", clock)
		}
	}
	return nil
}

// checkSeccomp compiles the profile now, so a profile that cannot be applied
// fails create with the field named, before anything exists. A profile that
// notifies needs an agent to send the notifications to, and only such a
// profile may name one.
func checkSeccomp(s *specs.Spec, _ string) error {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return nil
	}
	p := s.Linux.Seccomp
	prog, err := seccomp.Compile(p)
	if err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	switch {
	case prog.Notify && p.ListenerPath == "":
		return fmt.Errorf("linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")
	case !prog.Notify && (p.ListenerPath != "" || p.ListenerMetadata != ""):
		return fmt.Errorf("linux.seccomp.listenerPath: given, but no rule of the profile uses SCMP_ACT_NOTIFY")
	case p.ListenerPath != "" && !filepath.IsAbs(p.ListenerPath):
		return fmt.Errorf("linux.seccomp.listenerPath: %q is not an absolute path", p.ListenerPath)
	}
	return nil
}

// checkProcessUnsupported refuses process settings this runtime does not
// implement; exec processes go through it too.
func checkProcessUnsupported(p *specs.Process) error {
	switch {
	case p.ApparmorProfile != "":
		return fmt.Errorf("process.apparmorProfile: AppArmor is not supported by this version of xrunc%s", hostLacks("AppArmor", apparmorEnabled()))
	case p.SelinuxLabel != "":
		return fmt.Errorf("process.selinuxLabel: SELinux is not supported by this version of xrunc%s", hostLacks("SELinux", selinuxEnabled()))
	}
	if _, _, err := procattr.ExecCPUAffinity(p.ExecCPUAffinity); err != nil {
		return err
	}
	if p.Scheduler != nil {
		if _, err := procattr.SchedAttr(p.Scheduler); err != nil {
			return err
		}
	}
	if p.IOPriority != nil {
		if _, err := procattr.IOPrio(p.IOPriority); err != nil {
			return err
		}
	}
	return nil
}

// hostLacks adds to a refusal that the host could not do it either, so
// that the user knows a newer xrunc alone would not help.
func hostLacks(what string, has bool) string {
	if has {
		return ""
	}
	return ", and this host has no " + what + " enabled"
}

func apparmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.TrimSpace(string(b)) == "Y"
}

func selinuxEnabled() bool {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}

// hasFilesystem reports whether the kernel knows filesystem type name.
func hasFilesystem(name string) bool {
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[len(f)-1] == name {
			return true
		}
	}
	return false
}
