package xd

import (
	"net"
	"strings"
	"testing"

	"github.com/xstack/xstack/pkg/image/registrytest"
)

// registryWithImage starts a registry (https only withTLS) holding the test
// image as test/busybox:TAG and returns its host:port and the reference.
func registryWithImage(t *testing.T, withTLS bool, tag string) (addr, ref string) {
	t.Helper()
	addr = registrytest.Start(t, withTLS)
	oci, _ := images(t)
	ref = addr + "/test/busybox:" + tag
	registrytest.Push(t, "oci-archive:"+oci, ref, false)
	return addr, ref
}

// pull pulls ref through xctl and checks that the output names it.
func (d *daemon) pull(ref string) {
	d.t.Helper()
	if out := d.ok("images", "pull", ref); !strings.Contains(out, ref) {
		d.t.Fatalf("pull output does not name the image:\n%s", out)
	}
}

func TestPull(t *testing.T) {
	d := newDaemon(t)
	addr, ref := registryWithImage(t, false, "1")
	d.pull(ref)
	if got := d.ok("run", "--rm", ref, "echo", "pulled"); got != "pulled\n" {
		t.Fatalf("run pulled image: %q", got)
	}
	// A second pull finds every blob present.
	d.ok("images", "pull", ref)
	if ls := d.ok("images", "ls"); !strings.Contains(ls, ref) {
		t.Fatalf("images ls:\n%s", ls)
	}

	// Unknown tag, and a registry that is down: clear errors, nothing named.
	if _, errOut, code := d.xctl("images", "pull", addr+"/test/busybox:nope"); code == 0 || !strings.Contains(errOut, "nope") {
		t.Fatalf("pull of a missing tag: exit %d stderr %q", code, errOut)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := l.Addr().String()
	l.Close()
	if _, errOut, code := d.xctl("images", "pull", down+"/test/busybox:1"); code == 0 || !strings.Contains(errOut, down) {
		t.Fatalf("pull from a registry that is down: exit %d stderr %q", code, errOut)
	}
	if ls := d.ok("images", "ls", "-q"); strings.Count(strings.TrimSpace(ls), "\n") != 0 {
		t.Fatalf("failed pulls named images:\n%s", ls)
	}
}

// TestZstdLayers: an image whose layer is zstd-compressed (what
// containerd 1.5+ runs too) imports, pulls from a registry, and runs.
func TestZstdLayers(t *testing.T) {
	d := newDaemon(t)
	archive := zstdImage(t)
	if out := d.ok("images", "import", archive); !strings.Contains(out, testImage) {
		t.Fatalf("import printed %q", out)
	}
	if got := d.ok("run", "--rm", testImage, "echo", "from zstd"); got != "from zstd\n" {
		t.Fatalf("run imported zstd image: %q", got)
	}
	d.ok("images", "rm", testImage)

	addr := registrytest.Start(t, false)
	ref := addr + "/test/busybox:zstd"
	registrytest.Push(t, "oci-archive:"+archive, ref, false)
	d.pull(ref)
	if got := d.ok("run", "--rm", ref, "echo", "pulled zstd"); got != "pulled zstd\n" {
		t.Fatalf("run pulled zstd image: %q", got)
	}
}

// TestPullTLS: xctl pulls from a loopback registry that speaks only https
// (a self-signed certificate, as such registries have) without any flag.
func TestPullTLS(t *testing.T) {
	d := newDaemon(t)
	_, ref := registryWithImage(t, true, "tls")
	d.pull(ref)
	if got := d.ok("run", "--rm", ref, "echo", "over https"); got != "over https\n" {
		t.Fatalf("run pulled image: %q", got)
	}
	// Forced to plain http it cannot: the registry has no http side.
	d.ok("images", "rm", ref)
	if _, errOut, code := d.xctl("images", "pull", "--plain-http", ref); code == 0 {
		t.Fatalf("plain-http pull from an https-only registry succeeded: %q", errOut)
	}
}
