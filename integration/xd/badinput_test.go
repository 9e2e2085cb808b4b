package xd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// countBlobs is how many blobs xd's content store holds.
func (d *daemon) countBlobs() int {
	blobs, _ := os.ReadDir(filepath.Join(d.root, "content", "blobs", "sha256"))
	return len(blobs)
}

func TestBadInput(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	blobs := d.countBlobs()

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown image", []string{"run", "--rm", "xstack.local/nope:1", "true"}, "not found"},
		{"bad reference", []string{"run", "--rm", "UPPER/Case::x", "true"}, "invalid"},
		{"missing command", []string{"run", "--rm", "--entrypoint", "", testImage}, "no command specified"},
		{"bad volume", []string{"run", "--rm", "-v", "/nonexistent-xd-test:/data", testImage, "true"}, "nonexistent-xd-test"},
		{"relative workdir", []string{"run", "--rm", "-w", "tmp", testImage, "true"}, "workdir"},
		{"bad network", []string{"run", "--rm", "--net", "bridge", testImage, "true"}, "bridge"},
		{"unknown user", []string{"run", "--rm", "-u", "nosuchuser", testImage, "true"}, "nosuchuser"},
		{"missing binary", []string{"run", "--rm", testImage, "/no/such/binary"}, "/no/such/binary"},
		{"kill unknown", []string{"kill", "ghost"}, "ghost"},
		{"import missing", []string{"images", "import", "/nonexistent-xd-test.tar"}, "nonexistent-xd-test.tar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := d.xctl(tc.args...)
			if code == 0 {
				t.Fatalf("xctl %v succeeded", tc.args)
			}
			if !strings.Contains(strings.ToLower(errOut), strings.ToLower(tc.want)) {
				t.Fatalf("xctl %v: stderr %q does not name %q", tc.args, errOut, tc.want)
			}
			if !strings.HasPrefix(errOut, "xctl: ") {
				t.Errorf("error not in xctl's format: %q", errOut)
			}
		})
	}
	// Nothing was left by the failures: no container, bundle or mount.
	if out := strings.TrimSpace(d.ok("ps", "-a", "-q")); out != "" {
		// run --rm of a missing binary removes its container too.
		t.Fatalf("failed runs left containers: %q", out)
	}
	if b, _ := os.ReadDir(filepath.Join(d.state, "bundles", "default")); len(b) != 0 {
		t.Fatalf("failed runs left bundles: %v", b)
	}
	if m := mountsUnder(d.dir); len(m) != 0 {
		t.Fatalf("failed runs left mounts: %v", m)
	}

	// A duplicate name is refused and the first container is untouched.
	d.ok("create", "--name", "dup", testImage, "true")
	if _, errOut, code := d.xctl("create", "--name", "dup", testImage, "true"); code == 0 || !strings.Contains(errOut, "already in use") {
		t.Fatalf("duplicate name: exit %d stderr %q", code, errOut)
	}
	d.ok("rm", "dup")

	// A corrupt archive names nothing and leaves no blob behind.
	oci, _ := images(t)
	data, err := os.ReadFile(oci)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(t.TempDir(), "corrupt.tar")
	if err := os.WriteFile(corrupt, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := d.xctl("images", "import", corrupt); code == 0 {
		t.Fatal("truncated archive imported")
	} else if !strings.Contains(errOut, "corrupt.tar") {
		t.Errorf("error does not name the archive: %q", errOut)
	}
	if n := d.countBlobs(); n != blobs {
		t.Fatalf("failed import left blobs: %d, had %d", n, blobs)
	}
}
