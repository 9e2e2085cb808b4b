package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/safepath"
)

const (
	whiteoutPrefix = ".wh."
	// whiteoutMeta prefixes AUFS bookkeeping entries (".wh..wh.plnk", ...);
	// the opaque marker is the only one that means something to overlayfs.
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
	paxXattr       = "SCHILY.xattr."
)

// Apply unpacks the layer tar r into dir, the upper dir of an overlay
// snapshot, and returns the sha256 digest of the uncompressed stream (its
// diffID). The whole stream is read, including what follows the
// end-of-archive marker, so the digest covers every byte of r.
//
// OCI whiteouts become overlayfs ones: ".wh.NAME" becomes a 0/0 character
// device NAME and ".wh..wh..opq" sets trusted.overlay.opaque="y" on its
// directory. Regular files, directories, symlinks, hardlinks and fifos are
// created with their mode, owner, mtime and allowed xattrs (user.*,
// trusted.* except trusted.overlay.*, security.capability). Character and
// block devices are skipped with a warning. Nothing is ever written outside
// dir: see the package documentation.
func Apply(ctx context.Context, dir string, r io.Reader) (digest.Digest, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("apply layer: open %s: %w", dir, err)
	}
	root := os.NewFile(uintptr(fd), dir)
	defer root.Close()

	dg := digest.Canonical.Digester()
	stream := io.TeeReader(r, dg.Hash())
	a := &applier{ctx: ctx, root: root}
	tr := tar.NewReader(stream)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("apply layer: read tar: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return "", fmt.Errorf("apply layer: entry %q: %w", hdr.Name, err)
		}
	}
	if err := a.finish(); err != nil {
		return "", fmt.Errorf("apply layer: %w", err)
	}
	// The diffID covers the padding after the end-of-archive blocks too.
	if _, err := io.Copy(io.Discard, stream); err != nil {
		return "", fmt.Errorf("apply layer: read tar trailer: %w", err)
	}
	return dg.Digest(), nil
}

// applier holds the state of one Apply.
type applier struct {
	ctx  context.Context
	root *os.File // O_PATH handle of the target directory
	// dirs get their mtime at the end: adding children changes it.
	dirs []dirTime
}

type dirTime struct {
	rel   string // cleaned path relative to root
	mtime time.Time
	atime time.Time
}

func (a *applier) entry(hdr *tar.Header, content io.Reader) error {
	name := safepath.Clean(hdr.Name)
	if name == "." {
		// The layer root is the snapshot's upper dir: its attributes
		// belong to the snapshotter, not to the image.
		return nil
	}
	parentRel, base := path.Dir(name), path.Base(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(parentRel, base)
	}
	switch hdr.Typeflag {
	case tar.TypeChar, tar.TypeBlock:
		slog.WarnContext(a.ctx, "layer: skipping device node (images must not bring device nodes)",
			"entry", hdr.Name, "major", hdr.Devmajor, "minor", hdr.Devminor)
		return nil
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, '\x00', tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
	default:
		slog.WarnContext(a.ctx, "layer: skipping entry of unsupported type", "entry", hdr.Name, "type", string(hdr.Typeflag))
		return nil
	}
	if hdr.Uid < 0 || hdr.Gid < 0 {
		return fmt.Errorf("invalid owner %d:%d", hdr.Uid, hdr.Gid)
	}

	parent, err := safepath.MkdirAll(a.root, parentRel, 0o755)
	if err != nil {
		return fmt.Errorf("parent directory: %w", err)
	}
	defer parent.Close()
	pfd := int(parent.Fd())

	if hdr.Typeflag == tar.TypeLink {
		return a.hardlink(pfd, base, hdr.Linkname)
	}

	// Whatever exists at the name is replaced (a directory only by a
	// non-directory): never opened, never followed.
	var st unix.Stat_t
	exists := false
	switch err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case err == nil:
		if hdr.Typeflag == tar.TypeDir && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			exists = true
		} else if err := removeAllAt(pfd, base); err != nil {
			return fmt.Errorf("replace existing entry: %w", err)
		}
	case errors.Is(err, unix.ENOENT):
	default:
		return fmt.Errorf("stat existing entry: %w", err)
	}

	var f *os.File
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !exists {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return fmt.Errorf("mkdir: %w", err)
			}
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		return a.symlinkAttrs(pfd, base, hdr)
	case tar.TypeFifo:
		if err := unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0); err != nil {
			return fmt.Errorf("mkfifo: %w", err)
		}
	default: // regular file
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		f = os.NewFile(uintptr(fd), name)
		if _, err := io.Copy(f, content); err != nil {
			f.Close()
			return fmt.Errorf("write: %w", err)
		}
	}
	if err := a.attrs(pfd, base, f, hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirs = append(a.dirs, dirTime{rel: name, mtime: hdr.ModTime, atime: hdr.AccessTime})
		return nil
	}
	return setTimes(pfd, base, hdr.ModTime, hdr.AccessTime)
}

