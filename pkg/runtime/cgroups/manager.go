package cgroups

import (
	"errors"
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrControllerMissing is wrapped by errors about a resource whose cgroup
// controller is not mounted (v1) or not enabled for the container (v2).
var ErrControllerMissing = errors.New("cgroup controller missing")

// Manager manages the cgroup(s) of one container. Its methods are safe to
// call from several goroutines: it keeps no state besides its paths.
type Manager interface {
	// Apply creates the container's cgroup directories (v1: one in every
	// mounted hierarchy, name=systemd included) and moves pid into them. A
	// negative pid only creates the directories. Existing directories cost
	// one mkdir each, so Apply may be repeated.
	Apply(pid int) error
	// Enter moves pid (for example an exec'd process) into the existing
	// cgroup(s), without creating anything.
	Enter(pid int) error
	// Set writes the resource limits; nil writes nothing.
	Set(r *specs.LinuxResources) error
	// Pids lists every process of the cgroup and the cgroups below it, as
	// pids of the caller's pid namespace.
	Pids() ([]int, error)
	// Freeze stops every process and returns once all of them are frozen.
	Freeze() error
	// Thaw resumes the processes stopped by Freeze.
	Thaw() error
	// Frozen reports whether the cgroup is frozen. Without a freezer, or
	// once the cgroup is gone, it cannot be, and reports false.
	Frozen() (bool, error)
	// Kill sends SIGKILL to every process in the cgroup, using cgroup.kill
	// when the kernel has it. It does not wait for them to exit. A cgroup
	// that is gone has nothing left to kill.
	Kill() error
	// Destroy removes the container's cgroup directories (and cgroups created
	// below them), never their parents. Directories already gone are fine.
	Destroy() error
	// Paths maps each controller to the container's directory ("name=systemd"
	// for the named hierarchy, "" for a cgroup v2 directory), in the form
	// runc stores in state.json. The map is a copy.
	Paths() map[string]string
	// Hierarchies lists the mounted hierarchies the container is in, with
	// their mount points, so the container's /sys/fs/cgroup can be built
	// without reading mountinfo again. Only a manager made by New knows
	// them; one made by Load returns nil.
	Hierarchies() []Hierarchy
	// Stats reads usage counters and limits.
	Stats() (*Stats, error)
	// OOMKillCount returns how many processes the OOM killer killed in the
	// cgroup.
	OOMKillCount() (uint64, error)
}

// Hierarchy is one mounted cgroup hierarchy and the container's directory
// in it.
type Hierarchy struct {
	MountPoint string `json:"mountPoint"`
	Dir        string `json:"dir"`
	Unified    bool   `json:"unified,omitempty"` // a cgroup2 mount
}

// New resolves the container's cgroup from the OCI cgroupsPath and the
// container id, with the semantics of runc's cgroupfs driver:
//   - an absolute path ("/default/c1") is taken below each hierarchy's root,
//   - a relative path ("a/b") below the caller's own cgroup in each hierarchy,
//   - an empty path means the relative path "<id>", as runc 1.1 does.
//
// It reads the mount table on v1 hosts and /proc/self/cgroup for relative
// paths, but creates nothing: see Manager.Apply.
func New(cgroupsPath, id string) (Manager, error) {
	return hostLayout{
		mode:           DetectMode(),
		unifiedRoot:    defaultCgroupRoot,
		mountinfoPath:  "/proc/self/mountinfo",
		procCgroupPath: "/proc/self/cgroup",
		checkFS:        true,
	}.newManager(cgroupsPath, id)
}

// ForPid returns a manager of the cgroups process pid is in, as
// /proc/PID/cgroup lists them: for a process started by someone else, such
// as a container init a shim watches.
func ForPid(pid int) (Manager, error) {
	return hostLayout{
		mode:           DetectMode(),
		unifiedRoot:    defaultCgroupRoot,
		mountinfoPath:  "/proc/self/mountinfo",
		procCgroupPath: "/proc/" + strconv.Itoa(pid) + "/cgroup",
		checkFS:        true,
	}.ownManager()
}

// ownManager is the manager of the cgroups in procCgroupPath themselves.
func (h hostLayout) ownManager() (Manager, error) {
	own, err := h.ownCgroups()
	if err != nil {
		return nil, err
	}
	if h.mode == Unified {
		mnt := cgroupMount{mountpoint: h.unifiedRoot, root: "/", unified: true}
		dir, err := hierarchyDir(mnt, own[unifiedKey], "", true)
		if err != nil {
			return nil, err
		}
		return &v2Manager{dir: dir, checkFS: h.checkFS}, nil
	}
	mountinfo, err := readPath(h.mountinfoPath)
	if err != nil {
		return nil, err
	}
	mounts, err := parseMountinfo(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", h.mountinfoPath, err)
	}
	paths, hs, err := resolveV1Paths(mounts, own, "", true, h.mode == Hybrid)
	if err != nil {
		return nil, err
	}
	m := newV1Manager(paths, h.checkFS)
	m.hierarchies = hs
	return m, nil
}

// Load rebuilds the manager of a container from the map Paths returned
// earlier, without touching the filesystem. A map with only the "" key is a
// cgroup v2 container; anything else is v1 (with "" as the hybrid host's
// cgroup2 directory).
func Load(paths map[string]string) Manager {
	if dir, ok := paths[unifiedKey]; ok && len(paths) == 1 {
		return &v2Manager{dir: dir, checkFS: true}
	}
	return newV1Manager(paths, true)
}

// hostLayout says where to find the cgroup mounts and the caller's own
// cgroups. Production code uses the real /proc and /sys; tests point it at a
// fake tree in a temporary directory.
type hostLayout struct {
	mode Mode
	// unifiedRoot is the cgroup2 mountpoint of a Unified host. v2 hosts are
	// not scanned: every supported distribution mounts the tree there.
	unifiedRoot    string
	mountinfoPath  string
	procCgroupPath string
	// checkFS refuses to create directories outside cgroupfs; off only for
	// tests on a plain temporary directory.
	checkFS bool
}

func (h hostLayout) newManager(cgroupsPath, id string) (Manager, error) {
	cgPath, relative, err := containerCgroupPath(cgroupsPath, id)
	if err != nil {
		return nil, err
	}
	var own map[string]string
	if relative {
		if own, err = h.ownCgroups(); err != nil {
			return nil, err
		}
	}
	if h.mode == Unified {
		mnt := cgroupMount{mountpoint: h.unifiedRoot, root: "/", unified: true}
		dir, err := hierarchyDir(mnt, own[unifiedKey], cgPath, relative)
		if err != nil {
			return nil, err
		}
		return &v2Manager{dir: dir, checkFS: h.checkFS, hierarchies: []Hierarchy{{MountPoint: h.unifiedRoot, Dir: dir, Unified: true}}}, nil
	}
	mountinfo, err := readPath(h.mountinfoPath)
	if err != nil {
		return nil, err
	}
	mounts, err := parseMountinfo(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", h.mountinfoPath, err)
	}
	paths, hs, err := resolveV1Paths(mounts, own, cgPath, relative, h.mode == Hybrid)
	if err != nil {
		return nil, err
	}
	m := newV1Manager(paths, h.checkFS)
	m.hierarchies = hs
	return m, nil
}

func (h hostLayout) ownCgroups() (map[string]string, error) {
	content, err := readPath(h.procCgroupPath)
	if err != nil {
		return nil, err
	}
	return parseProcCgroup(content)
}
