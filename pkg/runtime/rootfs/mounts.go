package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/mountinfo"
	rspec "github.com/xstack/xstack/pkg/runtime/spec"
	"github.com/xstack/xstack/pkg/safepath"
)

func findMount(path string) (mountinfo.Mount, error) {
	ms, err := mountinfo.Read()
	if err != nil {
		return mountinfo.Mount{}, err
	}
	m, ok := mountinfo.Containing(ms, filepath.Clean(path))
	if !ok {
		return m, fmt.Errorf("no mount contains %s", path)
	}
	return m, nil
}

// procMountAllowed lists files under /proc a bind mount may cover, as lxcfs
// does; any other destination under /proc could redirect the runtime's own
// writes to procfs (CVE-2019-16884, CVE-2025-52881).
var procMountAllowed = map[string]bool{
	"/proc/cpuinfo": true, "/proc/diskstats": true, "/proc/meminfo": true,
	"/proc/stat": true, "/proc/swaps": true, "/proc/uptime": true,
	"/proc/loadavg": true, "/proc/slabinfo": true, "/proc/net/dev": true,
	"/proc/sys/kernel/ns_last_pid": true,
}

func checkProcDestination(m specs.Mount) error {
	dest := filepath.Clean(m.Destination)
	switch {
	case dest == "/proc":
		if m.Type != "proc" {
			return fmt.Errorf("mount %s: only a proc filesystem may be mounted at /proc, not %q", dest, m.Type)
		}
	case strings.HasPrefix(dest, "/proc/"):
		if !procMountAllowed[dest] || !rspec.IsBind(m) {
			return fmt.Errorf("mount %s: destinations under /proc are not allowed (except bind mounts over %s)", dest, "a few lxcfs-style files")
		}
	}
	return nil
}

func mountOne(root *os.File, c *Config, index int, m specs.Mount) error {
	if err := checkProcDestination(m); err != nil {
		return err
	}
	o := parseOptions(m.Options)
	if m.Type == "bind" {
		o.bind = true
	}
	var err error
	switch {
	case o.bind:
		err = bindMount(root, c, index, m, o)
	case m.Type == "cgroup" || m.Type == "cgroup2":
		err = cgroupMount(root, c, m, o)
	default:
		err = fsMount(root, c, m, o)
	}
	if err != nil {
		return err
	}
	return nil
}

// openTarget returns an O_PATH handle of dest inside the rootfs, creating
// it (a directory, or an empty file when dir is false) if it is missing.
// Symlinks in dest are resolved as if the rootfs were "/", so a symlink in
// the image that points to "/etc" or "../../.." stays inside the rootfs
// (CVE-2019-18837, CVE-2021-30465).
func openTarget(root *os.File, rootfs, dest string, dir bool) (*os.File, error) {
	h, err := makeTarget(root, safepath.Clean(dest), dir)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		if err != nil {
			return nil, fmt.Errorf("create mount point %s: %w", dest, err)
		}
		return h, nil
	}
	// A dangling symlink on the way (e.g. /etc/resolv.conf -> ../run/x):
	// SecureJoin resolves it to where it would point inside the rootfs, so
	// the target is created there. The path it returns is only a hint:
	// makeTarget resolves it again through the root handle.
	joined, jerr := securejoin.SecureJoin(rootfs, dest)
	if jerr != nil {
		return nil, fmt.Errorf("resolve %s in rootfs: %w", dest, jerr)
	}
	rel, rerr := filepath.Rel(rootfs, joined)
	if rerr != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil, fmt.Errorf("resolve %s in rootfs: escapes the rootfs", dest)
	}
	if h, err = makeTarget(root, rel, dir); err != nil {
		return nil, fmt.Errorf("create mount point %s: %w", dest, err)
	}
	return h, nil
}

