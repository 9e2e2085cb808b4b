package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// v1Manager manages a container on a cgroup v1 (legacy or hybrid) host.
type v1Manager struct {
	// paths maps each controller, "name=<x>" and, on hybrid hosts, unifiedKey
	// to the container's directory. Controllers mounted together share one.
	paths map[string]string
	// dirs are the distinct directories of paths, sorted.
	dirs    []string
	checkFS bool
	// hierarchies is known when made by New, nil after Load.
	hierarchies []Hierarchy
}

func newV1Manager(paths map[string]string, checkFS bool) *v1Manager {
	m := &v1Manager{paths: maps.Clone(paths), checkFS: checkFS}
	if m.paths == nil {
		m.paths = make(map[string]string)
	}
	for _, dir := range m.paths {
		m.dirs = append(m.dirs, dir)
	}
	slices.Sort(m.dirs)
	m.dirs = slices.Compact(m.dirs)
	return m
}

// dir returns the container's directory for a controller, or an error
// wrapping ErrControllerMissing when the controller is not mounted.
func (m *v1Manager) dir(controller string) (string, error) {
	if dir, ok := m.paths[controller]; ok {
		return dir, nil
	}
	return "", fmt.Errorf("%w: %q is not mounted", ErrControllerMissing, controller)
}

func (m *v1Manager) Paths() map[string]string { return maps.Clone(m.paths) }

func (m *v1Manager) Hierarchies() []Hierarchy { return slices.Clone(m.hierarchies) }

func (m *v1Manager) Apply(pid int) error {
	cpusetDir := m.paths["cpuset"]
	for _, dir := range m.dirs {
		var onCreate func(string) error
		if dir == cpusetDir {
			onCreate = func(d string) error { return fillCpuset(d, true) }
		}
		if err := makeCgroupDir(dir, m.checkFS, onCreate); err != nil {
			return err
		}
	}
	if pid < 0 {
		return nil
	}
	return m.Enter(pid)
}

