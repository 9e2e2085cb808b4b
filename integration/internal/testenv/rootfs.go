package testenv

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// BusyboxPath is the static busybox the rootfs is made from (Debian's
// busybox-static package).
const BusyboxPath = "/bin/busybox"

// Applets are the busybox applets linked in /bin of every rootfs.
var Applets = []string{
	"sh", "ls", "cat", "echo", "sleep", "true", "false", "id", "ps", "mount",
	"umount", "hostname", "env", "pwd", "stat", "readlink", "grep", "wc",
	"head", "tail", "kill", "touch", "mkdir", "ln", "rm", "printf", "test",
	"dd", "tty", "stty", "chmod", "chown", "cut", "tr", "sed", "uname",
	"whoami", "nproc", "seq", "ip", "ifconfig", "ulimit", "umask", "[",
}

var (
	cacheMu     sync.Mutex
	cacheDir    string
	rootfsOnce  sync.Once
	rootfsCache string
	rootfsErr   error
)

// cache returns the per-test-binary cache directory.
func cache() (string, error) {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if cacheDir == "" {
		d, err := os.MkdirTemp("", "xstack-it-cache-")
		if err != nil {
			return "", err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return "", err
		}
		cacheDir = d
	}
	return cacheDir, nil
}

// XtestBinary builds integration/inside (CGO_ENABLED=0, static) once per
// test binary and returns its path.
func XtestBinary(t testing.TB) string {
	t.Helper()
	d := pristineRootfs(t)
	return filepath.Join(d, "xtest")
}

func buildRootfs() (string, error) {
	c, err := cache()
	if err != nil {
		return "", err
	}
	repo, err := RepoRoot()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(BusyboxPath); err != nil {
		return "", fmt.Errorf("%s missing: apt-get install busybox-static (%w)", BusyboxPath, err)
	}
	root := filepath.Join(c, "rootfs")
	for _, d := range []string{"bin", "etc", "dev", "proc", "sys", "tmp", "root", "home/user", "mnt", "var", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		return "", err
	}
	if err := copyFile(BusyboxPath, filepath.Join(root, "bin", "busybox"), 0o755); err != nil {
		return "", err
	}
	for _, a := range Applets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			return "", err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n" +
			"user:x:1000:1000:user:/home/user:/bin/sh\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group": "root:x:0:\n" +
			"user:x:1000:\n" +
			"extra:x:1001:user\n" +
			"tty:x:5:\n" +
			"nogroup:x:65534:\n",
		"etc/hostname": "xtest\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	if err := os.Chown(filepath.Join(root, "home/user"), 1000, 1000); err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(root, "xtest"), "./integration/inside")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build /xtest: %v\n%s", err, out)
	}
	return root, nil
}

func pristineRootfs(t testing.TB) string {
	t.Helper()
	rootfsOnce.Do(func() { rootfsCache, rootfsErr = buildRootfs() })
	if rootfsErr != nil {
		t.Fatal(rootfsErr)
	}
	return rootfsCache
}

// NewRootfs copies the pristine test rootfs to dst (which must not exist
// or be empty).
func NewRootfs(t testing.TB, dst string) {
	t.Helper()
	src := pristineRootfs(t)
	if err := CopyTree(src, dst); err != nil {
		t.Fatalf("copy rootfs: %v", err)
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// CopyTree copies a tree of directories, regular files and symlinks,
// keeping modes and owners.
func CopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
		case info.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(target, info.Mode().Perm()|info.Mode()&(os.ModeSticky|os.ModeSetuid|os.ModeSetgid)); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(p, target, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unsupported file type %v", p, info.Mode())
		}
		return os.Lchown(target, int(st.Uid), int(st.Gid))
	})
}

// ChownTree shifts the owner of every file under root by (uid, gid), as a
// rootfs for a user namespace mapped at those ids needs.
func ChownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		if err := os.Lchown(p, int(st.Uid)+uid, int(st.Gid)+gid); err != nil {
			return err
		}
		// chown clears set-id and sticky bits on some filesystems;
		// put the mode back for directories.
		if info.IsDir() {
			return os.Chmod(p, info.Mode().Perm()|info.Mode()&(os.ModeSticky|os.ModeSetuid|os.ModeSetgid))
		}
		return nil
	})
}
