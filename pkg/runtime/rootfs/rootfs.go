// Package rootfs builds a container's filesystem view inside its new mount
// namespace: the spec's mounts, /dev, pivot_root, then masked and read-only
// paths. Every path that comes from the container image is resolved inside
// the rootfs through file descriptors (openat2 RESOLVE_IN_ROOT via
// filepath-securejoin), and mounts are attached to those descriptors with
// move_mount, so a symlink planted or swapped in the image can never send a
// mount, a device node or a write outside the rootfs.
//
// It runs in the container's init, single-purpose, before the container's
// program starts. Requires Linux 5.12+ (open_tree, move_mount,
// mount_setattr).
//
// Internal to xstack; no API stability.
package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/cgroups"
	rspec "github.com/xstack/xstack/pkg/runtime/spec"
	"github.com/xstack/xstack/pkg/safepath"
)

// Config describes the filesystem of one container.
type Config struct {
	// Rootfs is the absolute host path of the root filesystem.
	Rootfs      string
	Readonly    bool
	Propagation string // spec linux.rootfsPropagation
	Mounts      []specs.Mount
	Devices     []specs.LinuxDevice
	// UserNS is true when the init runs in a new user namespace: device
	// nodes cannot be created there and are bind-mounted from the host.
	UserNS bool
	// CgroupNS is true with a new cgroup namespace.
	CgroupNS bool
	// Cgroups are the hierarchies the container is in, for "cgroup"
	// mounts.
	Cgroups []cgroups.Hierarchy
	NoPivot bool
	// Cwd is the process's working directory, created if missing.
	Cwd string
	// BindTrees maps the index of a bind mount in Mounts to the fd of its
	// source's tree, detached (and id-mapped if asked) by the runtime,
	// which can reach sources that the init, in a user namespace, cannot.
	BindTrees map[int]int
}

// Prepare does everything before the root switch: it makes the host's
// mounts invisible to propagation, binds the rootfs onto itself, performs
// the spec mounts in order and populates /dev.
func Prepare(c *Config) error {
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if c.Propagation != "" {
		prop = propagationOptions[c.Propagation]
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("set propagation of / to %#x: %w", prop, err)
	}
	// pivot_root refuses a new root whose parent mount is shared; after
	// making everything a slave only a shared rootfsPropagation leaves one.
	if prop&unix.MS_SHARED != 0 {
		if err := makeParentPrivate(c.Rootfs); err != nil {
			return err
		}
	}
	if err := unix.Mount(c.Rootfs, c.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s onto itself: %w", c.Rootfs, err)
	}

	root, err := os.OpenFile(c.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer root.Close()

	bindDev := false
	for i, m := range c.Mounts {
		if err := mountOne(root, c, i, m); err != nil {
			return err
		}
		if filepath.Clean(m.Destination) == "/dev" && rspec.IsBind(m) {
			bindDev = true
		}
	}
	if !bindDev {
		if err := setupDev(root, c); err != nil {
			return err
		}
	}
	if c.Cwd != "" {
		d, err := safepath.MkdirAll(root, c.Cwd, 0o755)
		if err != nil {
			return fmt.Errorf("create cwd %s: %w", c.Cwd, err)
		}
		d.Close()
	}
	return nil
}

// makeParentPrivate makes the mount containing rootfs private if it is
// shared: pivot_root refuses a new root whose parent mount is shared.
func makeParentPrivate(rootfs string) error {
	mi, err := findMount(rootfs)
	if err != nil {
		return err
	}
	if !strings.Contains(mi.Optional, "shared:") {
		return nil
	}
	if err := unix.Mount("", mi.MountPoint, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", mi.MountPoint, err)
	}
	return nil
}

// SwitchRoot makes the rootfs the process's root: pivot_root, or MS_MOVE
// and chroot with NoPivot (for a rootfs on the initramfs, where pivot_root
// is impossible).
func SwitchRoot(c *Config) error {
	if c.NoPivot {
		return moveRoot(c.Rootfs)
	}
	return pivotRoot(c.Rootfs)
}

func pivotRoot(rootfs string) error {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldRoot)
	newRoot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open new root: %w", err)
	}
	defer unix.Close(newRoot)

	// pivot_root(".", ".") stacks the old root on top of the new one at
	// the same place, which avoids needing a directory in the image to put
	// the old root in.
	if err := unix.Fchdir(newRoot); err != nil {
		return fmt.Errorf("chdir to new root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("chdir to old root: %w", err)
	}
	// The old root is the host's tree: make sure its unmount does not
	// propagate back to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to /: %w", err)
	}
	return nil
}

func moveRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir to rootfs: %w", err)
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move rootfs to /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to /: %w", err)
	}
	return nil
}

// FinalizeRoot runs after the root switch (and after the console is
// bound): stdio on the container's /dev/null, then the read-only root.
func FinalizeRoot(c *Config) error {
	if err := reopenStdioDevNull(); err != nil {
		return err
	}
	if c.Readonly {
		if err := unix.MountSetattr(unix.AT_FDCWD, "/", 0, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return fmt.Errorf("make root read-only: %w", err)
		}
	}
	if c.Propagation == "shared" || c.Propagation == "rshared" {
		if err := unix.Mount("", "/", "", propagationOptions[c.Propagation], ""); err != nil {
			return fmt.Errorf("set propagation of the new root: %w", err)
		}
	}
	return nil
}

// ProtectPaths makes readonlyPaths read-only and hides maskedPaths. It runs
// last, after sysctls were written through /proc/sys.
func ProtectPaths(readonlyPaths, maskedPaths []string) error {
	for _, p := range readonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	for _, p := range maskedPaths {
		if err := maskPath(p); err != nil {
			return err
		}
	}
	return nil
}
