package initp

import (
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

const procSuperMagic = 0x9fa0

// applySysctls writes the spec's sysctls under the container's /proc/sys.
// Each file is opened beneath a verified procfs handle without following
// symlinks or crossing mounts, so a mount or symlink planted over
// /proc/sys cannot redirect the write (CVE-2025-52881).
func applySysctls(sysctls map[string]string) error {
	if len(sysctls) == 0 {
		return nil
	}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_IN_ROOT}
	dir, err := unix.Openat2(unix.AT_FDCWD, "/proc/sys", &how)
	if err != nil {
		return fmt.Errorf("sysctl: open /proc/sys: %w", err)
	}
	defer unix.Close(dir)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(dir, &sfs); err != nil || sfs.Type != procSuperMagic {
		return fmt.Errorf("sysctl: /proc/sys is not on procfs")
	}
	keys := make([]string, 0, len(sysctls))
	for k := range sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if key == "" || strings.Contains(key, "..") || strings.HasPrefix(key, "/") || strings.HasPrefix(key, ".") {
			return fmt.Errorf("sysctl %q: invalid name", key)
		}
		rel := strings.ReplaceAll(key, ".", "/")
		fhow := unix.OpenHow{Flags: unix.O_WRONLY | unix.O_CLOEXEC | unix.O_NOCTTY, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV}
		fd, err := unix.Openat2(dir, rel, &fhow)
		if err != nil {
			return fmt.Errorf("sysctl %q: open: %w", key, err)
		}
		_, err = unix.Write(fd, []byte(sysctls[key]))
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("sysctl %q=%q: write: %w", key, sysctls[key], err)
		}
	}
	return nil
}
