package oom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/cgroups"
)

// Watch calls onOOM each time the kernel's OOM killer acts in the
// container's memory cgroup, until stop is called. v1: an eventfd registered
// on memory.oom_control through cgroup.event_control; v2: inotify on
// memory.events, firing when its oom_kill count grows. One goroutine per
// watch, the fd pollable (no OS thread parked), everything closed by stop.
//
// The manager is v2 when Paths has only the "" key; a v1 (or hybrid)
// manager is watched through its "memory" hierarchy. Without a memory
// controller (v1: not mounted; v2: no memory.events, so not enabled for the
// cgroup) Watch returns an error wrapping cgroups.ErrControllerMissing that
// names it.
//
// onOOM runs on the watch's goroutine, one call at a time. Events the
// kernel reports together (several eventfd signals read at once, an
// oom_kill count that grew by more than one between two reads) make one
// call. On v1 the kernel signals when the cgroup enters OOM, before its
// victim dies (also with oom_kill_disable set, when nothing is killed, and
// at once if the cgroup is under OOM when the watch starts); on v2 when a
// victim has been killed. Once the cgroup is
// removed the watch goes quiet (the kernel's removal signal on v1 is not
// reported as an OOM) until stop.
//
// stop closes the descriptors and returns once the goroutine has ended, so
// onOOM is not called after stop returns; onOOM must therefore not call stop
// itself. stop may be called any number of times.
func Watch(m cgroups.Manager, onOOM func()) (stop func(), err error) {
	if onOOM == nil {
		return nil, errors.New("watch oom: nil callback")
	}
	paths := m.Paths()
	var w *watcher
	if dir, ok := paths[""]; ok && len(paths) == 1 {
		w, err = watchV2(dir, onOOM)
	} else if dir, ok := paths["memory"]; ok {
		w, err = watchV1(dir, onOOM)
	} else {
		err = fmt.Errorf("watch oom: %w: memory is not mounted", cgroups.ErrControllerMissing)
	}
	if err != nil {
		return nil, err
	}
	return w.stop, nil
}

// watcher is one watch: a goroutine reading f until stop closes it.
type watcher struct {
	// f is the non-blocking eventfd (v1) or inotify descriptor (v2), in
	// the runtime's poller: Close wakes a pending Read with os.ErrClosed.
	f *os.File
	// eventsFD is v2's memory.events, read by the goroutine; -1 on v1.
	eventsFD int
	done     chan struct{}
	once     sync.Once
}

func (w *watcher) stop() {
	w.once.Do(func() {
		_ = w.f.Close()
		<-w.done
		if w.eventsFD >= 0 {
			_ = unix.Close(w.eventsFD)
		}
	})
}

// pollable makes fd (created with O_NONBLOCK) an *os.File the runtime
// poller waits on, so a blocked Read parks only the goroutine.
func pollable(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) }

func watchV1(dir string, onOOM func()) (*watcher, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watch oom: eventfd: %w", err)
	}
	f := pollable(efd, "oom eventfd")
	if err := registerV1(dir, efd); err != nil {
		_ = f.Close()
		return nil, err
	}
	w := &watcher{f: f, eventsFD: -1, done: make(chan struct{})}
	go w.runV1(dir, onOOM)
	return w, nil
}

// registerV1 asks the kernel to signal efd on OOM in the memory cgroup dir
// ("<eventfd> <fd of memory.oom_control>" into cgroup.event_control). The
// registration holds on to the eventfd only and ends when it is closed, so
// memory.oom_control is closed again right away.
func registerV1(dir string, efd int) error {
	control := filepath.Join(dir, "memory.oom_control")
	cfd, err := unix.Open(control, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("watch oom: open %s: %w", control, err)
	}
	defer unix.Close(cfd)
	eventControl := filepath.Join(dir, "cgroup.event_control")
	f, err := os.OpenFile(eventControl, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("watch oom: %w", err)
	}
	_, err = f.WriteString(strconv.Itoa(efd) + " " + strconv.Itoa(cfd))
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("watch oom: register on %s: %w", eventControl, err)
	}
	return nil
}

