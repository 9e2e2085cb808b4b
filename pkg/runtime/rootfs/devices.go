package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/safepath"
)

func u32(v uint32) *uint32 { return &v }

func mode(m os.FileMode) *os.FileMode { return &m }

// DefaultDevices are created in every container whose /dev is not a bind
// mount of the host's, as the runtime-spec requires.
var DefaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: mode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, FileMode: mode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7, FileMode: mode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8, FileMode: mode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9, FileMode: mode(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0, FileMode: mode(0o666), UID: u32(0), GID: u32(0)},
}

var devSymlinks = [][2]string{
	{"/proc/self/fd", "/dev/fd"},
	{"/proc/self/fd/0", "/dev/stdin"},
	{"/proc/self/fd/1", "/dev/stdout"},
	{"/proc/self/fd/2", "/dev/stderr"},
	{"pts/ptmx", "/dev/ptmx"},
}

// setupDev creates the default and spec devices and the standard /dev
// symlinks. Each node is created relative to a handle of its parent
// directory resolved inside the rootfs, so a /dev that is itself a symlink
// in the image cannot redirect it (CVE-2026-41579).
func setupDev(root *os.File, c *Config) error {
	devices := append(append([]specs.LinuxDevice(nil), DefaultDevices...), c.Devices...)
	for _, d := range devices {
		if err := createDevice(root, c, d); err != nil {
			return err
		}
	}
	for _, l := range devSymlinks {
		if err := symlinkInRoot(root, l[1], l[0]); err != nil {
			return err
		}
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		if err := symlinkInRoot(root, "/dev/core", "/proc/kcore"); err != nil {
			return err
		}
	}
	return nil
}

func deviceType(t string) (uint32, error) {
	switch t {
	case "c", "u":
		return unix.S_IFCHR, nil
	case "b":
		return unix.S_IFBLK, nil
	case "p":
		return unix.S_IFIFO, nil
	}
	return 0, fmt.Errorf("unknown device type %q", t)
}

func createDevice(root *os.File, c *Config, d specs.LinuxDevice) error {
	rel := safepath.Clean(d.Path)
	parent, err := safepath.MkdirAll(root, filepath.Dir(rel), 0o755)
	if err != nil {
		return fmt.Errorf("device %s: create parent: %w", d.Path, err)
	}
	defer parent.Close()
	name := filepath.Base(rel)
	dirfd := int(parent.Fd())

	if c.UserNS {
		return bindDevice(dirfd, d, name)
	}
	typ, err := deviceType(d.Type)
	if err != nil {
		return fmt.Errorf("device %s: %w", d.Path, err)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	// A file already at the path (from the image) is replaced: it could be
	// a symlink aimed at a host file.
	if err := unix.Unlinkat(dirfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("device %s: remove existing entry: %w", d.Path, err)
	}
	if err := unix.Mknodat(dirfd, name, typ|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return fmt.Errorf("device %s: mknod: %w", d.Path, err)
	}
	// mknod applies the umask; set the exact mode and owner without
	// following a symlink.
	if err := unix.Fchmodat(dirfd, name, perm, 0); err != nil {
		return fmt.Errorf("device %s: chmod: %w", d.Path, err)
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(dirfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("device %s: chown: %w", d.Path, err)
	}
	return nil
}

// bindDevice bind-mounts the host's node over an empty file: a user
// namespace may not create device nodes.
func bindDevice(dirfd int, d specs.LinuxDevice, name string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_CREAT|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o000)
	if err != nil {
		return fmt.Errorf("device %s: create mount point: %w", d.Path, err)
	}
	defer unix.Close(fd)
	tree, err := unix.OpenTree(unix.AT_FDCWD, d.Path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("device %s: clone host node: %w", d.Path, err)
	}
	defer unix.Close(tree)
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC}); err != nil {
		return fmt.Errorf("device %s: set attributes: %w", d.Path, err)
	}
	if err := unix.MoveMount(tree, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("device %s: bind host node: %w", d.Path, err)
	}
	return nil
}
