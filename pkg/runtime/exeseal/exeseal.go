// Package exeseal gives a container's init a handle on the running xrunc
// binary that nothing can write through. Processes in the container can
// reach the init's executable through /proc/<pid>/exe; if that were the
// host's xrunc file, a malicious container could overwrite it
// (CVE-2019-5736).
//
// The handle is, when the kernel allows it, the binary seen through a
// private, detached overlayfs mount with no upper layer: a read-only file
// system that cannot be remounted writable from the container (it is in
// no mount namespace) and whose file is not the binary's inode. This costs
// one small mount instead of copying the binary, so the init execs pages
// already in the page cache. Where that is refused (no overlayfs, no
// privilege over the mount API, a binary that was replaced meanwhile) the
// handle is a sealed memfd copy: it can be neither written, truncated nor
// grown.
//
// Internal to xstack; no API stability.
package exeseal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// mfdExec asks for an executable memfd on kernels that distinguish
// (vm.memfd_noexec, Linux 6.3+); older kernels reject the flag.
const mfdExec = 0x10

// Open returns a close-on-exec handle on a write-protected view of
// /proc/self/exe. Execute it through /proc/self/fd/N or execveat with
// AT_EMPTY_PATH. scratchDir is an existing directory on the host that
// overlayfs may use as its second, bottom layer (it needs two without an
// upper one); its files never mask the binary, which is on top.
func Open(scratchDir string) (*os.File, error) {
	if f, err := overlayView(scratchDir); err == nil {
		return f, nil
	}
	return memfdCopy()
}

// overlayView opens the running binary through a read-only overlayfs made
// with the mount API and never attached anywhere: once the mount's own fd
// is closed, the returned O_PATH file is its only user, and the mount goes
// away with the last exec of it.
func overlayView(scratchDir string) (*os.File, error) {
	var want unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &want); err != nil {
		return nil, err
	}
	// A binary replaced since we started reads "(deleted)" here: the
	// fallback copies the one we run, so the init speaks our protocol.
	path, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	dir, name := filepath.Split(path)

	ctx, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(ctx)
	lower := escapeLowerDir(dir) + ":" + escapeLowerDir(scratchDir)
	if err := unix.FsconfigSetString(ctx, "lowerdir", lower); err != nil {
		return nil, fmt.Errorf("overlay lowerdir=%s: %w", lower, err)
	}
	// Inode-number mapping is of no use here, and where the layers are on
	// different file systems the kernel would log about it.
	_ = unix.FsconfigSetString(ctx, "xino", "off")
	if err := unix.FsconfigCreate(ctx); err != nil {
		return nil, fmt.Errorf("create overlay: %w", err)
	}
	mnt, err := unix.Fsmount(ctx, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		return nil, fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mnt)
	fd, err := unix.Openat(mnt, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s in overlay: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), "xrunc-overlay")
	// The path may name another file than the one we run by now (replaced
	// between the readlink and the open): compare what overlayfs shows of
	// the real inode with our own.
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil || !sameFile(&got, &want) {
		f.Close()
		return nil, errors.New("the binary in the overlay is not the running one")
	}
	return f, nil
}

// sameFile compares what survives overlayfs: it reports its own device,
// but the lower file's inode number, size and modification time.
func sameFile(a, b *unix.Stat_t) bool {
	return a.Ino == b.Ino && a.Size == b.Size && a.Mtim == b.Mtim && a.Mode&unix.S_IFMT == unix.S_IFREG
}

// escapeLowerDir protects the separators of overlayfs's lowerdir list.
func escapeLowerDir(p string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(p)
}

// memfdCopy returns a sealed, close-on-exec memfd holding a copy of
// /proc/self/exe.
func memfdCopy() (*os.File, error) {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("open /proc/self/exe: %w", err)
	}
	defer self.Close()
	st, err := self.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat /proc/self/exe: %w", err)
	}

	fd, err := unix.MemfdCreate("xrunc", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|mfdExec)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate("xrunc", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "xrunc-sealed")
	ok := false
	defer func() {
		if !ok {
			mem.Close()
		}
	}()

	// Size the file first so the copy does not grow it page by page.
	if err := unix.Ftruncate(fd, st.Size()); err != nil {
		return nil, fmt.Errorf("size memfd: %w", err)
	}
	var off int64
	for off < st.Size() {
		n, err := unix.Sendfile(fd, int(self.Fd()), &off, int(st.Size()-off))
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return nil, fmt.Errorf("copy /proc/self/exe: %w", err)
		}
		if n == 0 {
			return nil, fmt.Errorf("copy /proc/self/exe: short copy at %d of %d bytes", off, st.Size())
		}
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if err := addSeals(fd, seals); err != nil {
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	ok = true
	return mem, nil
}

// addSeals adds seals, retrying EBUSY: the kernel refuses F_SEAL_WRITE
// while a page of the file is still referenced by the copy that filled it
// (it waits for such pins, but only briefly), which happens once in some
// hundreds of creates on a loaded machine.
func addSeals(fd int, seals int) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if _, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != unix.EBUSY {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * time.Millisecond)
	}
	return err
}
