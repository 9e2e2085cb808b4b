package oom

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/cgroups"
)

// Helpers shared with the root tests.

// openFDs counts the test process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// warmUpPoller makes the runtime create its poller's own descriptors (which
// live as long as the process) before a test counts descriptors.
func warmUpPoller(t *testing.T) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
}

// counter is an onOOM that counts its calls.
type counter struct{ n atomic.Int64 }

func (c *counter) onOOM()       { c.n.Add(1) }
func (c *counter) calls() int64 { return c.n.Load() }

// waitCalls waits until c has been called want times.
func (c *counter) waitCalls(t *testing.T, want int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for c.calls() < want {
		if time.Now().After(deadline) {
			t.Fatalf("onOOM called %d times after %v, want %d", c.calls(), timeout, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// requireNoCall checks that c stays at want calls for a while.
func (c *counter) requireCalls(t *testing.T, want int64, wait time.Duration) {
	t.Helper()
	time.Sleep(wait)
	if got := c.calls(); got != want {
		t.Fatalf("onOOM called %d times, want %d", got, want)
	}
}

func TestParseOOMKill(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    uint64
		ok      bool
	}{
		{"low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 1\n", 2, true},
		{"oom_group_kill 5\noom_kill 7", 7, true}, // oom_group_kill is another key
		{"oom_kill 18446744073709551615\n", 1<<64 - 1, true},
		{"  oom_kill   4  \n", 4, true},
		{"low 0\nhigh 0\nmax 0\noom 0\n", 0, false}, // no key
		{"", 0, false}, // caught between truncate and write
		{"oom_kill x\n", 0, false},
		{"oom_kill\n", 0, false},
	} {
		got, ok := parseOOMKill([]byte(tc.content))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseOOMKill(%q) = %d, %v; want %d, %v", tc.content, got, ok, tc.want, tc.ok)
		}
	}
}

func TestKillCounter(t *testing.T) {
	var c killCounter
	for i, step := range []struct {
		content string
		grew    bool
	}{
		{"oom 0\noom_kill 0\n", false}, // starting point
		{"oom 1\noom_kill 0\n", false}, // an OOM without a kill (say, the victim was already exiting)
		{"oom 2\noom_kill 1\n", true},
		{"max 9\noom 2\noom_kill 1\n", false}, // other counters changed
		{"", false},                           // torn read: ignored
		{"oom 5\noom_kill 4\n", true},         // grew by 3 between reads: one event
		{"oom 5\noom_kill 4\n", false},
		{"oom_kill 1\n", false}, // went down (a rewritten file): new starting point
		{"oom_kill 2\n", true},
	} {
		if got := c.observe([]byte(step.content)); got != step.grew {
			t.Errorf("step %d: observe(%q) = %v, want %v", i, step.content, got, step.grew)
		}
	}
	// A counter that starts at a non-zero count only reports later kills.
	var d killCounter
	d.observe([]byte("oom_kill 3\n"))
	if d.observe([]byte("oom_kill 3\n")) || !d.observe([]byte("oom_kill 4\n")) {
		t.Error("kills before the starting point were reported, or later ones missed")
	}
}

func TestWatchRemoved(t *testing.T) {
	event := func(mask uint32, name string) []byte {
		b := make([]byte, unix.SizeofInotifyEvent+len(name))
		binary.NativeEndian.PutUint32(b[0:4], 1)
		binary.NativeEndian.PutUint32(b[4:8], mask)
		binary.NativeEndian.PutUint32(b[12:16], uint32(len(name)))
		copy(b[unix.SizeofInotifyEvent:], name)
		return b
	}
	modify := event(unix.IN_MODIFY, "")
	ignored := event(unix.IN_IGNORED, "")
	named := event(unix.IN_MODIFY, "name\x00\x00\x00\x00")
	for _, tc := range []struct {
		name string
		buf  []byte
		want bool
	}{
		{"modify", modify, false},
		{"modify twice", append(append([]byte{}, modify...), modify...), false},
		{"ignored after modify", append(append([]byte{}, modify...), ignored...), true},
		{"ignored after a named event", append(append([]byte{}, named...), ignored...), true},
		{"truncated", ignored[:8], false},
	} {
		if got := watchRemoved(tc.buf); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestWatchNilCallback(t *testing.T) {
	if _, err := Watch(cgroups.Load(map[string]string{"": t.TempDir()}), nil); err == nil {
		t.Fatal("no error")
	}
}

func TestWatchNoMemoryController(t *testing.T) {
	for _, tc := range []struct {
		name  string
		paths map[string]string
	}{
		{"v1 without memory", map[string]string{"cpu": t.TempDir(), "pids": t.TempDir(), "": t.TempDir()}},
		{"v2 without memory.events", map[string]string{"": t.TempDir()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Watch(cgroups.Load(tc.paths), func() {})
			if !errors.Is(err, cgroups.ErrControllerMissing) || !strings.Contains(err.Error(), "memory") {
				t.Fatalf("err = %v, want ErrControllerMissing naming memory", err)
			}
		})
	}
	_, err := Watch(cgroups.Load(map[string]string{"": filepath.Join(t.TempDir(), "gone")}), func() {})
	if err == nil || errors.Is(err, cgroups.ErrControllerMissing) {
		t.Fatalf("cgroup gone: err = %v, want a plain open error", err)
	}
}

// fakeEvents is a plain file standing in for a cgroup v2 memory.events.
type fakeEvents struct {
	dir string
}

func newFakeEvents(t *testing.T, oomKill int) fakeEvents {
	f := fakeEvents{dir: t.TempDir()}
	f.write(t, oomKill)
	return f
}

// write rewrites the file in place (same inode, so the watch and the open
// descriptor see it), as the kernel updates memory.events.
func (f fakeEvents) write(t *testing.T, oomKill int) {
	t.Helper()
	content := "low 0\nhigh 0\nmax 7\noom 9\noom_kill " + strconv.Itoa(oomKill) + "\noom_group_kill 0\n"
	if err := os.WriteFile(filepath.Join(f.dir, "memory.events"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWatchV2File drives the v2 code path (inotify on memory.events, pread,
// comparing oom_kill) with a plain temporary file whose content the test
// rewrites. A real cgroup v2 memory controller cannot be had on this
// machine: the hybrid host's cgroup2 tree at /sys/fs/cgroup/unified has
// no memory controller (it is bound to the v1 hierarchy), so no cgroup there
// has memory.events (TestWatchRealV2NoMemory checks that). cgroupfs
// (kernfs) reports each change of memory.events to inotify as IN_MODIFY,
// just as a write to a regular file does, so the watch sees the same events.
func TestWatchV2File(t *testing.T) {
	warmUpPoller(t)
	before := openFDs(t)

	ev := newFakeEvents(t, 3) // kills before the watch do not count
	var c counter
	stop, err := Watch(cgroups.Load(map[string]string{"": ev.dir}), c.onOOM)
	if err != nil {
		t.Fatal(err)
	}
	c.requireCalls(t, 0, 100*time.Millisecond)
	ev.write(t, 4)
	c.waitCalls(t, 1, 5*time.Second)
	ev.write(t, 4) // modified, no new kill
	c.requireCalls(t, 1, 200*time.Millisecond)
	ev.write(t, 6)
	c.waitCalls(t, 2, 5*time.Second)
	c.requireCalls(t, 2, 100*time.Millisecond)

	stop()
	stop() // twice is fine
	ev.write(t, 9)
	c.requireCalls(t, 2, 200*time.Millisecond) // nothing after stop
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before Watch, %d after stop", before, after)
	}
}

// TestWatchV2WatchDropped: when the kernel drops the inotify watch
// (IN_IGNORED: the watched inode went away), nothing can fire any more and
// the goroutine ends; stop still cleans up. The test drops the watch itself,
// which makes the kernel send the same IN_IGNORED.
func TestWatchV2WatchDropped(t *testing.T) {
	ev := newFakeEvents(t, 0)
	var c counter
	w, err := watchV2(ev.dir, c.onOOM)
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop()
	conn, err := w.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var rmErr error
	if err := conn.Control(func(fd uintptr) {
		_, rmErr = unix.InotifyRmWatch(int(fd), 1) // the first watch of an instance
	}); err != nil {
		t.Fatal(err)
	}
	if rmErr != nil {
		t.Fatal(rmErr)
	}
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		t.Fatal("watch goroutine still running after IN_IGNORED")
	}
	if c.calls() != 0 {
		t.Errorf("onOOM called %d times", c.calls())
	}
}

func threads(t *testing.T) int {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads: in /proc/self/status")
	return 0
}

// TestWatchParksNoThread: the watch descriptors are in the runtime poller
// (deadlines work only there), and many idle watches do not hold an OS
// thread each, as blocking reads would.
func TestWatchParksNoThread(t *testing.T) {
	const n = 64
	ev := newFakeEvents(t, 0)
	before := threads(t)
	var ws []*watcher
	defer func() {
		for _, w := range ws {
			w.stop()
		}
	}()
	for range n {
		w, err := watchV2(ev.dir, func() {})
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
		if err := w.f.SetReadDeadline(time.Time{}); err != nil {
			t.Fatalf("watch descriptor not in the poller: %v", err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let every goroutine block in Read
	if after := threads(t); after-before >= n/2 {
		t.Errorf("%d idle watches took %d threads (%d -> %d)", n, after-before, before, after)
	}
	// And they all still work.
	var c counter
	w, err := watchV2(ev.dir, c.onOOM)
	if err != nil {
		t.Fatal(err)
	}
	ws = append(ws, w)
	ev.write(t, 1)
	c.waitCalls(t, 1, 5*time.Second)
}
