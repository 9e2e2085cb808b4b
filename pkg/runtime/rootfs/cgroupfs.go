package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/mountinfo"
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
	if dir, ok := c.CgroupPaths[""]; ok && len(c.CgroupPaths) == 1 {
		bind := specs.Mount{Destination: m.Destination, Source: dir, Type: "bind", Options: append([]string{"rbind"}, m.Options...)}
		return bindMount(root, c, bind, parseOptions(bind.Options))
	}

	// Build the tmpfs writable, fill it, then apply ro at the end.
	ro := o.attrSet&unix.MOUNT_ATTR_RDONLY != 0 || o.flags&unix.MS_RDONLY != 0
	tmpfs := specs.Mount{Destination: m.Destination, Source: "tmpfs", Type: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "mode=755"}}
	if err := fsMount(root, c, tmpfs, parseOptions(tmpfs.Options)); err != nil {
		return err
	}
	mounts, err := mountinfo.Read()
	if err != nil {
		return err
	}
	bindOpts := []string{"rbind", "nosuid", "nodev", "noexec"}
	if ro {
		bindOpts = append(bindOpts, "ro")
	}
	hierarchies := v1Hierarchies(mounts, c.CgroupPaths)
	if dir, ok := c.CgroupPaths[""]; ok {
		// A hybrid host: the controller-less cgroup2 tree goes where
		// systemd puts it.
		hierarchies = append(hierarchies, hierarchy{mountPoint: "unified", dir: dir})
	}
	for _, hier := range hierarchies {
		name := filepath.Base(hier.mountPoint)
		dest := filepath.Join(m.Destination, name)
		bind := specs.Mount{Destination: dest, Source: hier.dir, Type: "bind", Options: bindOpts}
		if err := bindMount(root, c, bind, parseOptions(bindOpts)); err != nil {
			return err
		}
		for _, ctrl := range strings.Split(name, ",") {
			if ctrl == name {
				continue
			}
			if err := symlinkInRoot(root, filepath.Join(m.Destination, ctrl), name); err != nil {
				return err
			}
		}
	}
	if !ro {
		return nil
	}
	mnt, err := safepath.Open(root, m.Destination, unix.O_PATH)
	if err != nil {
		return fmt.Errorf("mount %s: reopen: %w", m.Destination, err)
	}
	defer mnt.Close()
	if err := unix.MountSetattr(int(mnt.Fd()), "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return fmt.Errorf("mount %s: make read-only: %w", m.Destination, err)
	}
	return nil
}

type hierarchy struct {
	mountPoint string // host mount point, e.g. /sys/fs/cgroup/cpu,cpuacct
	dir        string // the container's cgroup directory in it
}

// v1Hierarchies pairs each mounted v1 hierarchy with the container's
// directory in it, in a stable order.
func v1Hierarchies(mounts []mountinfo.Mount, paths map[string]string) []hierarchy {
	var out []hierarchy
	seen := map[string]bool{}
	for _, mi := range mounts {
		if mi.FSType != "cgroup" || seen[mi.MountPoint] {
			continue
		}
		for _, dir := range paths {
			if mountinfo.IsUnder(dir, mi.MountPoint) {
				seen[mi.MountPoint] = true
				out = append(out, hierarchy{mountPoint: mi.MountPoint, dir: dir})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].mountPoint < out[j].mountPoint })
	return out
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
