package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Snapshot is the host state that a failed runtime command must leave as
// it was: mounts, cgroup dirs under the test's parent, and processes.
type Snapshot struct {
	mounts  map[string]bool
	count   int
	cgroups []string
	parent  string
}

// mountKey identifies a mountinfo line without its mount/parent ids.
func mountKeys() (map[string]bool, int) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, 0
	}
	m := map[string]bool{}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		n++
		m[strings.Join(f[2:], " ")] = true
	}
	return m, n
}

// TakeSnapshot records the mount table and the cgroup dirs under the test's
// cgroup parent.
func TakeSnapshot(t testing.TB) *Snapshot {
	t.Helper()
	s := &Snapshot{parent: CgroupParent(t)}
	s.mounts, s.count = mountKeys()
	s.cgroups = CgroupDirsUnder(s.parent)
	return s
}

// AssertNoLeaks fails the test if, since the snapshot, a mount appeared,
// a cgroup dir appeared under the test parent, the runtime kept a state dir
// for id, or a process is left with its root, cwd or cgroup in the bundle.
func (s *Snapshot) AssertNoLeaks(t testing.TB, rt *Runtime, b *Bundle, id string) {
	t.Helper()
	now, n := mountKeys()
	var added []string
	for k := range now {
		if !s.mounts[k] {
			added = append(added, k)
		}
	}
	if len(added) > 0 || n != s.count {
		t.Errorf("mount table changed: %d -> %d lines; new: %q", s.count, n, added)
	}
	before := map[string]bool{}
	for _, c := range s.cgroups {
		before[c] = true
	}
	for _, c := range CgroupDirsUnder(s.parent) {
		// The parent itself may be created (runc makes missing
		// parents and removes only the container's own cgroup).
		if !before[c] && filepath.Base(c) != strings.TrimPrefix(s.parent, "/") {
			t.Errorf("cgroup dir left behind: %s/%s", CgroupRoot, c)
		}
	}
	if id != "" && !strings.Contains(id, "/") && id != "." && id != ".." {
		if _, err := os.Lstat(filepath.Join(rt.Root, id)); err == nil {
			t.Errorf("state dir left behind: %s", filepath.Join(rt.Root, id))
		}
	}
	if ents, err := os.ReadDir(rt.Root); err == nil && len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("runtime root %s not empty: %q", rt.Root, names)
	}
	if b != nil {
		for _, pid := range ProcsUsing(b.Dir, s.parent) {
			t.Errorf("process %d left behind (%s)", pid, procCmdline(pid))
		}
	}
}

// ProcsUsing lists live processes whose root or cwd is at or below dir, or
// whose cgroup path contains cgroupParent.
func ProcsUsing(dir, cgroupParent string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || !ProcAlive(pid) {
			continue
		}
		hit := false
		for _, l := range []string{"root", "cwd"} {
			target, err := os.Readlink("/proc/" + e.Name() + "/" + l)
			if err == nil && (target == dir || strings.HasPrefix(target, dir+"/")) {
				hit = true
			}
		}
		if cgroupParent != "" {
			if b, err := os.ReadFile("/proc/" + e.Name() + "/cgroup"); err == nil &&
				strings.Contains(string(b), cgroupParent+"/") {
				hit = true
			}
		}
		if hit {
			out = append(out, pid)
		}
	}
	return out
}

func procCmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
}
