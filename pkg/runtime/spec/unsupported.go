package spec

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/pkg/runtime/seccomp"
)

// checkUnsupported refuses configuration this runtime does not implement
// yet. Silently ignoring a security or isolation setting would run the
// container with weaker guarantees than its author asked for.
func checkUnsupported(s *specs.Spec, _ string) error {
	if p := s.Process; p != nil {
		switch {
		case p.ApparmorProfile != "":
			return fmt.Errorf("process.apparmorProfile: AppArmor is not supported by this version of xrunc")
		case p.SelinuxLabel != "":
			return fmt.Errorf("process.selinuxLabel: SELinux is not supported by this version of xrunc")
		case p.Scheduler != nil:
			return fmt.Errorf("process.scheduler: not supported by this version of xrunc")
		case p.IOPriority != nil:
			return fmt.Errorf("process.ioPriority: not supported by this version of xrunc")
		case p.ExecCPUAffinity != nil:
			return fmt.Errorf("process.execCPUAffinity: not supported by this version of xrunc")
		}
	}
	l := s.Linux
	if l == nil {
		return nil
	}
	switch {
	case l.IntelRdt != nil:
		return fmt.Errorf("linux.intelRdt: not supported by this version of xrunc")
	case l.Personality != nil:
		return fmt.Errorf("linux.personality: not supported by this version of xrunc")
	case len(l.TimeOffsets) > 0:
		return fmt.Errorf("linux.timeOffsets: not supported by this version of xrunc")
	case l.MemoryPolicy != nil:
		return fmt.Errorf("linux.memoryPolicy: not supported by this version of xrunc")
	case len(l.NetDevices) > 0:
		return fmt.Errorf("linux.netDevices: not supported by this version of xrunc")
	case l.MountLabel != "":
		return fmt.Errorf("linux.mountLabel: SELinux is not supported by this version of xrunc")
	}
	if HasNamespace(s, specs.TimeNamespace) {
		return fmt.Errorf("linux.namespaces: the time namespace is not supported by this version of xrunc")
	}
	return nil
}

// checkSeccomp compiles the profile now, so a profile that cannot be applied
// fails create with the field named, before anything exists.
func checkSeccomp(s *specs.Spec, _ string) error {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return nil
	}
	p := s.Linux.Seccomp
	if p.ListenerPath != "" || p.ListenerMetadata != "" {
		return fmt.Errorf("linux.seccomp.listenerPath: seccomp user notification is not supported by this version of xrunc")
	}
	prog, err := seccomp.Compile(p)
	if err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	if prog.Notify {
		return fmt.Errorf("linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath, which this version of xrunc does not support")
	}
	return nil
}
