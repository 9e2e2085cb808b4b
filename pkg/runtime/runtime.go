// Package runtime is xrunc's container library: creating, starting,
// signalling, executing into and deleting containers, and their persisted
// state. The xrunc command line (cmd/xrunc) is a thin layer over it; the
// code that runs inside the container is pkg/runtime/initp.
//
// Internal to xstack; no API stability.
package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/cgroups"
)

// Errors whose text callers (containerd, podman, scripts written for runc)
// match on. Keep the words.
var (
	ErrExist        = errors.New("container with given ID already exists")
	ErrNotExist     = errors.New("container does not exist")
	ErrInvalidID    = errors.New("invalid container ID format")
	errNotRunning   = errors.New("container not running")
	errStartStopped = errors.New("cannot start a container that has stopped")
	errStartRunning = errors.New("cannot start an already running container")
)

// IsNotRunning reports the "container not running" condition.
func IsNotRunning(err error) bool { return errors.Is(err, errNotRunning) }

// DefaultRoot is where state lives unless --root says otherwise.
const DefaultRoot = "/run/xrunc"

// Runtime is one state root.
type Runtime struct {
	Root string
	Log  *slog.Logger
}

// maxIDLength bounds ids: they become directory names and cgroup names.
const maxIDLength = 1024

// ValidateID checks a container id the way runc does: letters, digits and
// "_+-.", not "." or "..", at most 1024 bytes. Ids are used as path names,
// so anything else could escape the state root.
func ValidateID(id string) error {
	if len(id) > maxIDLength {
		return fmt.Errorf("%w: id is longer than %d bytes", ErrInvalidID, maxIDLength)
	}
	if id == "" || id == "." || id == ".." {
		return ErrInvalidID
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_+-.", c) >= 0
		if !ok {
			return ErrInvalidID
		}
	}
	return nil
}

func (r *Runtime) log() *slog.Logger {
	if r.Log == nil {
		return slog.Default()
	}
	return r.Log
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }

// ensureRoot creates the state root, accessible only to its owner.
func (r *Runtime) ensureRoot() error {
	if err := os.MkdirAll(r.Root, 0o700); err != nil {
		return fmt.Errorf("create state root %s: %w", r.Root, err)
	}
	return nil
}

// Container is a handle on one container's state.
type Container struct {
	rt    *Runtime
	id    string
	dir   string
	state *State
	lock  *os.File // held while mutating, see lockDir
	// initProc is set when this process created the container: the init
	// is then our child and can be waited for (xrunc run).
	initProc *os.Process
}

// Load opens an existing container.
func (r *Runtime) Load(id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := r.dir(id)
	st, err := loadState(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNotExist
		}
		return nil, err
	}
	return &Container{rt: r, id: id, dir: dir, state: st}, nil
}

// ID returns the container id.
func (c *Container) ID() string { return c.id }

// State returns the persisted state.
func (c *Container) State() *State { return c.state }

// Status computes the current status from the init process and the state
// directory.
func (c *Container) Status() Status {
	if !c.state.initAlive() {
		return Stopped
	}
	// Paused before created: runc reports a frozen created container as
	// paused.
	if frozen, err := c.cgroup().Frozen(); err == nil && frozen {
		return Paused
	}
	if _, err := os.Lstat(filepath.Join(c.dir, fifoFile)); err == nil {
		return Created
	}
	return Running
}

func (c *Container) cgroup() cgroups.Manager {
	return cgroups.Load(c.state.CgroupPaths)
}

// lockDir takes an exclusive lock on the container's state directory so
// that concurrent xrunc invocations on one id serialize. The lock is
// released when the process exits or on unlock.
func lockDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNotExist
		}
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// Lock serializes mutations of this container against other xrunc
// processes, then re-reads the state another one may have changed.
func (c *Container) Lock() error {
	f, err := lockDir(c.dir)
	if err != nil {
		return err
	}
	st, err := loadState(c.dir)
	if err != nil {
		f.Close()
		if errors.Is(err, os.ErrNotExist) {
			return ErrNotExist
		}
		return err
	}
	c.lock, c.state = f, st
	return nil
}

// Unlock releases Lock.
func (c *Container) Unlock() {
	if c.lock != nil {
		c.lock.Close()
		c.lock = nil
	}
}

// List returns every container under the root, sorted by id. Directories
// without a readable state are skipped.
func (r *Runtime) List() ([]*Container, error) {
	entries, err := os.ReadDir(r.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read state root %s: %w", r.Root, err)
	}
	var out []*Container
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := r.Load(e.Name())
		if err != nil {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, nil
}

// Owner returns the user name owning the container's state directory.
func (c *Container) Owner() string {
	st, err := os.Stat(c.dir)
	if err != nil {
		return ""
	}
	uid := st.Sys().(*syscall.Stat_t).Uid
	if uid == 0 {
		return "root"
	}
	return "#" + strconv.FormatUint(uint64(uid), 10)
}

// RemoveLeftovers removes the state directory of a container whose create
// was killed before it wrote any state. A missing directory is not an error.
func (r *Runtime) RemoveLeftovers(id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	dir := r.dir(id)
	lock, err := lockDir(dir)
	if err != nil {
		if errors.Is(err, ErrNotExist) {
			return nil
		}
		return err
	}
	defer lock.Close()
	if _, err := loadState(dir); err == nil {
		return fmt.Errorf("container %s has state; delete it instead", id)
	}
	return os.RemoveAll(dir)
}
