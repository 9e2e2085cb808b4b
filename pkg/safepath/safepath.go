// Package safepath resolves and creates paths inside a directory tree that
// an attacker may control (a container image, a snapshot), so that no
// symlink or ".." ever leads outside it. Lookups use openat2(2) with
// RESOLVE_IN_ROOT: symlinks are followed as if the tree were "/", and
// magic links (/proc/self/fd/N and friends) are refused.
//
// Internal to xstack; no API stability.
package safepath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

const resolveInRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// Clean turns an untrusted path into a clean path relative to the root
// ("." for the root itself). ".." cannot climb above the root.
func Clean(path string) string {
	rel := strings.TrimPrefix(filepath.Clean("/"+path), "/")
	if rel == "" {
		return "."
	}
	return rel
}

// Open opens path inside root with flags (O_CLOEXEC is added).
func Open(root *os.File, path string, flags int) (*os.File, error) {
	rel := Clean(path)
	how := unix.OpenHow{Flags: uint64(flags) | unix.O_CLOEXEC, Resolve: resolveInRoot}
	fd, err := openat2(int(root.Fd()), rel, &how)
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: "/" + rel, Err: err}
	}
	return os.NewFile(uintptr(fd), "/"+rel), nil
}

// MkdirAll creates the missing directories of path inside root with mode
// and returns an O_PATH handle of the last one. It fails if a component
// exists and is not a directory, or is a dangling symlink.
func MkdirAll(root *os.File, path string, mode os.FileMode) (*os.File, error) {
	rel := Clean(path)
	if rel == "." {
		return Open(root, ".", unix.O_PATH|unix.O_DIRECTORY)
	}
	parts := strings.Split(rel, "/")
	dir, err := Open(root, ".", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		next, err := Open(root, prefix, unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			dir.Close()
			dir = next
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			dir.Close()
			return nil, err
		}
		// Create the component in the directory the previous prefix
		// resolved to. A name without "/" cannot leave that directory.
		if err := unix.Mkdirat(int(dir.Fd()), parts[i], uint32(mode.Perm())); err != nil && !errors.Is(err, unix.EEXIST) {
			dir.Close()
			return nil, &os.PathError{Op: "mkdirat", Path: "/" + prefix, Err: err}
		}
		next, err = Open(root, prefix, unix.O_PATH|unix.O_DIRECTORY)
		dir.Close()
		if err != nil {
			// EEXIST above and still ENOENT here: a dangling symlink.
			return nil, fmt.Errorf("create directory /%s: %w", prefix, err)
		}
		dir = next
	}
	return dir, nil
}

// openat2 retries on EAGAIN, which the kernel returns when a rename raced
// with RESOLVE_IN_ROOT resolution.
func openat2(dirfd int, path string, how *unix.OpenHow) (int, error) {
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, path, how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 128 {
			continue
		}
		return fd, err
	}
}
