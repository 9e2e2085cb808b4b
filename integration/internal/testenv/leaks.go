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
	mounts  []string
	cgroups []string
	parent  string
}

// mountLines returns the mountinfo lines without their mount/parent ids,
// so that a line names what is mounted where.
func mountLines() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 5 {
			out = append(out, strings.Join(f[2:], " "))
		}
	}
	return out
}

// ownMounts keeps the lines a runtime acting on this bundle could have
// left: mounts outside the temp dir (where no other test mounts), and
// mounts at or from the bundle or the runtime's root. Other test packages
// run concurrently and mount under their own temp dirs, so the whole table
// is not this test's to compare.
func ownMounts(lines []string, dirs ...string) map[string]int {
	tmp := filepath.Clean(os.TempDir())
	under := func(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	out := map[string]int{}
	for _, l := range lines {
		f := strings.Fields(l) // major:minor root mountpoint ...
		root, target := f[1], f[2]
		mine := !under(target, tmp)
		for _, d := range dirs {
			if d != "" && (under(target, d) || under(root, d)) {
				mine = true
			}
		}
		if mine {
			out[l]++
		}
	}
	return out
}

// TakeSnapshot records the mount table and the cgroup dirs under the test's
// cgroup parent.
func TakeSnapshot(t testing.TB) *Snapshot {
	t.Helper()
	s := &Snapshot{parent: CgroupParent(t)}
	s.mounts = mountLines()
	s.cgroups = CgroupDirsUnder(s.parent)
	return s
}

// AssertNoLeaks fails the test if, since the snapshot, a mount appeared,
// a cgroup dir appeared under the test parent, the runtime kept a state dir
// for id, or a process is left with its root, cwd or cgroup in the bundle.
func (s *Snapshot) AssertNoLeaks(t testing.TB, rt *Runtime, b *Bundle, id string) {
	t.Helper()
	var dirs []string
	if b != nil {
		dirs = append(dirs, b.Dir)
	}
	if rt != nil {
		dirs = append(dirs, rt.Root)
	}
	before, now := ownMounts(s.mounts, dirs...), ownMounts(mountLines(), dirs...)
	for l, n := range now {
		if n > before[l] {
			t.Errorf("mount left behind: %s", l)
		}
	}
	for l, n := range before {
		if now[l] < n {
			t.Errorf("mount gone since the snapshot: %s", l)
		}
	}
	hadCgroup := map[string]bool{}
	for _, c := range s.cgroups {
		hadCgroup[c] = true
	}
	for _, c := range CgroupDirsUnder(s.parent) {
		// The parent itself may be created (runc makes missing
		// parents and removes only the container's own cgroup).
		if !hadCgroup[c] && filepath.Base(c) != strings.TrimPrefix(s.parent, "/") {
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