// makeTarget opens rel in root, creating it (and its parents) if missing.
func makeTarget(root *os.File, rel string, dir bool) (*os.File, error) {
	if dir {
		return safepath.MkdirAll(root, rel, 0o755)
	}
	if h, err := safepath.Open(root, rel, unix.O_PATH); err == nil {
		return h, nil
	}
	parent, err := safepath.MkdirAll(root, filepath.Dir(rel), 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), filepath.Base(rel), unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, err
	}
	if err == nil {
		unix.Close(fd)
	}
	return safepath.Open(root, rel, unix.O_PATH)
}

// openStrictDir opens dest, which must be a real directory reached without
// any symlink (for /proc and /sys: CVE-2019-19921, CVE-2023-27561).
func openStrictDir(root *os.File, dest string) (*os.File, error) {
	rel := safepath.Clean(dest)
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | unix.O_DIRECTORY, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH}
	fd, err := unix.Openat2(int(root.Fd()), rel, &how)
	if errors.Is(err, unix.ENOENT) {
		var h *os.File
		if h, err = safepath.MkdirAll(root, rel, 0o755); err != nil {
			return nil, fmt.Errorf("create mount point %s: %w", dest, err)
		}
		h.Close()
		fd, err = unix.Openat2(int(root.Fd()), rel, &how)
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EXDEV) {
			return nil, fmt.Errorf("mount destination %s is not an ordinary directory in the rootfs", dest)
		}
		return nil, fmt.Errorf("open mount point %s: %w", dest, err)
	}
	return os.NewFile(uintptr(fd), dest), nil
}

// bindMount binds m.Source (index is m's place in c.Mounts, -1 for a mount
// that is not the spec's).
func bindMount(root *os.File, c *Config, index int, m specs.Mount, o mountOptions) error {
	tree, given := c.BindTrees[index]
	var st unix.Stat_t
	switch {
	case given:
		if err := unix.Fstat(tree, &st); err != nil {
			return fmt.Errorf("bind mount %s: source tree: %w", m.Destination, err)
		}
	case IsIDMapped(m):
		return fmt.Errorf("bind mount %s: id-mapped, but the runtime sent no id-mapped tree", m.Destination)
	default:
		if err := unix.Stat(m.Source, &st); err != nil {
			return fmt.Errorf("bind mount %s: source: stat %s: %w", m.Destination, m.Source, err)
		}
		var err error
		if tree, err = OpenBindTree(m.Source, o.recursive); err != nil {
			return fmt.Errorf("bind mount %s on %s: clone source: %w", m.Source, m.Destination, err)
		}
	}
	defer unix.Close(tree)
	target, err := openTarget(root, c.Rootfs, m.Destination, st.Mode&unix.S_IFMT == unix.S_IFDIR)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := setBindAttrs(tree, m, o); err != nil {
		return err
	}
	if err := unix.MoveMount(tree, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("bind mount %s on %s: attach: %w", m.Source, m.Destination, err)
	}
	// The tree fd now names the attached mount; propagation can only be
	// changed once it is attached.
	return setPropagation(tree, m.Destination, o.propagation)
}

// OpenBindTree returns a detached copy of the mount at source (with the
// mounts below it when recursive), as an fd to move_mount into place.
func OpenBindTree(source string, recursive bool) (int, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	return unix.OpenTree(unix.AT_FDCWD, source, flags)
}

// setBindAttrs applies ro/nosuid/... to a detached bind tree: non-recursive
// words to its top mount only (the semantics of a mount(2) remount), "r"
// words to all of it. Attributes that are locked on the source (a mount
// that came from a more privileged user namespace) are left as they are
// because mount_setattr only touches what is asked for.
func setBindAttrs(tree int, m specs.Mount, o mountOptions) error {
	if o.rAttrSet != 0 || o.rAttrClr != 0 {
		attr := &unix.MountAttr{Attr_set: o.rAttrSet, Attr_clr: o.rAttrClr}
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
			return fmt.Errorf("bind mount %s: set recursive attributes: %w", m.Destination, err)
		}
	}
	if o.attrSet != 0 || o.attrClr != 0 {
		attr := &unix.MountAttr{Attr_set: o.attrSet, Attr_clr: o.attrClr}
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
			return fmt.Errorf("bind mount %s: set attributes: %w", m.Destination, err)
		}
	}
	return nil
}

