package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// v2Manager manages a container on a cgroup v2 host: one directory.
type v2Manager struct {
	dir     string
	checkFS bool
	// hierarchies is known when made by New, nil after Load.
	hierarchies []Hierarchy
}

func (m *v2Manager) Paths() map[string]string { return map[string]string{unifiedKey: m.dir} }

func (m *v2Manager) Hierarchies() []Hierarchy { return slices.Clone(m.hierarchies) }

func (m *v2Manager) Apply(pid int) error {
	if err := makeCgroupDir(m.dir, m.checkFS, enableParentControllers); err != nil {
		return err
	}
	if pid < 0 {
		return nil
	}
	return m.Enter(pid)
}

func (m *v2Manager) Enter(pid int) error { return writePid(m.dir, pid) }

// enableParentControllers makes every controller the parent of a freshly
// created cgroup has available also available to that cgroup, so Set can use
// them. Failures are not fatal: a parent holding processes itself cannot
// delegate controllers (the "no internal processes" rule), realtime tasks
// block the cpu controller, and Set reports any controller it then misses.
func enableParentControllers(dir string) error {
	parent := filepath.Dir(dir)
	available, err := readFile(parent, "cgroup.controllers")
	if err != nil {
		return err
	}
	if strings.TrimSpace(available) == "" {
		return nil
	}
	enabled, err := readFile(parent, "cgroup.subtree_control")
	if err != nil {
		return err
	}
	have := strings.Fields(enabled)
	var missing []string
	for _, c := range strings.Fields(available) {
		if !containsString(have, c) {
			missing = append(missing, "+"+c)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if writeFile(parent, "cgroup.subtree_control", strings.Join(missing, " ")) == nil {
		return nil
	}
	// The kernel applies a multi-controller write all or nothing: enable
	// what can be enabled one by one.
	for _, c := range missing {
		_ = writeFile(parent, "cgroup.subtree_control", c)
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (m *v2Manager) Pids() ([]int, error) { return collectPids(m.dir, nil) }

func (m *v2Manager) Freeze() error {
	if err := writeFile(m.dir, "cgroup.freeze", "1"); err != nil {
		return err
	}
	if err := waitFrozen(m.dir, true, freezeTimeout); err != nil {
		// Do not leave the container half frozen.
		_ = writeFile(m.dir, "cgroup.freeze", "0")
		return err
	}
	return nil
}

func (m *v2Manager) Thaw() error {
	if err := writeFile(m.dir, "cgroup.freeze", "0"); err != nil {
		return err
	}
	return waitFrozen(m.dir, false, freezeTimeout)
}

// Frozen reads the effective state from cgroup.events, which is also 1 when
// an ancestor is frozen, rather than the requested state in cgroup.freeze.
func (m *v2Manager) Frozen() (bool, error) {
	events, err := readFile(m.dir, "cgroup.events")
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return keyValue(events, "frozen") == 1, nil
}

// waitFrozen waits until cgroup.events reports "frozen 1" (or 0). The kernel
// wakes pollers of cgroup.events with POLLPRI whenever it changes, so this
// sleeps in poll(2) instead of spinning; the poll timeout is capped in case a
// change slipped in between the read and the poll.
func waitFrozen(dir string, want bool, timeout time.Duration) error {
	path := dir + "/cgroup.events"
	fd, err := openFile(path, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	defer unix.Close(fd)
	wantVal := uint64(0)
	if want {
		wantVal = 1
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 256)
	for {
		n, err := unix.Pread(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if keyValue(string(buf[:n]), "frozen") == wantVal {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("freeze %s: frozen is not %d after %v", dir, wantVal, timeout)
		}
		wait := min(left, 50*time.Millisecond)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}
		if _, err := unix.Poll(fds, int(wait.Milliseconds())+1); err != nil && err != unix.EINTR {
			return fmt.Errorf("poll %s: %w", path, err)
		}
	}
}

func (m *v2Manager) Kill() error {
	err := writeFile(m.dir, "cgroup.kill", "1")
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return err
	}
	// No cgroup.kill: a kernel before 5.14, or the cgroup is gone (then
	// killEach finds nothing to kill).
	return killEach(m)
}

func (m *v2Manager) Destroy() error { return removeCgroupDir(m.dir) }

func (m *v2Manager) OOMKillCount() (uint64, error) {
	events, err := readFile(m.dir, "memory.events")
	if err != nil {
		return 0, err
	}
	return keyValue(events, "oom_kill"), nil
}
