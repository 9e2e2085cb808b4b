package xd

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// slowly runs xctl with stdin, and reads its stdout only after a pause
// longer than ttrpc's one second of patience with a full stream.
func (d *daemon) slowly(stdin []byte, args ...string) (stdout []byte, stderr string, err error) {
	d.t.Helper()
	cmd := exec.Command(binary(d.t, "xctl"), append([]string{"--address", d.address}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.StdoutPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	stdout, _ = io.ReadAll(out)
	return stdout, errOut.String(), cmd.Wait()
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// TestSlowReaders: output to a reader that pauses (a pager), and stdin to
// a container that does not read it yet, lose nothing: ttrpc has no flow
// control and drops a stream left full for a second, so xd and xctl
// acknowledge what they consumed (pkg/flowctl).
func TestSlowReaders(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	out, errOut, err := d.slowly(nil, "run", "--rm", testImage, "sh", "-c", "yes | head -c 3000000")
	if err != nil || len(out) != 3000000 {
		t.Errorf("run into a paused reader: %d bytes, %v, stderr %q", len(out), err, errOut)
	}

	d.ok("run", "--name", "spew", testImage, "sh", "-c", "yes | head -c 3000000")
	out, errOut, err = d.slowly(nil, "logs", "spew")
	if err != nil || len(out) != 3000000 {
		t.Errorf("logs into a paused reader: %d bytes, %v, stderr %q", len(out), err, errOut)
	}

	input := make([]byte, 2<<20)
	rand.Read(input)
	want := md5hex(input)
	// The container reads its stdin only after a pause.
	got, errOut, code := d.xctlIn(input, "run", "--rm", "-i", testImage, "sh", "-c", "sleep 2; md5sum")
	if code != 0 || !strings.HasPrefix(got, want) {
		t.Errorf("stdin to a container that reads late: exit %d, %q (stderr %q), want %s", code, got, errOut, want)
	}
	// Both at once: cat's output waits for the paused reader, and cat
	// stops reading its stdin meanwhile.
	out, errOut, err = d.slowly(input, "run", "--rm", "-i", testImage, "cat")
	if err != nil || md5hex(out) != want {
		t.Errorf("stdin through cat into a paused reader: %d bytes, %v, stderr %q", len(out), err, errOut)
	}
}
