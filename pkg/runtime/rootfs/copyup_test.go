package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCopyTree: every kind of entry arrives with its mode, owner and
// mtime; symlinks are copied, never followed, even when they point out.
func TestCopyTree(t *testing.T) {
	root := os.Geteuid() == 0
	src, dst := t.TempDir(), t.TempDir()
	mtime := time.Unix(1600000000, 0)
	type entry struct {
		path  string
		make  func(p string) error
		mode  os.FileMode // type and permission bits expected in the copy
		owner int         // uid and gid set on the source (as root only)
		data  string      // regular files
		link  string      // symlinks
	}
	entries := []entry{
		{path: "file", make: writeFile("hello\n", 0o640), mode: 0o640, owner: 1000, data: "hello\n"},
		{path: "setuid", make: writeFile("x", 0o755), mode: os.ModeSetuid | 0o755, owner: 0, data: "x"},
		{path: "dir", make: mkdir(0o750), mode: os.ModeDir | 0o750, owner: 1001},
		{path: "dir/nested", make: mkdir(0o755), mode: os.ModeDir | 0o755},
		{path: "dir/nested/deep", make: writeFile("deep", 0o600), mode: 0o600, owner: 1002, data: "deep"},
		{path: "empty", make: mkdir(0o1777), mode: os.ModeDir | os.ModeSticky | 0o777},
		{path: "abs-link", make: symlink("/etc/passwd"), mode: os.ModeSymlink, link: "/etc/passwd"},
		{path: "up-link", make: symlink("../../../outside"), mode: os.ModeSymlink, link: "../../../outside"},
		{path: "dir/dangling", make: symlink("nowhere"), mode: os.ModeSymlink, link: "nowhere"},
		{path: "fifo", make: mkfifo(0o620), mode: os.ModeNamedPipe | 0o620},
	}
	for _, e := range entries {
		p := filepath.Join(src, e.path)
		if err := e.make(p); err != nil {
			t.Fatalf("make %s: %v", e.path, err)
		}
		if root {
			if err := os.Lchown(p, e.owner, e.owner); err != nil {
				t.Fatal(err)
			}
		}
		if e.mode&os.ModeSetuid != 0 {
			if err := unix.Chmod(p, 0o4755); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Times last: creating entries changes their directories' mtimes.
	for i := len(entries) - 1; i >= 0; i-- {
		ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(src, entries[i].path), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}

	from, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	to, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()
	if err := copyTree(int(from.Fd()), int(to.Fd())); err != nil {
		t.Fatal(err)
	}

	for _, e := range entries {
		t.Run(e.path, func(t *testing.T) {
			p := filepath.Join(dst, e.path)
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			if e.mode&os.ModeSymlink != 0 {
				if fi.Mode()&os.ModeType != os.ModeSymlink {
					t.Fatalf("mode %v, want a symlink", fi.Mode())
				}
				if got, _ := os.Readlink(p); got != e.link {
					t.Errorf("link %q, want %q", got, e.link)
				}
			} else if fi.Mode() != e.mode {
				t.Errorf("mode %v, want %v", fi.Mode(), e.mode)
			}
			if e.data != "" {
				if b, _ := os.ReadFile(p); string(b) != e.data {
					t.Errorf("content %q, want %q", b, e.data)
				}
			}
			st := fi.Sys().(*syscall.Stat_t)
			if root && (int(st.Uid) != e.owner || int(st.Gid) != e.owner) {
				t.Errorf("owner %d:%d, want %d:%d", st.Uid, st.Gid, e.owner, e.owner)
			}
			if !fi.ModTime().Equal(mtime) {
				t.Errorf("mtime %v, want %v", fi.ModTime(), mtime)
			}
		})
	}
	if !root {
		t.Log("not root: owners were not checked")
	}
}

// TestCopyTreeDepth: a hostile image's deep nesting ends in an error, not
// in an unbounded recursion.
func TestCopyTreeDepth(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	from, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	// Build the chain with *at calls: the full path would pass PATH_MAX.
	dir, err := unix.Dup(int(from.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= copyUpDepth+1; i++ {
		if err := unix.Mkdirat(dir, "d", 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(dir, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(dir)
		if err != nil {
			t.Fatal(err)
		}
		dir = next
	}
	unix.Close(dir)
	to, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()
	err = copyTree(int(from.Fd()), int(to.Fd()))
	if err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("copy of %d nested directories: %v, want a depth error", copyUpDepth+2, err)
	}
}

func writeFile(data string, mode os.FileMode) func(string) error {
	return func(p string) error {
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			return err
		}
		return os.Chmod(p, mode)
	}
}

// mkdir takes raw permission bits: os.Chmod would drop 0o1000.
func mkdir(mode uint32) func(string) error {
	return func(p string) error {
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		return unix.Chmod(p, mode)
	}
}

func symlink(target string) func(string) error {
	return func(p string) error { return os.Symlink(target, p) }
}

func mkfifo(mode uint32) func(string) error {
	return func(p string) error {
		if err := unix.Mkfifo(p, mode); err != nil {
			return err
		}
		return unix.Chmod(p, mode)
	}
}
