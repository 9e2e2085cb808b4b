package cgroups

import (
	"fmt"
	"strings"

	"github.com/xstack/xstack/pkg/mountinfo"
)

// cgroupMount is one cgroup filesystem mount from /proc/self/mountinfo.
type cgroupMount struct {
	mountpoint string
	// root is the directory of the hierarchy that is mounted, relative to the
	// reader's cgroup namespace ("/" unless only a subtree is bind-mounted).
	root    string
	unified bool // a cgroup2 mount
	// controllers of a v1 hierarchy: subsystem names and "name=<x>" for named
	// hierarchies such as name=systemd. Empty for cgroup2.
	controllers []string
}

// v1MountOptions are super options of a cgroup v1 mount that are not
// controllers. Options with a value (release_agent=...) are recognised by
// their "=", except name=, which identifies a named hierarchy.
var v1MountOptions = map[string]bool{
	"rw": true, "ro": true, "all": true, "none": true, "noprefix": true,
	"clone_children": true, "xattr": true, "cpuset_v2_mode": true, "favordynmods": true,
}

// parseMountinfo returns the cgroup and cgroup2 mounts listed in the
// mountinfo content, in mount order. Lines of other filesystems are skipped
// without being split into fields, which keeps hosts with thousands of mounts
// cheap.
func parseMountinfo(content string) ([]cgroupMount, error) {
	var mounts []cgroupMount
	for lineNo := 1; len(content) > 0; lineNo++ {
		var line string
		line, content, _ = strings.Cut(content, "\n")
		if !strings.Contains(line, " - cgroup") {
			continue
		}
		m, ok, err := parseMountinfoLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", lineNo, err)
		}
		if ok {
			mounts = append(mounts, m)
		}
	}
	return mounts, nil
}

// parseMountinfoLine parses one line (see pkg/mountinfo); ok is false for
// filesystems other than cgroup and cgroup2.
func parseMountinfoLine(line string) (m cgroupMount, ok bool, err error) {
	mi, err := mountinfo.ParseLine(line)
	if err != nil {
		return m, false, err
	}
	switch mi.FSType {
	case "cgroup":
	case "cgroup2":
		m.unified = true
	default:
		return m, false, nil
	}
	m.root, m.mountpoint = mi.Root, mi.MountPoint
	if !strings.HasPrefix(m.root, "/") || !strings.HasPrefix(m.mountpoint, "/") {
		return m, false, fmt.Errorf("relative path in %q", line)
	}
	if m.unified {
		return m, true, nil
	}
	for _, opt := range strings.Split(mi.SuperOptions, ",") {
		if opt == "" || v1MountOptions[opt] {
			continue
		}
		if strings.Contains(opt, "=") && !strings.HasPrefix(opt, "name=") {
			continue
		}
		m.controllers = append(m.controllers, opt)
	}
	return m, true, nil
}
