package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func devRule(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
	if major >= 0 {
		r.Major = &major
	}
	if minor >= 0 {
		r.Minor = &minor
	}
	return r
}

// defaultDeviceRules are appended to every container's device cgroup
// rules, as runc does: the nodes the runtime creates in /dev and the
// terminal devices must stay usable even under a "deny all" rule, and
// mknod is allowed (access to what is created is still governed by the
// rules).
var defaultDeviceRules = []specs.LinuxDeviceCgroup{
	devRule("c", -1, -1, "m"),
	devRule("b", -1, -1, "m"),
	devRule("c", 1, 3, "rwm"),    // /dev/null
	devRule("c", 1, 8, "rwm"),    // /dev/random
	devRule("c", 1, 7, "rwm"),    // /dev/full
	devRule("c", 5, 0, "rwm"),    // /dev/tty
	devRule("c", 1, 5, "rwm"),    // /dev/zero
	devRule("c", 1, 9, "rwm"),    // /dev/urandom
	devRule("c", 5, 1, "rwm"),    // /dev/console
	devRule("c", 136, -1, "rwm"), // /dev/pts/*
	devRule("c", 5, 2, "rwm"),    // /dev/ptmx
}

// containerResources returns the spec's resources with the default device
// rules appended; the spec is not modified.
func containerResources(s *specs.Spec) *specs.LinuxResources {
	var r specs.LinuxResources
	if s.Linux != nil && s.Linux.Resources != nil {
		r = *s.Linux.Resources
	}
	r.Devices = append(append([]specs.LinuxDeviceCgroup(nil), r.Devices...), defaultDeviceRules...)
	return &r
}
