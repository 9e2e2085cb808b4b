package rootfs

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// These run after the root switch, so "/" is the container's root and
// RESOLVE_IN_ROOT keeps every lookup inside it.

func openInNewRoot(path string, flags uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	return unix.Openat2(unix.AT_FDCWD, path, &how)
}

// openDevNull opens the container's /dev/null and checks that it is the
// real null device: masked paths are covered with it, and an image or a
// racing container could have replaced it with a symlink to a procfs file
// (CVE-2025-31133).
func openDevNull(flags uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_IN_ROOT}
	fd, err := unix.Openat2(unix.AT_FDCWD, "/dev/null", &how)
	if err != nil {
		return -1, fmt.Errorf("open /dev/null: %w", err)
	}
	if err := verifyDevNull(fd); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func verifyDevNull(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat /dev/null: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		return errors.New("/dev/null in the container is not the null device (1:3)")
	}
	return nil
}

func maskPath(path string) error {
	fd, err := openInNewRoot(path, unix.O_PATH|unix.O_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("mask %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return mountEmptyTmpfs(fd, path)
	}
	null, err := openDevNull(unix.O_PATH)
	if err != nil {
		return fmt.Errorf("mask %s: %w", path, err)
	}
	defer unix.Close(null)
	return bindFd(null, fd, path, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
}

// mountEmptyTmpfs covers a directory with an empty read-only tmpfs.
func mountEmptyTmpfs(target int, path string) error {
	fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("mask %s: fsopen tmpfs: %w", path, err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "size", "0"); err != nil {
		return fmt.Errorf("mask %s: configure tmpfs: %w", path, err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("mask %s: create tmpfs: %w", path, err)
	}
	mnt, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return fmt.Errorf("mask %s: fsmount: %w", path, err)
	}
	defer unix.Close(mnt)
	if err := unix.MoveMount(mnt, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("mask %s: attach tmpfs: %w", path, err)
	}
	return nil
}

// bindFd bind-mounts the file or directory src onto target with attrs.
func bindFd(src, target int, path string, attrs uint64) error {
	tree, err := unix.OpenTree(src, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("bind onto %s: clone: %w", path, err)
	}
	defer unix.Close(tree)
	if attrs != 0 {
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: attrs}); err != nil {
			return fmt.Errorf("bind onto %s: set attributes: %w", path, err)
		}
	}
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("bind onto %s: attach: %w", path, err)
	}
	return nil
}

// readonlyPath re-mounts path (and everything below it) read-only.
func readonlyPath(path string) error {
	fd, err := openInNewRoot(path, unix.O_PATH|unix.O_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("make %s read-only: %w", path, err)
	}
	defer unix.Close(fd)
	tree, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("make %s read-only: clone: %w", path, err)
	}
	defer unix.Close(tree)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("make %s read-only: %w", path, err)
	}
	if err := unix.MoveMount(tree, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("make %s read-only: attach: %w", path, err)
	}
	return nil
}

// BindConsole bind-mounts the pty slave (an open fd, never a path that the
// image could have replaced: CVE-2025-52565) onto /dev/console.
func BindConsole(slave *os.File) error {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | unix.O_DIRECTORY, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_IN_ROOT}
	dev, err := unix.Openat2(unix.AT_FDCWD, "/dev", &how)
	if err != nil {
		return fmt.Errorf("open /dev for the console: %w", err)
	}
	defer unix.Close(dev)
	// Replace whatever the image has at /dev/console by an empty file.
	if err := unix.Unlinkat(dev, "console", 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove /dev/console: %w", err)
	}
	fd, err := unix.Openat(dev, "console", unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	defer unix.Close(fd)
	return bindFd(int(slave.Fd()), fd, "/dev/console", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
}

// reopenStdioDevNull replaces stdio fds that point at the host's /dev/null
// by the container's /dev/null, so no fd of the host's /dev mount is left
// in the container.
func reopenStdioDevNull() error {
	var nullSt unix.Stat_t
	null := -1
	defer func() {
		if null >= 0 {
			unix.Close(null)
		}
	}()
	for fd := 0; fd < 3; fd++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
			continue
		}
		if null < 0 {
			var err error
			if null, err = openDevNull(unix.O_RDWR); err != nil {
				// No usable /dev/null in the container: keep the host's.
				return nil
			}
			if err := unix.Fstat(null, &nullSt); err != nil {
				return fmt.Errorf("stat /dev/null: %w", err)
			}
		}
		if st.Dev == nullSt.Dev && st.Ino == nullSt.Ino {
			continue // already the container's
		}
		if err := unix.Dup3(null, fd, 0); err != nil {
			return fmt.Errorf("reopen fd %d on /dev/null: %w", fd, err)
		}
	}
	return nil
}