// attrs sets owner, mode and xattrs on the entry base of pfd that was just
// created; f, if not nil, is an open handle of it and is closed.
func (a *applier) attrs(pfd int, base string, f *os.File, hdr *tar.Header) error {
	if f == nil {
		// O_NONBLOCK: opening a fifo must not wait for a writer.
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open to set attributes: %w", err)
		}
		f = os.NewFile(uintptr(fd), base)
	}
	defer f.Close()
	fd := int(f.Fd())
	// chown clears set-id bits and file capabilities: it goes first.
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	for _, x := range xattrs(a.ctx, hdr) {
		err := unix.Fsetxattr(fd, x.name, []byte(x.value), 0)
		if errors.Is(err, unix.EOPNOTSUPP) {
			slog.WarnContext(a.ctx, "layer: xattr not supported by the snapshot filesystem, skipped",
				"entry", hdr.Name, "xattr", x.name)
			continue
		}
		if err != nil {
			return fmt.Errorf("set xattr %s: %w", x.name, err)
		}
	}
	return nil
}

func (a *applier) symlinkAttrs(pfd int, base string, hdr *tar.Header) error {
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("lchown: %w", err)
	}
	if x := xattrs(a.ctx, hdr); len(x) > 0 {
		// There is no fd-relative lsetxattr before Linux 6.13; symlink
		// xattrs carry nothing an image needs.
		slog.WarnContext(a.ctx, "layer: xattrs on symlink skipped", "entry", hdr.Name)
	}
	return setTimes(pfd, base, hdr.ModTime, hdr.AccessTime)
}

// hardlink links base in pfd to target, a path inside the layer. A target
// that climbs out of the root is refused; one that does not exist in dir
// (it lives in a lower layer, or outside) fails.
func (a *applier) hardlink(pfd int, base, target string) error {
	if escapes(target) {
		return fmt.Errorf("hardlink target %q is outside the layer", target)
	}
	rel := safepath.Clean(target)
	if rel == "." {
		return fmt.Errorf("hardlink target %q is the layer root", target)
	}
	tparent, err := safepath.Open(a.root, path.Dir(rel), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", target, err)
	}
	defer tparent.Close()
	tfd, tbase := int(tparent.Fd()), path.Base(rel)
	var tst, st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &tst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("hardlink target %q: %w", target, err)
	}
	if tst.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("hardlink target %q is a directory", target)
	}
	switch err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case err == nil:
		if st.Dev == tst.Dev && st.Ino == tst.Ino {
			return nil // already that file
		}
		if err := removeAllAt(pfd, base); err != nil {
			return fmt.Errorf("replace existing entry: %w", err)
		}
	case !errors.Is(err, unix.ENOENT):
		return fmt.Errorf("stat existing entry: %w", err)
	}
	// No AT_SYMLINK_FOLLOW: a symlink target is linked itself.
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return fmt.Errorf("hardlink to %q: %w", target, err)
	}
	return nil
}

// escapes reports whether p, taken relative to the layer root, climbs
// above it with "..".
func escapes(p string) bool {
	depth := 0
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}

// whiteout converts an OCI whiteout entry to its overlayfs form.
func (a *applier) whiteout(parentRel, base string) error {
	parent, err := safepath.MkdirAll(a.root, parentRel, 0o755)
	if err != nil {
		return fmt.Errorf("whiteout parent directory: %w", err)
	}
	defer parent.Close()
	pfd := int(parent.Fd())
	if base == whiteoutOpaque {
		fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opaque directory: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("opaque directory: set %s: %w", opaqueXattr, err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // AUFS metadata, meaningless here
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid whiteout name %q", base)
	}
	if err := removeAllAt(pfd, name); err != nil {
		return fmt.Errorf("whiteout: remove %s: %w", name, err)
	}
	if err := unix.Mknodat(pfd, name, unix.S_IFCHR, int(unix.Mkdev(0, 0))); err != nil {
		return fmt.Errorf("whiteout: mknod %s: %w", name, err)
	}
	return nil
}

// finish sets directory times, deepest first, once all children exist.
func (a *applier) finish() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		parent, err := safepath.Open(a.root, path.Dir(d.rel), unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			continue // replaced later in the layer
		}
		if err != nil {
			return fmt.Errorf("directory times of %q: %w", d.rel, err)
		}
		err = setTimes(int(parent.Fd()), path.Base(d.rel), d.mtime, d.atime)
		parent.Close()
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("directory times of %q: %w", d.rel, err)
		}
	}
	return nil
}

func setTimes(pfd int, base string, mtime, atime time.Time) error {
	if atime.IsZero() {
		atime = mtime
	}
	ts := []unix.Timespec{timespec(atime), timespec(mtime)}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

type xattr struct{ name, value string }

// xattrs returns the allowed xattrs of hdr, sorted by name.
func xattrs(ctx context.Context, hdr *tar.Header) []xattr {
	var out []xattr
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok {
			continue
		}
		if !allowedXattr(name) {
			slog.WarnContext(ctx, "layer: xattr not allowed, skipped", "entry", hdr.Name, "xattr", name)
			continue
		}
		out = append(out, xattr{name, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// allowedXattr: an image may set user and trusted xattrs and file
// capabilities, but not overlayfs' own (opaque, redirect, metacopy,
// origin...), which would change how the merged view is built.
func allowedXattr(name string) bool {
	switch {
	case strings.HasPrefix(name, "trusted.overlay."):
		return false
	case strings.HasPrefix(name, "user."), strings.HasPrefix(name, "trusted."):
		return true
	default:
		return name == "security.capability"
	}
}

// removeAllAt removes name in dirfd and, if it is a directory, everything
// below it, without following symlinks.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("unlink %s: %w", name, err)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", name, err)
	}
	for _, n := range names {
		if err := removeAllAt(fd, n); err != nil {
			return err
		}
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("rmdir %s: %w", name, err)
	}
	return nil
}
