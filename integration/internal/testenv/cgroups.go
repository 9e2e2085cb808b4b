package testenv

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CgroupRoot is where the cgroup hierarchies are mounted.
const CgroupRoot = "/sys/fs/cgroup"

// CgroupHierarchies lists the mounted cgroup hierarchies (v1 controllers
// and the unified one) below CgroupRoot, from /proc/self/mountinfo.
func CgroupHierarchies() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		fstype := fields[sep+1]
		mp := fields[4]
		if (fstype == "cgroup" || fstype == "cgroup2") && strings.HasPrefix(mp, CgroupRoot+"/") {
			out = append(out, mp)
		}
	}
	sort.Strings(out)
	return out
}

// CgroupV1Dir is the host directory of a v1 controller's hierarchy, e.g.
// CgroupV1Dir("memory") = /sys/fs/cgroup/memory, or "" if not mounted.
func CgroupV1Dir(controller string) string {
	for _, h := range CgroupHierarchies() {
		if filepath.Base(h) == controller {
			return h
		}
	}
	return ""
}

// IsCgroupV2Only reports whether the host is cgroup v2 only (unified).
func IsCgroupV2Only() bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(CgroupRoot, &st); err != nil {
		return false
	}
	return st.Type == 0x63677270 // CGROUP2_SUPER_MAGIC
}

// CgroupParent returns the test's cgroup parent "/xstack-it-<rand>",
// removed from every hierarchy at cleanup.
func CgroupParent(t testing.TB) string {
	r := reg(t)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cgParent == "" {
		r.cgParent = "/xstack-it-" + RandHex(6)
		r.cgroups = append(r.cgroups, r.cgParent)
	}
	return r.cgParent
}

// RemoveCgroup removes a cgroup path and its sub-cgroups from every
// hierarchy, retrying briefly while dying tasks leave them busy.
func RemoveCgroup(path string) error {
	var last error
	for _, h := range CgroupHierarchies() {
		d := filepath.Join(h, path)
		if _, err := os.Stat(d); err != nil {
			continue
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			last = rmdirTree(d)
			if last == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if last != nil {
			return fmt.Errorf("remove cgroup %s: %w (left: %s)", d, last, describeCgroup(d))
		}
	}
	return nil
}

// rmdirTree rmdirs the directories below d, deepest first (cgroup dirs can
// only be removed with rmdir, and only when empty of children).
func rmdirTree(d string) error {
	var dirs []string
	err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(dirs[i]); err != nil && err != syscall.ENOENT {
			return err
		}
	}
	return nil
}

// CgroupDirsUnder lists, across all hierarchies, the directories below
// path (relative to each hierarchy, prefixed with its name).
func CgroupDirsUnder(path string) []string {
	var out []string
	for _, h := range CgroupHierarchies() {
		d := filepath.Join(h, path)
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				out = append(out, strings.TrimPrefix(p, CgroupRoot+"/"))
			}
			return nil
		})
	}
	sort.Strings(out)
	return out
}

// ReadCgroupFile reads a file of a v1 controller for a cgroup path,
// trimmed.
func ReadCgroupFile(controller, cgPath, file string) (string, error) {
	h := CgroupV1Dir(controller)
	if h == "" {
		return "", fmt.Errorf("cgroup v1 controller %s not mounted", controller)
	}
	b, err := os.ReadFile(filepath.Join(h, cgPath, file))
	return strings.TrimSpace(string(b)), err
}

// describeCgroup lists the sub-cgroups of d with their tasks and the state
// of each task, for error messages.
func describeCgroup(d string) string {
	var b strings.Builder
	filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil
		}
		procs, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		fmt.Fprintf(&b, "%s:", p)
		for _, f := range strings.Fields(string(procs)) {
			pid := 0
			fmt.Sscan(f, &pid)
			fmt.Fprintf(&b, " %s(%s)", f, ProcState(pid))
		}
		b.WriteString("; ")
		return nil
	})
	return b.String()
}
