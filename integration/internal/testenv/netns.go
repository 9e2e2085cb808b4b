package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// NewNetNS creates a network namespace pinned by a bind mount of its nsfs
// file on a file in a temp dir, and returns that path; the mount is removed
// at cleanup. The namespace is made by a child (util-linux unshare), never
// by a thread of the test process: Go could fork later children from a
// thread left in the new namespace.
func NewNetNS(t testing.TB) string {
	t.Helper()
	dir := TempDir(t, 0o755)
	p := filepath.Join(dir, "netns")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("unshare", "--net="+p, "true").CombinedOutput()
	if err != nil {
		t.Fatalf("unshare --net=%s: %v\n%s", p, err, out)
	}
	OnCleanup(t, func() {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", p, err)
		}
	})
	return p
}

// NsInode is the inode of a namespace file (bind-mounted or under
// /proc/PID/ns), which is the number in its "net:[N]" link text.
func NsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}