func (m *v1Manager) Enter(pid int) error {
	cpusetDir := m.paths["cpuset"]
	for _, dir := range m.dirs {
		err := writePid(dir, pid)
		if err != nil && dir == cpusetDir && errors.Is(err, unix.ENOSPC) {
			// A cpuset cgroup created by someone who did not copy cpus and
			// mems from its parent cannot take tasks: fill it in and retry.
			if fillErr := fillCpuset(dir, false); fillErr != nil {
				return fillErr
			}
			err = writePid(dir, pid)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fillCpuset copies cpuset.cpus and cpuset.mems from the parent into dir when
// they are empty, filling empty ancestors first: a v1 cpuset cgroup starts
// empty and refuses tasks until both are set. justCreated skips reading dir,
// which is known to be empty.
func fillCpuset(dir string, justCreated bool) error {
	for _, name := range [...]string{"cpuset.cpus", "cpuset.mems"} {
		if !justCreated {
			cur, err := readFile(dir, name)
			if err != nil {
				return err
			}
			if strings.TrimSpace(cur) != "" {
				continue
			}
		}
		parent := dir[:strings.LastIndexByte(dir, '/')]
		if parent == "" {
			return fmt.Errorf("no parent to copy %s from for %s", name, dir)
		}
		val, err := readFile(parent, name)
		if err != nil {
			return err
		}
		if strings.TrimSpace(val) == "" {
			if err := fillCpuset(parent, false); err != nil {
				return err
			}
			if val, err = readFile(parent, name); err != nil {
				return err
			}
		}
		if err := writeFile(dir, name, strings.TrimSpace(val)); err != nil {
			return err
		}
	}
	return nil
}

// Pids reads one hierarchy only: every process is in every hierarchy, and
// pids (or memory) is the one most likely to be mounted.
func (m *v1Manager) Pids() ([]int, error) {
	dir := m.paths["pids"]
	if dir == "" {
		dir = m.paths["memory"]
	}
	if dir == "" && len(m.dirs) > 0 {
		dir = m.dirs[0]
	}
	if dir == "" {
		return nil, fmt.Errorf("%w: no cgroup hierarchy to list processes from", ErrControllerMissing)
	}
	return collectPids(dir, nil)
}

// freezeTimeout bounds Freeze: a task stuck in an uninterruptible sleep (for
// example on a dead NFS server) can keep a cgroup FREEZING forever.
const freezeTimeout = 5 * time.Second

func (m *v1Manager) Freeze() error {
	dir, err := m.dir("freezer")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(freezeTimeout)
	delay := 100 * time.Microsecond
	for {
		// Writing FROZEN again retries tasks that could not be frozen on
		// the previous attempt; reading the state makes the kernel
		// re-check whether all tasks are frozen now.
		if err := writeFile(dir, "freezer.state", "FROZEN"); err != nil {
			return err
		}
		state, err := readFile(dir, "freezer.state")
		if err != nil {
			return err
		}
		if strings.TrimSpace(state) == "FROZEN" {
			return nil
		}
		if time.Now().After(deadline) {
			// Do not leave the container half frozen.
			_ = writeFile(dir, "freezer.state", "THAWED")
			return fmt.Errorf("freeze %s: still %s after %v", dir, strings.TrimSpace(state), freezeTimeout)
		}
		time.Sleep(delay)
		delay = min(2*delay, 10*time.Millisecond)
	}
}

func (m *v1Manager) Thaw() error {
	dir, err := m.dir("freezer")
	if err != nil {
		return err
	}
	if err := writeFile(dir, "freezer.state", "THAWED"); err != nil {
		return err
	}
	state, err := readFile(dir, "freezer.state")
	if err != nil {
		return err
	}
	if s := strings.TrimSpace(state); s != "THAWED" {
		return fmt.Errorf("thaw %s: state is %s (is a parent cgroup frozen?)", dir, s)
	}
	return nil
}

func (m *v1Manager) Frozen() (bool, error) {
	dir, ok := m.paths["freezer"]
	if !ok {
		return false, nil
	}
	state, err := readFile(dir, "freezer.state")
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(state) == "FROZEN", nil
}

// Kill uses the hybrid host's cgroup2 directory when there is one: cgroup.kill
// kills the whole subtree atomically, with no race against forks.
func (m *v1Manager) Kill() error {
	if dir, ok := m.paths[unifiedKey]; ok {
		err := writeFile(dir, "cgroup.kill", "1")
		if err == nil || !errors.Is(err, unix.ENOENT) {
			return err
		}
		// No cgroup.kill: a kernel before 5.14, or the cgroup is gone
		// (then killEach finds nothing to kill).
	}
	return killEach(m)
}

func (m *v1Manager) Destroy() error {
	var errs []error
	for _, dir := range m.dirs {
		if err := removeCgroupDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *v1Manager) OOMKillCount() (uint64, error) {
	dir, err := m.dir("memory")
	if err != nil {
		return 0, err
	}
	content, err := readFile(dir, "memory.oom_control")
	if err != nil {
		return 0, err
	}
	return keyValue(content, "oom_kill"), nil
}

// killEach is the fallback for kernels without cgroup.kill: freeze (so no
// process forks while we walk the list), SIGKILL every pid, thaw so the
// signals are delivered. Without a freezer it still kills what it sees.
func killEach(m Manager) error {
	frozen := m.Freeze() == nil
	pids, err := m.Pids()
	if errors.Is(err, unix.ENOENT) {
		err = nil // the cgroup is gone, and its processes with it
	}
	if err == nil {
		for _, pid := range pids {
			if killErr := unix.Kill(pid, unix.SIGKILL); killErr != nil && killErr != unix.ESRCH {
				err = fmt.Errorf("kill %d: %w", pid, killErr)
			}
		}
	}
	if frozen {
		if thawErr := m.Thaw(); thawErr != nil && err == nil {
			err = thawErr
		}
	}
	return err
}
