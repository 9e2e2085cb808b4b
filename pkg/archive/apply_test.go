package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/mount"
	"github.com/xstack/xstack/pkg/mountinfo"
	"github.com/xstack/xstack/pkg/snapshot"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (chown, device whiteouts, trusted xattrs, overlay mounts)")
	}
}

var mtime = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

func file(name, body string) tar.Header {
	return tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: mtime, Linkname: body}
}

func dirEntry(name string) tar.Header {
	return tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: mtime}
}

func symlink(name, target string) tar.Header {
	return tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, ModTime: mtime}
}

func hardlink(name, target string) tar.Header {
	return tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, ModTime: mtime}
}

// layerTar builds a tar; for regular files the body is carried in Linkname.
func layerTar(t *testing.T, hdrs ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body, h.Linkname = h.Linkname, ""
		}
		if len(h.PAXRecords) > 0 {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %s: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// listTree returns every path below base (relative), skipping skip.
func listTree(t *testing.T, base, skip string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(base, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lstat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return &st
}

func assertMissing(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists (or lstat failed: %v), want missing", p, err)
	}
}

// TestApplyHostile applies hostile layers next to a sentinel directory and
// asserts nothing outside the target changes.
func TestApplyHostile(t *testing.T) {
	requireRoot(t)
	hostCanary := "/etc/xstack-archive-test-canary"
	t.Cleanup(func() { os.Remove(hostCanary) })
	var passwd unix.Stat_t
	if err := unix.Stat("/etc/passwd", &passwd); err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", 30)

	tests := []struct {
		name    string
		setup   func(t *testing.T, dir, outside string) // plants state in dir before the layer
		entries func(outside string) []tar.Header
		wantErr string // substring; "" means success
		check   func(t *testing.T, dir, outside string)
	}{
		{
			name:    "dotdot name is confined",
			entries: func(string) []tar.Header { return []tar.Header{file("../../escape", "x")} },
			check: func(t *testing.T, dir, _ string) {
				if got := readFile(t, filepath.Join(dir, "escape")); got != "x" {
					t.Errorf("escape = %q", got)
				}
			},
		},
		{
			name:    "absolute name is confined",
			entries: func(string) []tar.Header { return []tar.Header{file("/abs/file", "y")} },
			check: func(t *testing.T, dir, _ string) {
				if got := readFile(t, filepath.Join(dir, "abs/file")); got != "y" {
					t.Errorf("abs/file = %q", got)
				}
			},
		},
		{
			name: "write through symlink to / stays inside",
			entries: func(string) []tar.Header {
				return []tar.Header{symlink("evil", "/"), file("evil/etc/xstack-archive-test-canary", "pwned")}
			},
			check: func(t *testing.T, dir, _ string) {
				assertMissing(t, hostCanary)
				if got := readFile(t, filepath.Join(dir, "etc/xstack-archive-test-canary")); got != "pwned" {
					t.Errorf("in-root file = %q", got)
				}
				if st := lstat(t, filepath.Join(dir, "evil")); st.Mode&unix.S_IFMT != unix.S_IFLNK {
					t.Errorf("evil is no longer a symlink")
				}
			},
		},
		{
			name: "write through relative climbing symlink to the sentinel",
			entries: func(outside string) []tar.Header {
				return []tar.Header{symlink("up", up+strings.TrimPrefix(outside, "/")), file("up/pwned", "x")}
			},
			wantErr: "up/pwned",
			check: func(t *testing.T, dir, outside string) {
				assertMissing(t, filepath.Join(outside, "pwned"))
			},
		},
		{
			name: "write through absolute symlink to the sentinel",
			entries: func(outside string) []tar.Header {
				return []tar.Header{symlink("abs", outside), file("abs/pwned", "x")}
			},
			wantErr: "abs/pwned",
			check: func(t *testing.T, dir, outside string) {
				assertMissing(t, filepath.Join(outside, "pwned"))
			},
		},
		{
			// A vulnerable applier would create base/newdir, next to the
			// sentinel, where the tree comparison sees it.
			name: "mkdir through symlink to .. stays inside",
			entries: func(string) []tar.Header {
				return []tar.Header{symlink("dots", ".."), dirEntry("dots/newdir"), file("dots/newdir/f", "z")}
			},
			check: func(t *testing.T, dir, _ string) {
				if got := readFile(t, filepath.Join(dir, "newdir/f")); got != "z" {
					t.Errorf("newdir/f = %q", got)
				}
			},
		},
		{
			name:    "hardlink to /etc/passwd is refused",
			entries: func(string) []tar.Header { return []tar.Header{hardlink("pw", "/etc/passwd")} },
			wantErr: "hardlink",
			check: func(t *testing.T, dir, _ string) {
				assertMissing(t, filepath.Join(dir, "pw"))
				var st unix.Stat_t
				if err := unix.Stat("/etc/passwd", &st); err != nil || st.Nlink != passwd.Nlink {
					t.Errorf("/etc/passwd link count changed: %d -> %d (%v)", passwd.Nlink, st.Nlink, err)
				}
			},
		},
		{
			name: "hardlink climbing out is refused",
			entries: func(outside string) []tar.Header {
				return []tar.Header{hardlink("hl", "../../outside/secret")}
			},
			wantErr: "outside the layer",
			check: func(t *testing.T, dir, outside string) {
				assertMissing(t, filepath.Join(dir, "hl"))
				if st := lstat(t, filepath.Join(outside, "secret")); st.Nlink != 1 {
					t.Errorf("sentinel secret has %d links", st.Nlink)
				}
			},
		},
		{
			name: "hardlink through absolute symlink to the sentinel is refused",
			entries: func(outside string) []tar.Header {
				return []tar.Header{symlink("abs", outside), hardlink("hl", "abs/secret")}
			},
			wantErr: "hardlink",
			check: func(t *testing.T, dir, outside string) {
				assertMissing(t, filepath.Join(dir, "hl"))
				if st := lstat(t, filepath.Join(outside, "secret")); st.Nlink != 1 {
					t.Errorf("sentinel secret has %d links", st.Nlink)
				}
			},
		},
		{
			name: "hardlink inside the layer works",
			entries: func(string) []tar.Header {
				return []tar.Header{file("a", "same"), hardlink("b", "./a"), symlink("s", "/"), hardlink("c", "s/a")}
			},
			check: func(t *testing.T, dir, _ string) {
				a, b, c := lstat(t, filepath.Join(dir, "a")), lstat(t, filepath.Join(dir, "b")), lstat(t, filepath.Join(dir, "c"))
				if a.Ino != b.Ino || a.Ino != c.Ino || a.Nlink != 3 {
					t.Errorf("inodes a=%d b=%d c=%d nlink=%d", a.Ino, b.Ino, c.Ino, a.Nlink)
				}
			},
		},
		{
			name: "device nodes are skipped",
			entries: func(string) []tar.Header {
				return []tar.Header{
					dirEntry("dev"),
					{Typeflag: tar.TypeChar, Name: "dev/mem", Mode: 0o666, Devmajor: 1, Devminor: 1},
					{Typeflag: tar.TypeBlock, Name: "dev/vda", Mode: 0o666, Devmajor: 254, Devminor: 0},
					file("after", "ok"),
				}
			},
			check: func(t *testing.T, dir, _ string) {
				assertMissing(t, filepath.Join(dir, "dev/mem"))
				assertMissing(t, filepath.Join(dir, "dev/vda"))
				if got := readFile(t, filepath.Join(dir, "after")); got != "ok" {
					t.Errorf("entry after devices = %q", got)
				}
			},
		},
		{
			name: "file replaces a symlink of the same layer",
			entries: func(outside string) []tar.Header {
				return []tar.Header{symlink("link", filepath.Join(outside, "secret")), file("link", "new")}
			},
			check: func(t *testing.T, dir, outside string) {
				if st := lstat(t, filepath.Join(dir, "link")); st.Mode&unix.S_IFMT != unix.S_IFREG {
					t.Errorf("link is not a regular file")
				}
				if got := readFile(t, filepath.Join(dir, "link")); got != "new" {
					t.Errorf("link = %q", got)
				}
			},
		},
		{
			name: "file replaces a symlink already in dir",
			setup: func(t *testing.T, dir, outside string) {
				if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "planted")); err != nil {
					t.Fatal(err)
				}
			},
			entries: func(string) []tar.Header { return []tar.Header{file("planted", "new")} },
			check: func(t *testing.T, dir, _ string) {
				if got := readFile(t, filepath.Join(dir, "planted")); got != "new" {
					t.Errorf("planted = %q", got)
				}
			},
		},
		{
			name: "directory and fifo replace a symlink; dir replaced by file",
			entries: func(outside string) []tar.Header {
				return []tar.Header{
					symlink("d", outside), dirEntry("d"), file("d/in", "1"),
					symlink("f", filepath.Join(outside, "fifo")), {Typeflag: tar.TypeFifo, Name: "f", Mode: 0o600},
					dirEntry("x"), file("x/child", "c"), file("x", "now a file"),
				}
			},
			check: func(t *testing.T, dir, _ string) {
				if st := lstat(t, filepath.Join(dir, "d")); st.Mode&unix.S_IFMT != unix.S_IFDIR {
					t.Errorf("d is not a dir")
				}
				if st := lstat(t, filepath.Join(dir, "f")); st.Mode&unix.S_IFMT != unix.S_IFIFO {
					t.Errorf("f is not a fifo")
				}
				if got := readFile(t, filepath.Join(dir, "x")); got != "now a file" {
					t.Errorf("x = %q", got)
				}
			},
		},
		{
			name: "whiteout through symlink stays inside",
			entries: func(outside string) []tar.Header {
				return []tar.Header{symlink("abs", outside), file("abs/.wh.secret", "")}
			},
			wantErr: "whiteout",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir, outside := filepath.Join(base, "dir"), filepath.Join(base, "outside")
			for _, d := range []string{dir, outside} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(t, dir, outside)
			}
			before := listTree(t, base, dir)

			_, err := Apply(context.Background(), dir, bytes.NewReader(layerTar(t, tc.entries(outside)...)))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Apply: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("Apply succeeded, want error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("Apply error %q does not contain %q", err, tc.wantErr)
			}
			if after := listTree(t, base, dir); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Errorf("tree outside dir changed:\nbefore %q\nafter  %q", before, after)
			}
			if got := readFile(t, filepath.Join(outside, "secret")); got != "secret" {
				t.Errorf("sentinel content changed to %q", got)
			}
			if st := lstat(t, filepath.Join(outside, "secret")); st.Mode&0o7777 != 0o644 || st.Uid != 0 {
				t.Errorf("sentinel mode/owner changed: %o %d", st.Mode&0o7777, st.Uid)
			}
			assertMissing(t, hostCanary)
			if tc.check != nil {
				tc.check(t, dir, outside)
			}
		})
	}
}

