package security_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestConsoleThroughPtsSymlink (CVE-2025-52565): the runtime bind-mounts
// the pty slave at /dev/console by its path, /dev/pts/N. The rootfs plants
// /dev/pts/ptmx pointing at a devpts mounted elsewhere (/dev/pts2) and
// /dev/pts/0..31 as symlinks to a marker, so a runtime that follows the
// path binds the marker (in the real exploit a procfs file such as
// sysrq-trigger) at /dev/console. /dev/console must be the pty or the
// create must fail.
func TestConsoleThroughPtsSymlink(t *testing.T) {
	checkCVE(t, "CVE-2025-52565 /dev/console via /dev/pts/N", refVulnerable, func(t *testing.T, rt *testenv.Runtime) []string {
		b := testenv.NewBundle(t, testenv.WithWritableRoot(), testenv.WithRootfs(func(root string) {
			mustDo(t, os.WriteFile(filepath.Join(root, "etc/marker"), []byte("marker\n"), 0o644))
			pts := filepath.Join(root, "dev/pts")
			mustDo(t, os.MkdirAll(pts, 0o755))
			mustDo(t, os.MkdirAll(filepath.Join(root, "dev/pts2"), 0o755))
			mustDo(t, os.Symlink("/dev/pts2/ptmx", filepath.Join(pts, "ptmx")))
			for n := 0; n < 32; n++ {
				mustDo(t, os.Symlink("/etc/marker", filepath.Join(pts, fmt.Sprint(n))))
			}
		}), testenv.WithSpec(func(s *specs.Spec) {
			s.Mounts = append(withoutDev(s.Mounts), specs.Mount{Destination: "/dev/pts2", Type: "devpts", Source: "devpts",
				Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}})
			s.Process.Terminal = true
		}), testenv.WithArgs("/bin/sh", "-c", "/xtest stat /dev/console >/stat.out 2>&1"))
		// The runtime may fail after following the symlink (the marker is
		// no tty); inotify tells whether it opened the marker at all.
		opened := watchOpens(t, filepath.Join(b.Rootfs, "etc/marker"))
		cs := testenv.NewConsoleSocket(t)
		c, r := rt.TryCreate(t, b, "--console-socket", cs.Path)
		if r.Code != 0 {
			t.Logf("refused: %s", rt.ErrorText(t, r))
			if opened() {
				return []string{"the runtime opened the marker planted at /dev/pts/N as the console, then failed"}
			}
			return nil
		}
		master, _, err := cs.Receive(10 * time.Second)
		if err != nil {
			t.Fatalf("console socket: %v", err)
		}
		defer master.Close()
		go drain(master)
		rt.MustRun(t, "start", c.ID)
		rt.WaitStatus(t, c.ID, "stopped", 10*time.Second)
		out, err := os.ReadFile(filepath.Join(b.Rootfs, "stat.out"))
		mustDo(t, err)
		t.Logf("/dev/console: %s", out)
		st := testenv.ParseXtestStat(t, string(out))
		if st.Type != "char" || !strings.HasPrefix(st.Rdev, "136:") {
			return []string{fmt.Sprintf("/dev/console is a %s of %d bytes (the marker), not the pty", st.Type, st.Size)}
		}
		return nil
	})
}

// TestRootfsDevSymlinks (CVE-2026-41579 and crun's CVE-2026-47766): with no
// /dev mount in the spec, the runtime creates devices in the rootfs's own
// /dev. If rootfs/dev points out of the rootfs, or rootfs/dev/null at a
// host file, the device setup and the stdio chown must stay inside the
// rootfs: no entry appears in the host dir, the host marker keeps its
// owner and mode.
func TestRootfsDevSymlinks(t *testing.T) {
	checkCVE(t, "CVE-2026-41579 rootfs-controlled /dev symlinks", refVulnerable, func(t *testing.T, rt *testenv.Runtime) []string {
		host := testenv.TempDir(t, 0o755)
		marker := hostMarker(t)
		var before unix.Stat_t
		mustDo(t, unix.Stat(marker, &before))
		var findings []string
		user := func(s *specs.Spec) { s.Process.User = specs.User{UID: 1000, GID: 1000} }
		for _, plant := range []func(root string){
			func(root string) { // /dev itself points at the host dir
				mustDo(t, os.RemoveAll(filepath.Join(root, "dev")))
				mustDo(t, os.Symlink("../../../../../../../.."+host, filepath.Join(root, "dev")))
			},
			func(root string) { // /dev/null points at the host marker
				mustDo(t, os.MkdirAll(filepath.Join(root, "dev"), 0o755))
				os.Remove(filepath.Join(root, "dev/null"))
				mustDo(t, os.Symlink("../../../../../../../.."+marker, filepath.Join(root, "dev/null")))
			},
		} {
			b := testenv.NewBundle(t, testenv.WithWritableRoot(), testenv.WithRootfs(plant), testenv.WithSpec(func(s *specs.Spec) {
				s.Mounts = withoutDev(s.Mounts)
				user(s)
			}), testenv.WithArgs("/xtest", "exit", "0"))
			f, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
			mustDo(t, err)
			r := rt.Exec(t, testenv.Opts{Stdin: f}, "run", "--bundle", b.Dir, b.ID)
			f.Close()
			if r.Code != 0 {
				t.Logf("refused: %s", strings.TrimSpace(rt.ErrorText(t, r)))
			}
		}
		findings = append(findings, hostEntries(host)...)
		var after unix.Stat_t
		mustDo(t, unix.Stat(marker, &after))
		if after.Uid != before.Uid || after.Gid != before.Gid || after.Mode != before.Mode {
			findings = append(findings, fmt.Sprintf("the host marker changed: owner %d:%d mode %o -> %d:%d mode %o",
				before.Uid, before.Gid, before.Mode, after.Uid, after.Gid, after.Mode))
		}
		return findings
	})
}

// watchOpens starts watching a file; the returned function reports whether
// anything opened it since.
func watchOpens(t *testing.T, path string) func() bool {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	mustDo(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_OPEN); err != nil {
		t.Fatalf("inotify %s: %v", path, err)
	}
	return func() bool {
		buf := make([]byte, 4096)
		n, _ := unix.Read(fd, buf)
		return n > 0
	}
}

func drain(f *os.File) {
	buf := make([]byte, 4096)
	for {
		if _, err := f.Read(buf); err != nil {
			return
		}
	}
}
