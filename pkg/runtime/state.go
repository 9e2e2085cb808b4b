package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/atomicfile"
	"github.com/xstack/xstack/pkg/runtime/hooks"
	"github.com/xstack/xstack/pkg/runtime/proc"
	"github.com/xstack/xstack/pkg/version"
)

// Status is a container's lifecycle state, as the OCI state reports it.
type Status string

// The OCI statuses.
const (
	Created Status = "created"
	Running Status = "running"
	Paused  Status = "paused"
	Stopped Status = "stopped"
)

// stateVersion is bumped when State changes incompatibly; a newer xrunc
// reads every older version.
const stateVersion = 2

const (
	stateFile = "state.json"
	fifoFile  = "exec.fifo"
)

// State is what xrunc persists about a container in <root>/<id>/state.json.
// It is written atomically, before the init is released (so a killed
// "create" can still be cleaned up by "delete").
type State struct {
	Version int       `json:"version"`
	ID      string    `json:"id"`
	Bundle  string    `json:"bundle"`
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner,omitempty"`
	// InitPid and InitStartTime identify the init process; the start time
	// (clock ticks since boot, /proc/PID/stat field 22) tells a recycled
	// pid from ours, so we never signal a stranger.
	InitPid       int    `json:"initPid"`
	InitStartTime uint64 `json:"initStartTime"`
	// CgroupPaths are the container's cgroup directories.
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	// Namespaces are the spec's namespaces, for exec to join the same set.
	Namespaces []specs.LinuxNamespace `json:"namespaces"`
	// Annotations and Hooks are the parts of the spec later commands need
	// (state output, poststart and poststop). The whole spec stays in the
	// bundle: like runc, exec reads process defaults from there.
	Annotations map[string]string `json:"annotations,omitempty"`
	Hooks       *specs.Hooks      `json:"hooks,omitempty"`
	// NoNewKeyring, the seccomp profile and the memory policy are
	// remembered for exec.
	NoNewKeyring bool                     `json:"noNewKeyring,omitempty"`
	Seccomp      *specs.LinuxSeccomp      `json:"seccomp,omitempty"`
	MemoryPolicy *specs.LinuxMemoryPolicy `json:"memoryPolicy,omitempty"`
}

// loadState reads dir/state.json.
func loadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, stateFile), err)
	}
	if s.Version > stateVersion {
		return nil, fmt.Errorf("state of container %s was written by a newer xrunc (version %d)", s.ID, s.Version)
	}
	return &s, nil
}

func (s *State) save(dir string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	// /run is a tmpfs: the rename is atomic and there is nothing to fsync.
	return atomicfile.WriteFile(filepath.Join(dir, stateFile), b, 0o600, false)
}

// initAlive reports whether the recorded init still runs. A zombie counts
// as stopped: it has exited, only nobody has reaped it yet.
func (s *State) initAlive() bool {
	if s.InitPid <= 0 {
		return false
	}
	st, err := proc.ReadStat(s.InitPid)
	if err != nil {
		return false
	}
	return st.StartTime == s.InitStartTime && !st.Exited()
}

// openInit returns a pidfd for the init if it is still ours, so signals
// cannot reach a process that reused its pid in between.
func (s *State) openInit() (int, error) {
	if s.InitPid <= 0 {
		return -1, errNotRunning
	}
	fd, err := unix.PidfdOpen(s.InitPid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return -1, errNotRunning
		}
		return -1, fmt.Errorf("pidfd_open %d: %w", s.InitPid, err)
	}
	// The pidfd pins the process; if the start time matches now, the fd
	// refers to our init for good.
	if !s.initAlive() {
		unix.Close(fd)
		return -1, errNotRunning
	}
	return fd, nil
}

// hookState is the OCI state given to hooks on stdin.
func (s *State) hookState(status specs.ContainerState, pid int) *specs.State {
	return &specs.State{Version: version.OCISpec, ID: s.ID, Status: status, Pid: pid, Bundle: s.Bundle, Annotations: s.Annotations}
}

// hooks returns the container's hooks of one kind.
func (s *State) hooks(kind string) []specs.Hook {
	return hooks.Of(&specs.Spec{Hooks: s.Hooks}, kind)
}
