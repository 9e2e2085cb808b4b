package cgroups

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// unifiedKey is the Paths key of a cgroup v2 directory, as in runc's state.json.
const unifiedKey = ""

// parseProcCgroup maps each hierarchy's controllers (and "name=<x>" for named
// v1 hierarchies, unifiedKey for cgroup v2) to the calling process's cgroup,
// from /proc/self/cgroup lines "hierarchy-ID:controller-list:cgroup-path".
func parseProcCgroup(content string) (map[string]string, error) {
	own := make(map[string]string)
	for len(content) > 0 {
		var line string
		line, content, _ = strings.Cut(content, "\n")
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			return nil, fmt.Errorf("malformed /proc/self/cgroup line %q", line)
		}
		if parts[0] == "0" && parts[1] == "" {
			own[unifiedKey] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c != "" {
				own[c] = parts[2]
			}
		}
	}
	return own, nil
}

// containerCgroupPath turns the OCI cgroupsPath into a clean path: absolute
// paths start at each hierarchy's root, relative ones at the caller's own
// cgroup. Like runc, an empty cgroupsPath means "<id>" relative to the caller
// (verified with runc 1.1.5: it nests the container under the caller's cgroup
// in every hierarchy). A relative path can never climb above its base.
func containerCgroupPath(cgroupsPath, id string) (p string, relative bool, err error) {
	if cgroupsPath == "" {
		if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
			return "", false, fmt.Errorf("container id %q cannot name a cgroup", id)
		}
		return id, true, nil
	}
	if strings.Contains(cgroupsPath, "\x00") {
		return "", false, fmt.Errorf("cgroupsPath %q contains NUL", cgroupsPath)
	}
	relative = !path.IsAbs(cgroupsPath)
	p = path.Clean("/" + cgroupsPath)
	if p == "/" {
		// The root cgroup is shared by the whole host: never manage it.
		return "", false, fmt.Errorf("cgroupsPath %q resolves to the root cgroup", cgroupsPath)
	}
	if relative {
		p = p[1:]
	}
	return p, relative, nil
}

// hierarchyDir returns the directory of the container's cgroup in one mounted
// hierarchy. Absolute paths are taken below the mountpoint, as runc does;
// relative ones below the caller's own cgroup (own), which /proc/self/cgroup
// reports relative to the cgroup namespace root and therefore must be made
// relative to the mount's root first.
func hierarchyDir(mnt cgroupMount, own, cgPath string, relative bool) (string, error) {
	if !relative {
		return mnt.mountpoint + cgPath, nil
	}
	if own == "" {
		return "", fmt.Errorf("no own cgroup for mount %s in /proc/self/cgroup", mnt.mountpoint)
	}
	if strings.Contains(own+"/", "/../") {
		return "", fmt.Errorf("own cgroup %q is outside our cgroup namespace", own)
	}
	own = path.Clean(own)
	var rel string
	switch {
	case mnt.root == "/":
		rel = own
	case own == mnt.root:
		rel = "/"
	case strings.HasPrefix(own, mnt.root+"/"):
		rel = own[len(mnt.root):]
	default:
		return "", fmt.Errorf("own cgroup %q is not below the root %q of mount %s", own, mnt.root, mnt.mountpoint)
	}
	return filepath.Join(mnt.mountpoint, rel, cgPath), nil
}

// resolveV1Paths maps every controller of every mounted v1 hierarchy to the
// container's directory in it. With withUnified (hybrid hosts) the cgroup2
// mount is included under unifiedKey, as runc does: it costs one directory and
// gives the container cgroup.kill and cgroup.events. A hierarchy mounted twice
// is resolved through its first mount. own may be nil when cgPath is absolute.
func resolveV1Paths(mounts []cgroupMount, own map[string]string, cgPath string, relative, withUnified bool) (map[string]string, []Hierarchy, error) {
	paths := make(map[string]string)
	var hs []Hierarchy
	for _, mnt := range mounts {
		keys := mnt.controllers
		if mnt.unified {
			if !withUnified {
				continue
			}
			keys = []string{unifiedKey}
		}
		if len(keys) == 0 {
			continue
		}
		if _, seen := paths[keys[0]]; seen {
			continue
		}
		dir, err := hierarchyDir(mnt, own[keys[0]], cgPath, relative)
		if err != nil {
			return nil, nil, err
		}
		for _, k := range keys {
			paths[k] = dir
		}
		hs = append(hs, Hierarchy{MountPoint: mnt.mountpoint, Dir: dir, Unified: mnt.unified})
	}
	if len(paths) == 0 || (len(paths) == 1 && paths[unifiedKey] != "") {
		return nil, nil, fmt.Errorf("no cgroup v1 hierarchy is mounted")
	}
	return paths, hs, nil
}
