package xd

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startRegistry runs Debian's docker-registry on a free 127.0.0.1 port with
// its storage in a temp dir; it is stopped by pid at cleanup.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("skipped: docker-registry not installed (apt-get install docker-registry)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
`, filepath.Join(dir, "data"), addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", config)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("docker-registry log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("docker-registry did not come up")
	return ""
}

// push copies the OCI test archive into the registry with skopeo.
func push(t *testing.T, archive, dest string) {
	t.Helper()
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skipped: skopeo not installed (apt-get install skopeo)")
	}
	out, err := exec.Command(skopeo, "copy", "--dest-tls-verify=false", "oci-archive:"+archive, "docker://"+dest).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy to %s: %v\n%s", dest, err, out)
	}
}

func TestPull(t *testing.T) {
	d := newDaemon(t)
	addr := startRegistry(t)
	oci, _ := images(t)
	ref := addr + "/test/busybox:1"
	push(t, oci, ref)

	out := d.ok("images", "pull", ref)
	if !strings.Contains(out, ref) {
		t.Fatalf("pull output does not name the image:\n%s", out)
	}
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