// IsIDMapped reports whether m asks for an id-mapped mount: mappings of
// its own, or the "idmap"/"ridmap" option (then the container's mappings).
func IsIDMapped(m specs.Mount) bool {
	if len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
		return true
	}
	for _, o := range m.Options {
		if o == "idmap" || o == "ridmap" {
			return true
		}
	}
	return false
}

func setPropagation(mnt int, dest string, props []uintptr) error {
	for _, p := range props {
		recursive := p&unix.MS_REC != 0
		attr := &unix.MountAttr{Propagation: uint64(p &^ unix.MS_REC)}
		flags := uint(unix.AT_EMPTY_PATH)
		if recursive {
			flags |= unix.AT_RECURSIVE
		}
		if err := unix.MountSetattr(mnt, "", flags, attr); err != nil {
			return fmt.Errorf("mount %s: set propagation: %w", dest, err)
		}
	}
	return nil
}

// fsMount mounts a new filesystem instance (tmpfs, proc, sysfs, devpts,
// mqueue, overlay, ...) with mount(2), which passes the spec's data options
// through untouched, onto the target's /proc/self/fd path.
func fsMount(root *os.File, c *Config, m specs.Mount, o mountOptions) error {
	dest := filepath.Clean(m.Destination)
	var target *os.File
	var err error
	if m.Type == "proc" || m.Type == "sysfs" || dest == "/proc" || dest == "/sys" {
		target, err = openStrictDir(root, dest)
	} else {
		target, err = openTarget(root, c.Rootfs, dest, true)
	}
	if err != nil {
		return err
	}
	defer target.Close()

	source := m.Source
	if source == "" {
		source = m.Type
	}
	// What the image has at the mount point, read through an fd opened
	// before the tmpfs hides it.
	under := -1
	if o.copyUp {
		if m.Type != "tmpfs" {
			return fmt.Errorf("mount %s: tmpcopyup applies to tmpfs only, not %q", dest, m.Type)
		}
		if under, err = unix.Openat(int(target.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("mount %s: tmpcopyup: open the mount point: %w", dest, err)
		}
		defer unix.Close(under)
	}
	flags := o.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	// A read-only tmpfs to copy up into is made read-only after the copy.
	readOnlyAfterCopy := under >= 0 && flags&unix.MS_RDONLY != 0
	if readOnlyAfterCopy {
		flags &^= unix.MS_RDONLY
	}
	procPath := "/proc/self/fd/" + strconv.Itoa(int(target.Fd()))
	if err := unix.Mount(source, procPath, m.Type, flags, o.dataString()); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("mount %s on %s: unknown filesystem type %q", source, dest, m.Type)
		}
		return fmt.Errorf("mount %s (type %s, options %q) on %s: %w", source, m.Type, strings.Join(m.Options, ","), dest, err)
	}
	if under >= 0 {
		if err := copyUp(root, dest, under, readOnlyAfterCopy); err != nil {
			return err
		}
	}
	if len(o.propagation) == 0 {
		return nil
	}
	mnt, err := safepath.Open(root, dest, unix.O_PATH)
	if err != nil {
		return fmt.Errorf("mount %s: reopen: %w", dest, err)
	}
	defer mnt.Close()
	return setPropagation(int(mnt.Fd()), dest, o.propagation)
}

// copyUp copies the directory under (what dest held before the tmpfs) into
// the tmpfs now mounted at dest, then makes that mount read-only if asked.
func copyUp(root *os.File, dest string, under int, readOnly bool) error {
	fresh, err := safepath.Open(root, dest, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("mount %s: tmpcopyup: open the tmpfs: %w", dest, err)
	}
	defer fresh.Close()
	if err := copyTree(under, int(fresh.Fd())); err != nil {
		return fmt.Errorf("mount %s: tmpcopyup: %w", dest, err)
	}
	if readOnly {
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(int(fresh.Fd()), "", unix.AT_EMPTY_PATH, attr); err != nil {
			return fmt.Errorf("mount %s: read-only after tmpcopyup: %w", dest, err)
		}
	}
	return nil
}
