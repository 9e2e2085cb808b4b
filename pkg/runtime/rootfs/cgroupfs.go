package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/safepath"
)

// cgroupMount gives the container a /sys/fs/cgroup that shows its own
// cgroup as the root of each hierarchy. The container's cgroup directories
// are bind-mounted, so the view is the same with or without a cgroup
// namespace and no other cgroup on the host is reachable.
//
// cgroup v2: one bind of the container's directory. cgroup v1: a tmpfs
// with one bind per hierarchy, named like the host's mount point, plus
// symlinks for co-mounted controllers ("cpu" -> "cpu,cpuacct"), and on a
// hybrid host the cgroup2 tree at "unified".
func cgroupMount(root *os.File, c *Config, m specs.Mount, o mountOptions) error {
	hs := c.Cgroups
	if len(hs) == 1 && hs[0].Unified {
		bind := specs.Mount{Destination: m.Destination, Source: hs[0].Dir, Type: "bind", Options: append([]string{"rbind"}, m.Options...)}
		return bindMount(root, c, -1, bind, parseOptions(bind.Options))
	}

	// Build the tmpfs writable, fill it, then apply ro at the end.
	ro := o.attrSet&unix.MOUNT_ATTR_RDONLY != 0 || o.flags&unix.MS_RDONLY != 0
	tmpfs := specs.Mount{Destination: m.Destination, Source: "tmpfs", Type: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "mode=755"}}
	if err := fsMount(root, c, tmpfs, parseOptions(tmpfs.Options)); err != nil {
		return err
	}
	// The tmpfs is ours and empty: names in it need no in-root resolution.
	dir, err := safepath.Open(root, m.Destination, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("mount %s: reopen: %w", m.Destination, err)
	}
	defer dir.Close()
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if ro {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	for _, h := range hs {
		name := filepath.Base(h.MountPoint)
		if h.Unified {
			name = "unified"
		}
		if err := bindHierarchy(int(dir.Fd()), name, h.Dir, attr); err != nil {
			return fmt.Errorf("mount %s/%s: %w", m.Destination, name, err)
		}
		for _, ctrl := range strings.Split(name, ",") {
			if ctrl == name {
				continue
			}
			if err := unix.Symlinkat(name, int(dir.Fd()), ctrl); err != nil && err != unix.EEXIST {
				return fmt.Errorf("symlink %s/%s: %w", m.Destination, ctrl, err)
			}
		}
	}
	if !ro {
		return nil
	}
	if err := unix.MountSetattr(int(dir.Fd()), "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return fmt.Errorf("mount %s: make read-only: %w", m.Destination, err)
	}
	return nil
}

// bindHierarchy binds the container's directory src of one hierarchy at
// parent/name.
func bindHierarchy(parent int, name, src string, attr *unix.MountAttr) error {
	if err := unix.Mkdirat(parent, name, 0o755); err != nil && err != unix.EEXIST {
		return err
	}
	target, err := unix.Openat(parent, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("clone %s: %w", src, err)
	}
	defer unix.Close(tree)
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("set attributes: %w", err)
	}
	return unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

// symlinkInRoot creates link -> target inside the rootfs; an existing entry
// is left alone.
func symlinkInRoot(root *os.File, link, target string) error {
	rel := safepath.Clean(link)
	parent, err := safepath.MkdirAll(root, filepath.Dir(rel), 0o755)
	if err != nil {
		return fmt.Errorf("symlink %s: %w", link, err)
	}
	defer parent.Close()
	if err := unix.Symlinkat(target, int(parent.Fd()), filepath.Base(rel)); err != nil && err != unix.EEXIST {
		return fmt.Errorf("symlink %s -> %s: %w", link, target, err)
	}
	return nil
}
