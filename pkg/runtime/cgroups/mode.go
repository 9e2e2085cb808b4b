package cgroups

import (
	"sync"

	"golang.org/x/sys/unix"
)

// Mode is the way the host mounts cgroups.
type Mode int

const (
	// Legacy hosts mount only cgroup v1 hierarchies.
	Legacy Mode = iota
	// Hybrid hosts mount cgroup v1 hierarchies plus a cgroup2 tree (at
	// /sys/fs/cgroup/unified) that carries no controllers. It is managed as v1,
	// the way runc does.
	Hybrid
	// Unified hosts mount a single cgroup v2 tree at /sys/fs/cgroup.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "legacy"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "unified"
	}
	return "unknown"
}

const defaultCgroupRoot = "/sys/fs/cgroup"

// detectedMode caches the answer: the mount layout does not change during the
// life of an xrunc process, and the check costs two statfs calls.
var detectedMode = sync.OnceValue(func() Mode { return detectMode(defaultCgroupRoot) })

// DetectMode reports how the host mounts cgroups.
func DetectMode() Mode { return detectedMode() }

func detectMode(root string) Mode {
	if isFSType(root, unix.CGROUP2_SUPER_MAGIC) {
		return Unified
	}
	if isFSType(root+"/unified", unix.CGROUP2_SUPER_MAGIC) {
		return Hybrid
	}
	return Legacy
}

func isFSType(path string, magic int64) bool {
	fsType, ok := statfsType(path)
	return ok && fsType == magic
}

// isCgroupFS tells whether dir lives on a cgroup v1 or v2 filesystem.
func isCgroupFS(dir string) bool {
	fsType, ok := statfsType(dir)
	return ok && (fsType == unix.CGROUP2_SUPER_MAGIC || fsType == unix.CGROUP_SUPER_MAGIC)
}

func statfsType(path string) (int64, bool) {
	var st unix.Statfs_t
	for {
		err := unix.Statfs(path, &st)
		if err == unix.EINTR {
			continue
		}
		return int64(st.Type), err == nil
	}
}
