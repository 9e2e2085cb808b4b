package procattr

import (
	"fmt"
	"slices"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// set_mempolicy's modes and mode flags (linux/mempolicy.h); x/sys/unix
// has neither.
var memoryPolicyModes = map[specs.MemoryPolicyModeType]int{
	specs.MpolDefault:            0,
	specs.MpolPreferred:          1,
	specs.MpolBind:               2,
	specs.MpolInterleave:         3,
	specs.MpolLocal:              4,
	specs.MpolPreferredMany:      5,
	specs.MpolWeightedInterleave: 6,
}

const (
	mpolFStaticNodes   = 1 << 15
	mpolFRelativeNodes = 1 << 14
	mpolFNumaBalancing = 1 << 13
)

var memoryPolicyFlags = map[specs.MemoryPolicyFlagType]int{
	specs.MpolFStaticNodes:   mpolFStaticNodes,
	specs.MpolFRelativeNodes: mpolFRelativeNodes,
	specs.MpolFNumaBalancing: mpolFNumaBalancing,
}

// maxNodes is the largest node mask Linux builds take (NODES_SHIFT 10).
const maxNodes = 1024

// MemPolicy is linux.memoryPolicy as set_mempolicy(2) takes it.
type MemPolicy struct {
	Mode  int // mode with its flags
	Nodes [maxNodes / 64]uint64
	// HasNodes tells an empty node list from none given.
	HasNodes bool
}

// MemoryPolicy converts linux.memoryPolicy, checking what set_mempolicy
// would otherwise refuse with a bare EINVAL: the mode, the flags, the node
// list's syntax and whether the mode takes nodes at all.
func MemoryPolicy(p *specs.LinuxMemoryPolicy) (*MemPolicy, error) {
	mode, ok := memoryPolicyModes[p.Mode]
	if !ok {
		return nil, fmt.Errorf("linux.memoryPolicy.mode: %q is not a memory policy mode (MPOL_DEFAULT, MPOL_BIND, MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE, MPOL_PREFERRED, MPOL_PREFERRED_MANY or MPOL_LOCAL)", p.Mode)
	}
	mp := &MemPolicy{Mode: mode}
	var flags int
	for _, f := range p.Flags {
		bit, ok := memoryPolicyFlags[f]
		if !ok {
			return nil, fmt.Errorf("linux.memoryPolicy.flags: %q is not a memory policy flag (MPOL_F_STATIC_NODES, MPOL_F_RELATIVE_NODES or MPOL_F_NUMA_BALANCING)", f)
		}
		flags |= bit
	}
	if flags&mpolFStaticNodes != 0 && flags&mpolFRelativeNodes != 0 {
		return nil, fmt.Errorf("linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other")
	}
	mp.Mode |= flags
	if strings.TrimSpace(p.Nodes) != "" {
		if err := parseNodes(p.Nodes, &mp.Nodes); err != nil {
			return nil, fmt.Errorf("linux.memoryPolicy.nodes: %w", err)
		}
		mp.HasNodes = true
	}
	switch p.Mode {
	case specs.MpolDefault, specs.MpolLocal:
		if mp.HasNodes {
			return nil, fmt.Errorf("linux.memoryPolicy.nodes: %s takes no nodes, got %q", p.Mode, p.Nodes)
		}
	case specs.MpolPreferred:
		// No nodes: allocate on the local node.
	default:
		if !mp.HasNodes {
			return nil, fmt.Errorf("linux.memoryPolicy.nodes: %s needs at least one node", p.Mode)
		}
	}
	return mp, nil
}

func parseNodes(list string, mask *[maxNodes / 64]uint64) error {
	return parseList(list, "node", maxNodes, "Linux can have", func(n int) { mask[n/64] |= 1 << (n % 64) })
}

// SetMemoryPolicy sets the calling thread's NUMA memory policy, which the
// process it execs, and that process's children, keep. Nothing for nil.
func SetMemoryPolicy(p *specs.LinuxMemoryPolicy) error {
	if p == nil {
		return nil
	}
	mp, err := MemoryPolicy(p)
	if err != nil {
		return err
	}
	var mask unsafe.Pointer
	var maxnode uintptr
	if mp.HasNodes {
		// maxnode counts one more than the mask's bits (set_mempolicy(2)).
		mask, maxnode = unsafe.Pointer(&mp.Nodes[0]), uintptr(len(mp.Nodes)*64+1)
	}
	if _, _, errno := unix.Syscall(unix.SYS_SET_MEMPOLICY, uintptr(mp.Mode), uintptr(mask), maxnode); errno != 0 {
		hint := ""
		if errno == unix.EINVAL {
			hint = " (a node this host does not have, or a flag the mode does not take)"
		}
		return fmt.Errorf("linux.memoryPolicy: set_mempolicy %s nodes %q flags %q: %w%s", p.Mode, p.Nodes, p.Flags, errno, hint)
	}
	return nil
}

// MemoryPolicyModes and MemoryPolicyFlags are the known names, sorted, for
// `xrunc features`.
func MemoryPolicyModes() []string { return sortedNames(memoryPolicyModes) }

// MemoryPolicyFlags: see MemoryPolicyModes.
func MemoryPolicyFlags() []string { return sortedNames(memoryPolicyFlags) }

func sortedNames[K ~string, V any](m map[K]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, string(k))
	}
	slices.Sort(out)
	return out
}
