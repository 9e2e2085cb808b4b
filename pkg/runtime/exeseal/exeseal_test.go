package exeseal

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("exeseal: the overlay view needs root (mount API); not root")
	}
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	var host unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &host); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		scratch string
		want    string // how the handle is protected
	}{
		{"overlay view", t.TempDir(), "read-only mount"},
		// overlayfs refuses a missing layer: the copy is the fallback.
		{"memfd fallback", filepath.Join(t.TempDir(), "missing"), "sealed memfd"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "read-only mount" {
				fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
				if err != nil {
					t.Skipf("no overlay view on this kernel: fsopen overlay: %v", err)
				}
				unix.Close(fd)
			}
			f, err := Open(tc.scratch)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got := protection(t, f); got != tc.want {
				t.Errorf("protection %q, want %q", got, tc.want)
			}
			path := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
			var st unix.Stat_t
			if err := unix.Stat(path, &st); err != nil {
				t.Fatal(err)
			}
			if st.Dev == host.Dev && st.Ino == host.Ino {
				t.Errorf("the handle is the binary's own inode (dev %d ino %d)", st.Dev, st.Ino)
			}
			// A sealed memfd opens for writing but refuses the write.
			if w, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
				if _, err := w.Write([]byte("x")); err == nil {
					t.Errorf("wrote to %s", path)
				}
				w.Close()
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, self) {
				t.Errorf("the handle holds %d bytes that differ from the running binary's %d", len(got), len(self))
			}
			// It executes: this test binary, asked to run no test.
			cmd := exec.Command("/proc/self/fd/3", "-test.run=^$")
			cmd.ExtraFiles = []*os.File{f}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("exec the handle: %v: %s", err, out)
			}
		})
	}
}

func protection(t *testing.T, f *os.File) string {
	t.Helper()
	if seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0); err == nil && seals&unix.F_SEAL_WRITE != 0 {
		return "sealed memfd"
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &sfs); err != nil {
		t.Fatal(err)
	}
	if sfs.Type == unix.OVERLAYFS_SUPER_MAGIC && sfs.Flags&unix.ST_RDONLY != 0 {
		return "read-only mount"
	}
	return fmt.Sprintf("unprotected (fs %#x, flags %#x)", sfs.Type, sfs.Flags)
}

func TestEscapeLowerDir(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/usr/bin/", "/usr/bin/"},
		{"/a:b/", `/a\:b/`},
		{`/a\b/`, `/a\\b/`},
		{`/a\:b/`, `/a\\\:b/`},
	} {
		if got := escapeLowerDir(tc.in); got != tc.want {
			t.Errorf("escapeLowerDir(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
