package specgen

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const testPasswd = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:100::/home/bob:/bin/sh

2000:x:3000:3000:name that looks like a uid:/:/bin/sh
+nis
broken line
short:x:12
baduid:x:abc:1::/:/bin/sh
`

const testGroup = `root:x:0:
daemon:x:1:
users:x:100:alice
alice:x:1000:
wheel:x:10:alice,bob
audio:x:29: bob
docker:x:999:alice,alice
badgid:x:zz:alice
`

// writeRootfs creates a rootfs under t.TempDir() holding files (path
// relative to the root → content).
func writeRootfs(t testing.TB, files map[string]string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func testRootfs(t testing.TB) string {
	return writeRootfs(t, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup})
}

func TestResolveUser(t *testing.T) {
	t.Parallel()
	rootfs := testRootfs(t)
	for _, tc := range []struct {
		user    string
		uid     uint32
		gid     uint32
		groups  []uint32
		wantErr string
	}{
		{user: "", uid: 0, gid: 0, groups: []uint32{0}},
		{user: "root", uid: 0, gid: 0, groups: []uint32{0}},
		{user: "0", uid: 0, gid: 0, groups: []uint32{0}},
		{user: "daemon", uid: 1, gid: 1, groups: []uint32{1}},
		{user: "alice", uid: 1000, gid: 1000, groups: []uint32{1000, 100, 10, 999}},
		{user: "1000", uid: 1000, gid: 1000, groups: []uint32{1000, 100, 10, 999}},
		{user: "bob", uid: 1001, gid: 100, groups: []uint32{100, 10, 29}},
		{user: "alice:wheel", uid: 1000, gid: 10, groups: []uint32{10, 100, 999}},
		{user: "alice:5", uid: 1000, gid: 5, groups: []uint32{5, 100, 10, 999}},
		{user: "1000:users", uid: 1000, gid: 100, groups: []uint32{100, 10, 999}},
		{user: "1001:1001", uid: 1001, gid: 1001, groups: []uint32{1001, 10, 29}},
		{user: "4242", uid: 4242, gid: 0, groups: []uint32{0}},
		{user: "4242:4242", uid: 4242, gid: 4242, groups: []uint32{4242}},
		{user: "4242:wheel", uid: 4242, gid: 10, groups: []uint32{10}},
		{user: "007", uid: 7, gid: 0, groups: []uint32{0}},
		{user: "2147483647", uid: 2147483647, gid: 0, groups: []uint32{0}},
		// A digits-only string is a uid even if a user has that name.
		{user: "2000", uid: 2000, gid: 0, groups: []uint32{0}},

		{user: "nobody", wantErr: `unknown user "nobody"`},
		{user: "alice:nogroup", wantErr: `unknown group "nogroup"`},
		{user: "baduid", wantErr: `unknown user "baduid"`},
		{user: "alice:badgid", wantErr: `unknown group "badgid"`},
		{user: ":1000", wantErr: "empty user"},
		{user: "1000:", wantErr: "empty group"},
		{user: ":", wantErr: "empty user"},
		{user: "a:b:c", wantErr: "want user[:group]"},
		{user: "4294967295", wantErr: "out of range"},
		{user: "2147483648", wantErr: "out of range"},
		{user: "99999999999999999999", wantErr: "out of range"},
		{user: "1000:4294967295", wantErr: "out of range"},
		{user: "-1", wantErr: `unknown user "-1"`},
		{user: "+1", wantErr: `unknown user "+1"`},
		{user: "+nis", wantErr: `unknown user "+nis"`},
		{user: "1000:-1", wantErr: `unknown group "-1"`},
	} {
		t.Run(tc.user, func(t *testing.T) {
			t.Parallel()
			u, err := ResolveUser(rootfs, tc.user)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ResolveUser(%q) = %+v, %v; want error containing %q", tc.user, u, err, tc.wantErr)
				}
				return
			}
			want := specs.User{UID: tc.uid, GID: tc.gid, AdditionalGids: tc.groups}
			if err != nil || !reflect.DeepEqual(u, want) {
				t.Fatalf("ResolveUser(%q) = %+v, %v; want %+v", tc.user, u, err, want)
			}
		})
	}
}

// TestResolveUserNoFiles: without /etc/passwd and /etc/group only numeric
// ids work, and a name is an error that names it.
func TestResolveUserNoFiles(t *testing.T) {
	t.Parallel()
	for name, rootfs := range map[string]string{
		"no etc":     writeRootfs(t, nil),
		"empty etc":  writeRootfs(t, map[string]string{"etc/other": ""}),
		"etc a file": writeRootfs(t, map[string]string{"etc": "not a dir"}),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for user, want := range map[string]specs.User{
				"":          {UID: 0, GID: 0, AdditionalGids: []uint32{0}},
				"1000":      {UID: 1000, GID: 0, AdditionalGids: []uint32{0}},
				"1000:1000": {UID: 1000, GID: 1000, AdditionalGids: []uint32{1000}},
			} {
				if got, err := ResolveUser(rootfs, user); err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("ResolveUser(%q) = %+v, %v; want %+v", user, got, err, want)
				}
			}
			for user, wantErr := range map[string]string{
				"alice":      `no /etc/passwd in the rootfs to look up name "alice"`,
				"1000:staff": `no /etc/group in the rootfs to look up group "staff"`,
			} {
				if _, err := ResolveUser(rootfs, user); err == nil || !strings.Contains(err.Error(), wantErr) {
					t.Errorf("ResolveUser(%q) error = %v; want %q", user, err, wantErr)
				}
			}
		})
	}
}

// TestResolveUserHostileRootfs plants symlinks in the image that point at
// a passwd/group pair outside the rootfs. Reading them would let an image
// pick ids from the host's databases (or read host secrets); every case
// must resolve inside the rootfs only.
func TestResolveUserHostileRootfs(t *testing.T) {
	t.Parallel()
	host := t.TempDir()
	hostPasswd := filepath.Join(host, "shadow-like")
	hostGroup := filepath.Join(host, "group-like")
	if err := os.WriteFile(hostPasswd, []byte("evil:x:0:0::/:/bin/sh\nalice:x:7:7::/:/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hostGroup, []byte("evilgroup:x:0:alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", 8)

	for _, tc := range []struct {
		name  string
		links map[string]string // link in the rootfs → target
		// ok: numeric ids still resolve (the file reads as missing);
		// otherwise every lookup fails (e.g. a symlink loop).
		ok bool
	}{
		{"absolute passwd link", map[string]string{"etc/passwd": hostPasswd, "etc/group": hostGroup}, true},
		{"dotdot passwd link", map[string]string{"etc/passwd": up + hostPasswd[1:], "etc/group": up + hostGroup[1:]}, true},
		{"etc is a link to a host dir", map[string]string{"etc": host}, true},
		{"etc is a dotdot link", map[string]string{"etc": up + host[1:]}, true},
		// Inside the root "../../../../etc/passwd" is the link itself.
		{"dotdot to host /etc/passwd", map[string]string{"etc/passwd": "../../../../etc/passwd", "etc/group": "../../../../etc/group"}, false},
		{"magic link path", map[string]string{"etc/passwd": "/proc/self/root" + hostPasswd}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rootfs := writeRootfs(t, nil)
			for link, target := range tc.links {
				p := filepath.Join(rootfs, link)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, p); err != nil {
					t.Fatal(err)
				}
			}
			// Names that exist only in the host's files (or the real host's
			// /etc/passwd: "root", "daemon") must never resolve.
			for _, user := range []string{"evil", "alice", "root", "daemon", "1000:evilgroup", "1000:root"} {
				if u, err := ResolveUser(rootfs, user); err == nil {
					t.Errorf("ResolveUser(%q) = %+v; resolved through a link out of the rootfs", user, u)
				}
			}
			u, err := ResolveUser(rootfs, "1000")
			if !tc.ok {
				if err == nil {
					t.Errorf("ResolveUser(1000) = %+v; want an error", u)
				}
				return
			}
			want := specs.User{UID: 1000, GID: 0, AdditionalGids: []uint32{0}}
			if err != nil || !reflect.DeepEqual(u, want) {
				t.Errorf("ResolveUser(1000) = %+v, %v; want %+v", u, err, want)
			}
		})
	}
}

// TestResolveUserLinkInside: a symlink that stays inside the rootfs is
// followed, as it would be in the container.
func TestResolveUserLinkInside(t *testing.T) {
	t.Parallel()
	rootfs := writeRootfs(t, map[string]string{"usr/share/passwd": "app:x:500:600::/:/bin/sh\n"})
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/share/passwd", filepath.Join(rootfs, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	u, err := ResolveUser(rootfs, "app")
	want := specs.User{UID: 500, GID: 600, AdditionalGids: []uint32{600}}
	if err != nil || !reflect.DeepEqual(u, want) {
		t.Fatalf("ResolveUser(app) = %+v, %v; want %+v", u, err, want)
	}
}

// TestResolveUserNotRegular: a FIFO must not block xd, a directory or a
// device is refused.
func TestResolveUserNotRegular(t *testing.T) {
	t.Parallel()
	for name, mk := range map[string]func(string) error{
		"fifo": func(p string) error { return unix.Mkfifo(p, 0o644) },
		"dir":  func(p string) error { return os.Mkdir(p, 0o755) },
		"dev":  func(p string) error { return os.Symlink("/dev/zero", p) }, // resolves in-root: missing
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rootfs := writeRootfs(t, map[string]string{"etc/group": ""})
			if err := mk(filepath.Join(rootfs, "etc/passwd")); err != nil {
				t.Fatal(err)
			}
			_, err := ResolveUser(rootfs, "alice")
			if err == nil {
				t.Fatal("ResolveUser(alice) succeeded")
			}
			if name != "dev" && !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("error = %v; want it to say not a regular file", err)
			}
		})
	}
}

func TestResolveUserBadRootfs(t *testing.T) {
	t.Parallel()
	for _, rootfs := range []string{"", filepath.Join(t.TempDir(), "missing")} {
		if _, err := ResolveUser(rootfs, "0"); err == nil || !strings.Contains(err.Error(), "rootfs") {
			t.Errorf("ResolveUser(rootfs %q) error = %v; want a rootfs error", rootfs, err)
		}
	}
}

func TestResolveUserTooLarge(t *testing.T) {
	t.Parallel()
	rootfs := writeRootfs(t, nil)
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A sparse file: large to read, cheap to make.
	f, err := os.Create(filepath.Join(rootfs, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxIDFileSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := ResolveUser(rootfs, "0"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("error = %v; want a size error", err)
	}
}

// FuzzResolveUser: any user string either fails or yields ids in range
// whose first additional gid is the primary gid.
func FuzzResolveUser(f *testing.F) {
	for _, s := range []string{"", "alice", "1000:1000", "alice:wheel", ":", "a:b:c", "4294967295", "0:0"} {
		f.Add(s)
	}
	rootfs := testRootfs(f)
	f.Fuzz(func(t *testing.T, user string) {
		u, err := ResolveUser(rootfs, user)
		if err != nil {
			return
		}
		if u.UID > 1<<31-1 || u.GID > 1<<31-1 {
			t.Fatalf("ResolveUser(%q) = %+v: id out of range", user, u)
		}
		if len(u.AdditionalGids) == 0 || u.AdditionalGids[0] != u.GID {
			t.Fatalf("ResolveUser(%q) = %+v: primary gid not first in AdditionalGids", user, u)
		}
	})
}
