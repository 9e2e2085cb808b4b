package spec

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// checkNetDevices: devices to move need a network namespace of the
// container's own (new or joined, never the runtime's), valid interface
// names, and distinct names inside.
func checkNetDevices(s *specs.Spec) error {
	devices := s.Linux.NetDevices
	if len(devices) == 0 {
		return nil
	}
	if _, ok := FindNamespace(s, specs.NetworkNamespace); !ok {
		return fmt.Errorf("linux.netDevices: the container has no network namespace of its own to move devices into (add one to linux.namespaces)")
	}
	inside := map[string]string{}
	for hostName, d := range devices {
		if err := checkInterfaceName(hostName); err != nil {
			return fmt.Errorf("linux.netDevices: %q: %w", hostName, err)
		}
		name := d.Name
		if name == "" {
			name = hostName
		} else if err := checkInterfaceName(name); err != nil {
			return fmt.Errorf("linux.netDevices.%s.name: %q: %w", hostName, name, err)
		}
		if other, taken := inside[name]; taken {
			return fmt.Errorf("linux.netDevices: %q and %q would both be %q in the container", other, hostName, name)
		}
		inside[name] = hostName
	}
	return nil
}

// checkInterfaceName applies the kernel's rules (dev_valid_name).
func checkInterfaceName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty interface name")
	case len(name) > 15:
		return fmt.Errorf("interface names are at most 15 bytes")
	case name == "." || name == "..":
		return fmt.Errorf("not an interface name")
	case strings.ContainsAny(name, "/: \t\n\v\f\r"):
		return fmt.Errorf("interface names have no '/', ':' or white space")
	}
	return nil
}
