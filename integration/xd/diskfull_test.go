package xd

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// TestFullDisk: with xd's root full, an import fails saying so and leaves
// no blob; a container's output is dropped (xd says so once) without
// spoiling its log, which takes output again once there is room.
func TestFullDisk(t *testing.T) {
	d := newDaemon(t, withRootOnTmpfs("48m"))
	d.importImage()
	d.ok("run", "-d", "--name", "talker", testImage, "sh", "-c", "i=0; while :; do i=$((i+1)); echo line $i; sleep 0.02; done")
	d.waitLog("talker", "line 3\n")

	filler := filepath.Join(d.root, "filler")
	fill(t, filler)
	blobs := d.countBlobs()
	_, errOut, code := d.xctl("images", "import", "--name", "xstack.local/zstd:full", zstdImage(t))
	if code == 0 || !strings.Contains(errOut, "no space left on device") {
		t.Errorf("import on a full disk: exit %d, stderr %q; want it refused for want of space", code, errOut)
	}
	if n := d.countBlobs(); n != blobs {
		t.Errorf("%d blobs after the failed import, want the %d before", n, blobs)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.logs(), "container log: write failed") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // lines are dropped meanwhile
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(d.logs(), "container log: writing again") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(d.logs(), "container log: write failed"); n != 1 {
		t.Errorf("xd said %d times that the log could not be written, want once", n)
	}
	if !strings.Contains(d.logs(), "container log: writing again") {
		t.Fatalf("xd never said the log is written again")
	}
	d.ok("kill", "talker")
	d.waitStatus("talker", xdv1.Status_STOPPED)
	out, errOut, code := d.xctl("logs", "talker")
	if code != 0 {
		t.Fatalf("logs after a full disk: exit %d, stderr %q", code, errOut)
	}
	// Numbered lines, whole, with a gap where the disk was full.
	prev, gaps := 0, 0
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		n, err := strconv.Atoi(strings.TrimPrefix(line, "line "))
		if err != nil || n <= prev {
			t.Fatalf("log line %q after line %d: want the next numbered line", line, prev)
		}
		if n != prev+1 {
			gaps++
		}
		prev = n
	}
	if gaps != 1 {
		t.Errorf("%d gaps in the numbered lines, want the one of the full disk", gaps)
	}
	// With room again, the import works.
	d.ok("images", "import", "--name", "xstack.local/zstd:full", zstdImage(t))
}

// fill writes a file at path until its filesystem has no room left.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

// waitLog waits until the container's log holds want.
func (d *daemon) waitLog(id, want string) {
	d.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, _ := d.xctl("logs", id)
		if strings.Contains(out, want) {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("log of %s never held %q: %q", id, want, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLogRotation: a chatty container's log stays within log_max_size ×
// log_max_files, reads back as one run of its last lines, is followed
// across rotations without a line lost, and goes with the container.
func TestLogRotation(t *testing.T) {
	d := newDaemon(t, withConfig("log_max_size = \"4KiB\"\nlog_max_files = 3\n"))
	d.importImage()
	d.ok("run", "--name", "chatty", testImage, "sh", "-c", "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo line $i; done")
	logs, _ := filepath.Glob(filepath.Join(d.root, "logs", "default", "chatty.log*"))
	if len(logs) != 3 {
		t.Errorf("log files %v, want 3", logs)
	}
	for _, f := range logs {
		// A chunk read in one go larger than the size is a file alone.
		if b, err := os.ReadFile(f); err != nil || len(b) > 4096 && bytes.Count(b, []byte("\n")) > 1 {
			t.Errorf("%s: %d bytes (%v), want at most 4 KiB", f, len(b), err)
		}
	}
	numbers := numberedLines(t, d.ok("logs", "chatty"))
	if len(numbers) == 0 || numbers[0] == 1 || numbers[len(numbers)-1] != 3000 {
		t.Errorf("logs: lines %d to %d, want the last ones up to 3000", numbers[0], numbers[len(numbers)-1])
	}
	if last := numberedLines(t, d.ok("logs", "-n", "3", "chatty")); len(last) != 3 || last[0] != 2998 {
		t.Errorf("logs -n 3: %v", last)
	}

	// Slow enough for a follower polling 10 times a second, fast enough
	// for a rotation every few hundred milliseconds.
	d.ok("run", "-d", "--name", "steady", testImage, "sh", "-c", "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo line $i; usleep 5000; done")
	followed := numberedLines(t, d.ok("logs", "-f", "steady"))
	if len(followed) != 300 || followed[0] != 1 {
		t.Errorf("logs -f read %d lines from %v, want 1 to 300", len(followed), followed[:min(len(followed), 1)])
	}
	if rotated, _ := filepath.Glob(filepath.Join(d.root, "logs", "default", "steady.log.*")); len(rotated) != 2 {
		t.Errorf("steady's rotated files %v, want 2 (it rotated while followed)", rotated)
	}
	d.ok("rm", "chatty", "steady")
	if left, _ := filepath.Glob(filepath.Join(d.root, "logs", "default", "*")); len(left) != 0 {
		t.Errorf("rm left logs %v", left)
	}
}

// numberedLines reads "line N" lines, failing on anything else or on a
// line that is not the one after the previous.
func numberedLines(t *testing.T, out string) []int {
	t.Helper()
	var numbers []int
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		n, err := strconv.Atoi(strings.TrimPrefix(line, "line "))
		if err != nil || len(numbers) > 0 && n != numbers[len(numbers)-1]+1 {
			t.Fatalf("line %q after %v: want the next numbered line", line, numbers[max(0, len(numbers)-3):])
		}
		numbers = append(numbers, n)
	}
	return numbers
}