func TestApplyMetadata(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	suid := file("bin/tool", "#!/bin/sh\n")
	suid.Mode, suid.Uid, suid.Gid = 0o4755, 1000, 2000
	suid.PAXRecords = map[string]string{
		"SCHILY.xattr.user.note":              "hello",
		"SCHILY.xattr.trusted.overlay.opaque": "y", // not for images
		"SCHILY.xattr.security.selinux":       "system_u:object_r:bin_t:s0",
	}
	d := dirEntry("bin")
	d.Mode, d.Uid, d.Gid = 0o750, 3, 4
	link := symlink("bin/sh", "tool")
	link.Uid, link.Gid = 5, 6
	fifo := tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o640, Uid: 7, Gid: 8, ModTime: mtime}
	empty := file("empty", "")
	empty.Mode = 0

	_, err := Apply(context.Background(), dir, bytes.NewReader(layerTar(t, d, suid, link, fifo, empty,
		file(".wh.gone", ""), dirEntry("opq"), file("opq/.wh..wh..opq", ""), file("opq/kept", "k"),
		file(".wh..wh.plnk", ""))))
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		path      string
		typ       uint32
		perm      uint32
		uid, gid  uint32
		checkTime bool
	}{
		{"bin", unix.S_IFDIR, 0o750, 3, 4, true},
		{"bin/tool", unix.S_IFREG, 0o4755, 1000, 2000, true},
		{"bin/sh", unix.S_IFLNK, 0o777, 5, 6, true},
		{"run/fifo", unix.S_IFIFO, 0o640, 7, 8, true},
		{"empty", unix.S_IFREG, 0, 0, 0, true},
		{"run", unix.S_IFDIR, 0o755, 0, 0, false}, // implicit parent
	} {
		st := lstat(t, filepath.Join(dir, c.path))
		if st.Mode&unix.S_IFMT != c.typ || st.Mode&0o7777 != c.perm || st.Uid != c.uid || st.Gid != c.gid {
			t.Errorf("%s: mode %o uid %d gid %d, want type %o perm %o %d:%d", c.path, st.Mode, st.Uid, st.Gid, c.typ, c.perm, c.uid, c.gid)
		}
		if c.checkTime && st.Mtim.Sec != mtime.Unix() {
			t.Errorf("%s: mtime %d, want %d", c.path, st.Mtim.Sec, mtime.Unix())
		}
	}
	if target, _ := os.Readlink(filepath.Join(dir, "bin/sh")); target != "tool" {
		t.Errorf("bin/sh -> %q", target)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "bin/tool"), "user.note", buf); err != nil || string(buf[:n]) != "hello" {
		t.Errorf("user.note = %q, %v", buf[:n], err)
	}
	for _, x := range []string{"trusted.overlay.opaque", "security.selinux"} {
		if _, err := unix.Lgetxattr(filepath.Join(dir, "bin/tool"), x, buf); !errors.Is(err, unix.ENODATA) {
			t.Errorf("%s on bin/tool: err %v, want ENODATA (not allowed from images)", x, err)
		}
	}
	// Whiteouts.
	st := lstat(t, filepath.Join(dir, "gone"))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("gone: mode %o rdev %d, want a 0/0 char device", st.Mode, st.Rdev)
	}
	if n, err := unix.Lgetxattr(filepath.Join(dir, "opq"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opq opaque xattr = %q, %v", buf[:n], err)
	}
	assertMissing(t, filepath.Join(dir, ".wh.gone"))
	assertMissing(t, filepath.Join(dir, "opq/.wh..wh..opq"))
	assertMissing(t, filepath.Join(dir, ".wh..wh.plnk"))
	assertMissing(t, filepath.Join(dir, "plnk"))
	if got := readFile(t, filepath.Join(dir, "opq/kept")); got != "k" {
		t.Errorf("opq/kept = %q", got)
	}
}

