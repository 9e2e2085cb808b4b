// Package mount applies the mounts a client sends with a task (an image's
// snapshot, typically one overlay or bind mount) onto a target directory,
// and takes them down again.
//
// Internal to xstack; no API stability.
package mount

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/containerd/containerd/api/types"
	"golang.org/x/sys/unix"
)

// flagOptions are the mount(8) options that are flags rather than data.
var flagOptions = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro":          {false, unix.MS_RDONLY},
	"rw":          {true, unix.MS_RDONLY},
	"bind":        {false, unix.MS_BIND},
	"rbind":       {false, unix.MS_BIND | unix.MS_REC},
	"nosuid":      {false, unix.MS_NOSUID},
	"suid":        {true, unix.MS_NOSUID},
	"nodev":       {false, unix.MS_NODEV},
	"dev":         {true, unix.MS_NODEV},
	"noexec":      {false, unix.MS_NOEXEC},
	"exec":        {true, unix.MS_NOEXEC},
	"noatime":     {false, unix.MS_NOATIME},
	"atime":       {true, unix.MS_NOATIME},
	"nodiratime":  {false, unix.MS_NODIRATIME},
	"relatime":    {false, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME},
	"sync":        {false, unix.MS_SYNCHRONOUS},
	"dirsync":     {false, unix.MS_DIRSYNC},
	"remount":     {false, unix.MS_REMOUNT},
	"defaults":    {false, 0},
}

// parseOptions splits options into mount flags and the data string.
func parseOptions(options []string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range options {
		if f, ok := flagOptions[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		data = append(data, o)
	}
	return flags, strings.Join(data, ",")
}

// Mount mounts m on target.
func Mount(m *types.Mount, target string) error {
	flags, data := parseOptions(m.Options)
	if flags&unix.MS_BIND == 0 {
		if err := unix.Mount(m.Source, target, m.Type, flags, data); err != nil {
			return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.Type, target, err)
		}
		return nil
	}
	if err := unix.Mount(m.Source, target, "", flags&^unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", m.Source, target, err)
	}
	// A bind mount ignores MS_RDONLY until remounted.
	if flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("remount %s read-only: %w", target, err)
		}
	}
	return nil
}

// All mounts ms on target in order, stacking them; on failure it unmounts
// whatever it mounted.
func All(ms []*types.Mount, target string) error {
	for i, m := range ms {
		if err := Mount(m, target); err != nil {
			if i > 0 {
				_ = UnmountAll(target)
			}
			return err
		}
	}
	return nil
}

// UnmountAll unmounts everything stacked on target; a target that is not a
// mount point (or does not exist) is fine.
func UnmountAll(target string) error {
	for {
		err := unix.Unmount(target, 0)
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY):
			// Still used (a process holds a cwd in it): detach so that
			// it goes away with its last user.
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount %s: %w", target, err)
			}
		case errors.Is(err, unix.EINTR):
			continue
		default:
			if _, serr := os.Stat(target); errors.Is(serr, os.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}
