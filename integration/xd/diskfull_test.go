package xd

import (
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