func TestApplyDigest(t *testing.T) {
	requireRoot(t)
	data := layerTar(t, file("a", "content"))
	// Bytes after the end-of-archive marker belong to the diffID too.
	data = append(data, make([]byte, 4096)...)
	want := digest.Digest(fmt.Sprintf("sha256:%x", sha256.Sum256(data)))
	got, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("digest %s, want %s", got, want)
	}

	for name, bad := range map[string][]byte{
		"truncated": data[:512+3], // inside the file content
		"garbage":   bytes.Repeat([]byte("not a tar "), 100),
	} {
		if _, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(bad)); err == nil {
			t.Errorf("%s tar: Apply succeeded", name)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Apply(ctx, t.TempDir(), bytes.NewReader(data)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Apply: %v", err)
	}
}

// TestWhiteoutsInOverlay applies two layers as two snapshots and checks the
// merged view of an overlay mount.
func TestWhiteoutsInOverlay(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	t.Cleanup(func() { assertNoMountsUnder(t, base) })
	sn, err := snapshot.NewOverlay(filepath.Join(base, "snap"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	ctx := context.Background()

	layers := [][]tar.Header{
		{dirEntry("a"), file("a/keep", "1"), file("a/gone", "2"), dirEntry("b"), file("b/old1", "3"), file("b/old2", "4"),
			dirEntry("c"), file("c/x", "5")},
		{file("a/.wh.gone", ""), dirEntry("b"), file("b/.wh..wh..opq", ""), file("b/new", "6"), file(".wh.c", "")},
	}
	parent := ""
	for i, l := range layers {
		key, name := fmt.Sprintf("active-%d", i), fmt.Sprintf("layer-%d", i)
		if _, err := sn.Prepare(ctx, key, parent, nil); err != nil {
			t.Fatal(err)
		}
		upper, err := sn.UpperDir(key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Apply(ctx, upper, bytes.NewReader(layerTar(t, l...))); err != nil {
			t.Fatal(err)
		}
		if err := sn.Commit(ctx, name, key); err != nil {
			t.Fatal(err)
		}
		parent = name
	}
	mounts, err := sn.Prepare(ctx, "rootfs", parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(base, "rootfs")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mount.All(mounts, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mount.UnmountAll(target); err != nil {
			t.Errorf("unmount: %v", err)
			_ = unix.Unmount(target, unix.MNT_DETACH)
		}
	})

	if got := readFile(t, filepath.Join(target, "a/keep")); got != "1" {
		t.Errorf("a/keep = %q", got)
	}
	assertMissing(t, filepath.Join(target, "a/gone"))
	assertMissing(t, filepath.Join(target, "c"))
	entries, err := os.ReadDir(filepath.Join(target, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "new" {
		t.Errorf("b lists %v, want only new (opaque)", entries)
	}
}

func assertNoMountsUnder(t *testing.T, dir string) {
	t.Helper()
	ms, err := mountinfo.Read()
	if err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		real = dir
	}
	for _, m := range ms {
		if mountinfo.IsUnder(m.MountPoint, real) {
			t.Errorf("leftover mount %s (%s)", m.MountPoint, m.FSType)
		}
	}
}