func (w *watcher) runV1(dir string, onOOM func()) {
	defer close(w.done)
	var buf [8]byte
	for {
		n, err := w.f.Read(buf[:])
		if err != nil {
			return // closed by stop
		}
		if n != len(buf) {
			continue
		}
		signals := binary.NativeEndian.Uint64(buf[:])
		if cgroupGone(dir) {
			// The kernel signals once more when it removes the cgroup
			// (and drops the registration): that one is no OOM. An OOM
			// signal read on its own after the directory was unlinked
			// but before the removal signal came is lost with it; the
			// shim removes a cgroup only after its container has exited
			// and been handled, long after any OOM was read.
			if signals > 1 {
				onOOM()
			}
			return
		}
		onOOM()
	}
}

// cgroupGone tells whether the v1 memory cgroup dir has been removed. The
// kernel unlinks the directory before it sends the removal signal.
func cgroupGone(dir string) bool {
	var st unix.Stat_t
	err := unix.Stat(filepath.Join(dir, "memory.oom_control"), &st)
	return err == unix.ENOENT || err == unix.ENODEV
}

func watchV2(dir string, onOOM func()) (*watcher, error) {
	path := filepath.Join(dir, "memory.events")
	efd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT {
			var st unix.Stat_t
			if unix.Stat(dir, &st) == nil {
				return nil, fmt.Errorf("watch oom: %w: memory is not enabled in %s (no memory.events)", cgroups.ErrControllerMissing, dir)
			}
		}
		return nil, fmt.Errorf("watch oom: open %s: %w", path, err)
	}
	ifd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		_ = unix.Close(efd)
		return nil, fmt.Errorf("watch oom: inotify: %w", err)
	}
	f := pollable(ifd, "oom inotify")
	// cgroupfs reports every change of memory.events as IN_MODIFY.
	if _, err := unix.InotifyAddWatch(ifd, path, unix.IN_MODIFY); err != nil {
		_ = f.Close()
		_ = unix.Close(efd)
		return nil, fmt.Errorf("watch oom: inotify on %s: %w", path, err)
	}
	// Only kills after the watch is in place count: read the starting
	// point now, so none between the read and the watch is missed.
	var c killCounter
	buf := make([]byte, 1024)
	if content, err := pread(efd, buf); err == nil {
		c.observe(content)
	}
	w := &watcher{f: f, eventsFD: efd, done: make(chan struct{})}
	go w.runV2(&c, buf, onOOM)
	return w, nil
}

func (w *watcher) runV2(c *killCounter, buf []byte, onOOM func()) {
	defer close(w.done)
	events := make([]byte, 4096)
	for {
		n, err := w.f.Read(events)
		if err != nil {
			return // closed by stop
		}
		removed := watchRemoved(events[:n])
		if content, err := pread(w.eventsFD, buf); err == nil && c.observe(content) {
			onOOM()
		}
		if removed {
			return // memory.events is gone: nothing will fire any more
		}
	}
}

// watchRemoved tells whether a buffer of inotify events holds IN_IGNORED:
// the kernel dropped the watch because the file went away.
func watchRemoved(events []byte) bool {
	for len(events) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(events[4:8])
		nameLen := binary.NativeEndian.Uint32(events[12:16])
		if mask&unix.IN_IGNORED != 0 {
			return true
		}
		next := unix.SizeofInotifyEvent + int(nameLen)
		if next > len(events) {
			break
		}
		events = events[next:]
	}
	return false
}

// pread reads the file at offset 0 into buf.
func pread(fd int, buf []byte) ([]byte, error) {
	for {
		n, err := unix.Pread(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// killCounter follows the oom_kill count of memory.events.
type killCounter struct {
	last uint64
}

// observe takes the content of memory.events and reports whether oom_kill
// grew since the last call. Content without the key (say, a file being
// rewritten) changes nothing; a count that went down (a rewritten file,
// never cgroupfs) becomes the new starting point.
func (c *killCounter) observe(content []byte) bool {
	n, ok := parseOOMKill(content)
	if !ok {
		return false
	}
	grew := n > c.last
	c.last = n
	return grew
}

// parseOOMKill returns the value of the "oom_kill" line of memory.events.
func parseOOMKill(content []byte) (uint64, bool) {
	for len(content) > 0 {
		var line []byte
		line, content, _ = bytes.Cut(content, []byte{'\n'})
		key, val, ok := bytes.Cut(bytes.TrimSpace(line), []byte{' '})
		if !ok || string(key) != "oom_kill" {
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(val)), 10, 64)
		if err != nil {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
