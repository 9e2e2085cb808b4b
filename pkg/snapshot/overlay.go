package snapshot

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// checkOverlay fails with a clear error unless the kernel has overlayfs and
// an overlay with two lower dirs, an upper and a work dir in dir mounts.
func checkOverlay(dir string) (retErr error) {
	tmp, err := os.MkdirTemp(dir, "check-")
	if err != nil {
		return fmt.Errorf("overlayfs check: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(tmp); err != nil && retErr == nil {
			retErr = fmt.Errorf("overlayfs check: cleanup: %w", err)
		}
	}()
	for _, d := range []string{"l1", "l2", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o700); err != nil {
			return fmt.Errorf("overlayfs check: %w", err)
		}
	}
	merged := filepath.Join(tmp, "merged")
	opts := fmt.Sprintf("index=off,lowerdir=%s:%s,upperdir=%s,workdir=%s",
		filepath.Join(tmp, "l1"), filepath.Join(tmp, "l2"), filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"))
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		if errors.Is(err, unix.ENODEV) || !overlayInProcFilesystems() {
			return fmt.Errorf("overlayfs is not supported by this kernel (no \"overlay\" in /proc/filesystems; try modprobe overlay): %w", err)
		}
		return fmt.Errorf("overlayfs is not usable on %s (is it itself on overlayfs, or without d_type support?): %w", dir, err)
	}
	if err := unix.Unmount(merged, 0); err != nil {
		_ = unix.Unmount(merged, unix.MNT_DETACH)
		return fmt.Errorf("overlayfs check: unmount: %w", err)
	}
	return nil
}

func overlayInProcFilesystems() bool {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return true // cannot tell
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 0 && fields[len(fields)-1] == "overlay" {
			return true
		}
	}
	return false
}
