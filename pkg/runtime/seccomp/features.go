package seccomp

import (
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Features lists what xrunc applies, for `xrunc features`: the
// actions, the comparison operators, the x86 architectures a filter can
// match, and the filter flags.
func Features() (actions, operators, archs, flags []string) {
	for _, a := range []specs.LinuxSeccompAction{
		specs.ActKill, specs.ActKillThread, specs.ActKillProcess, specs.ActTrap, specs.ActErrno,
		specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
	} {
		actions = append(actions, string(a))
	}
	for _, op := range []specs.LinuxSeccompOperator{
		specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
		specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
	} {
		operators = append(operators, string(op))
	}
	for arch, a := range knownArches {
		if a != nil {
			archs = append(archs, string(arch))
		}
	}
	for f := range flagBits {
		flags = append(flags, string(f))
	}
	sort.Strings(archs)
	sort.Strings(flags)
	return actions, operators, archs, flags
}
