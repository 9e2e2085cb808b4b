package cgroups

import (
	"fmt"
	"strings"
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

// parseMountinfoLine parses one line, see proc(5):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - cgroup cgroup rw,memory
//
// ok is false for filesystems other than cgroup and cgroup2.
func parseMountinfoLine(line string) (m cgroupMount, ok bool, err error) {
	before, after, found := strings.Cut(line, " - ")
	if !found {
		return m, false, fmt.Errorf("no separator in %q", line)
	}
	post := strings.Fields(after)
	if len(post) == 0 {
		return m, false, fmt.Errorf("no filesystem type in %q", line)
	}
	switch post[0] {
	case "cgroup":
	case "cgroup2":
		m.unified = true
	default:
		return m, false, nil
	}
	pre := strings.Fields(before)
	if len(pre) < 6 || len(post) < 2 {
		return m, false, fmt.Errorf("too few fields in %q", line)
	}
	m.root = unescapeMountinfo(pre[3])
	m.mountpoint = unescapeMountinfo(pre[4])
	if !strings.HasPrefix(m.root, "/") || !strings.HasPrefix(m.mountpoint, "/") {
		return m, false, fmt.Errorf("relative path in %q", line)
	}
	if m.unified || len(post) < 3 {
		return m, true, nil
	}
	for _, opt := range strings.Split(post[2], ",") {
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

// unescapeMountinfo undoes the kernel's octal escaping of space, tab, newline
// and backslash (\040, \011, \012, \134). Anything that is not a valid
// three-digit octal escape is kept as is.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) && s[i+1] <= '3' {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
