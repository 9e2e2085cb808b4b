package runtime_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	Root, Point, Opts, FSType, Source, Super string
	Optional                                 []string
}

func parseMountinfo(out string) []mountEntry {
	var ms []mountEntry
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 10 {
			continue
		}
		sep := 6
		for sep < len(f) && f[sep] != "-" {
			sep++
		}
		if sep+3 >= len(f) {
			continue
		}
		ms = append(ms, mountEntry{
			Root: f[3], Point: unescapeMount(f[4]), Opts: f[5], Optional: f[6:sep],
			FSType: f[sep+1], Source: f[sep+2], Super: f[sep+3],
		})
	}
	return ms
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// findMount returns the last (topmost) entry for a mount point.
func findMount(ms []mountEntry, point string) *mountEntry {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Point == point {
			return &ms[i]
		}
	}
	return nil
}

func hasOpt(opts, o string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == o {
			return true
		}
	}
	return false
}

func propagation(m *mountEntry) string {
	p := "private"
	for _, o := range m.Optional {
		switch {
		case strings.HasPrefix(o, "shared:"):
			p = "shared"
		case strings.HasPrefix(o, "master:"):
			if p == "shared" {
				p = "shared+slave"
			} else {
				p = "slave"
			}
		case o == "unbindable":
			p = "unbindable"
		}
	}
	return p
}

// TestPivotRoot: with pivot_root (default) and with --no-pivot the
// container sees exactly its rootfs.
func TestPivotRoot(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		for _, extra := range [][]string{nil, {"--no-pivot"}} {
			b := testenv.NewBundle(t, testenv.WithArgs("/bin/sh", "-c", "/xtest ls /; echo ---; /xtest mounts"))
			out := runOK(t, rt, b, extra...)
			ls, mounts, _ := strings.Cut(out, "---\n")
			want, _ := os.ReadDir(b.Rootfs)
			var names []string
			for _, e := range want {
				names = append(names, e.Name())
			}
			got := strings.Fields(ls)
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(names, " ") {
				t.Errorf("%q: / inside is %q, rootfs has %q", extra, got, names)
			}
			ms := parseMountinfo(mounts)
			root := findMount(ms, "/")
			if root == nil {
				t.Fatalf("%q: no / in mountinfo %q", extra, mounts)
			}
			if !hasOpt(root.Opts, "ro") {
				t.Errorf("%q: readonly root mounted %q", extra, root.Opts)
			}
			for _, m := range ms {
				if strings.HasPrefix(m.Point, b.Dir) || strings.HasPrefix(m.Point, rt.Root) {
					t.Errorf("%q: host path visible in the container's mount table: %+v", extra, m)
				}
			}
		}
	})
}

// hostMount mounts a tmpfs on dir (created) for the test and unmounts it
// at cleanup.
func hostTmpfs(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("xit", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	testenv.OnCleanup(t, func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

// TestSpecMounts: bind, rbind, tmpfs and the kernel filesystems, with
// their flags, land where the spec says.
func TestSpecMounts(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		src := testenv.TempDir(t, 0o755)
		os.WriteFile(filepath.Join(src, "marker"), []byte("hello"), 0o644)
		hostTmpfs(t, filepath.Join(src, "sub"))
		os.WriteFile(filepath.Join(src, "sub", "inner"), []byte("inner"), 0o644)
		srcFile := filepath.Join(testenv.TempDir(t, 0o755), "file")
		os.WriteFile(srcFile, []byte("a file"), 0o644)
		rw := testenv.TempDir(t, 0o777)

		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/mnt/ro", Type: "bind", Source: src, Options: []string{"bind", "ro"}},
				specs.Mount{Destination: "/mnt/rbind", Type: "bind", Source: src, Options: []string{"rbind", "ro"}},
				specs.Mount{Destination: "/mnt/rw", Type: "bind", Source: rw, Options: []string{"bind", "nosuid", "nodev", "noexec"}},
				specs.Mount{Destination: "/mnt/file", Type: "bind", Source: srcFile, Options: []string{"bind", "ro"}},
				specs.Mount{Destination: "/mnt/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=1m"}},
				specs.Mount{Destination: "/mnt/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "nodev", "noexec"}},
			)
		}), testenv.WithArgs("/bin/sh", "-c", `
for p in /mnt/ro /mnt/rbind/sub /mnt/ro/sub /mnt/tmp /mnt/proc /proc /sys /dev /dev/pts /dev/shm /dev/mqueue /sys/fs/cgroup/memory /mnt/file; do
  echo "stat $p $(/xtest stat $p)"
done
echo "cat $(/xtest cat /mnt/ro/marker) $(/xtest cat /mnt/file) $(/xtest cat /mnt/rbind/sub/inner)"
echo "wr-ro $(/xtest open-wr /mnt/ro/marker) $(/xtest open-wr /mnt/file)"
/xtest write /mnt/rw/fromctr yes && echo wrote
/xtest mounts`))
		out := runOK(t, rt, b)
		stats := map[string]statOut{}
		for _, l := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(l, "stat "); ok {
				p, js, _ := strings.Cut(rest, " ")
				if js == "" {
					t.Errorf("stat %s failed", p)
					continue
				}
				stats[p] = parseStat(t, js)
			}
		}
		for p, magic := range map[string]string{
			"/mnt/tmp": magicTmpfs, "/mnt/proc": magicProc, "/proc": magicProc, "/sys": magicSysfs,
			"/dev": magicTmpfs, "/dev/pts": magicDevpts, "/dev/shm": magicTmpfs, "/dev/mqueue": magicMqueue,
			"/sys/fs/cgroup/memory": magicCgroup, "/mnt/rbind/sub": magicTmpfs,
		} {
			if stats[p].FSMagic != magic {
				t.Errorf("%s: fs magic %q, want %s", p, stats[p].FSMagic, magic)
			}
		}
		if stats["/mnt/ro/sub"].FSMagic == magicTmpfs {
			t.Errorf("non-recursive bind carried the submount")
		}
		if stats["/mnt/tmp"].Mode != "1777" {
			t.Errorf("tmpfs mode=1777: got %s", stats["/mnt/tmp"].Mode)
		}
		if stats["/mnt/file"].Type != "file" {
			t.Errorf("file bind mount: %+v", stats["/mnt/file"])
		}
		if !strings.Contains(out, "cat hello a file inner\n") {
			t.Errorf("bind contents: %q", out)
		}
		if !strings.Contains(out, "wr-ro EROFS EROFS\n") {
			t.Errorf("ro binds writable: %q", out)
		}
		if !strings.Contains(out, "wrote\n") {
			t.Errorf("rw bind not writable")
		} else if b, err := os.ReadFile(filepath.Join(rw, "fromctr")); err != nil || string(b) != "yes" {
			t.Errorf("write through rw bind not on host: %q %v", b, err)
		}
		ms := parseMountinfo(out)
		for _, tc := range []struct {
			point string
			opts  []string
			super string
		}{
			{"/mnt/ro", []string{"ro"}, ""},
			{"/mnt/rbind", []string{"ro"}, ""},
			// "ro" with rbind only applies to the top mount in runc
			// 1.1 (recursive read-only needs "rro").
			{"/mnt/rbind/sub", nil, "size=1024k"},
			{"/mnt/rw", []string{"rw", "nosuid", "nodev", "noexec"}, ""},
			{"/mnt/tmp", []string{"rw", "nosuid", "nodev", "noexec"}, "size=1024k"},
			{"/mnt/proc", []string{"nosuid", "nodev", "noexec"}, ""},
			{"/sys", []string{"ro", "nosuid", "nodev", "noexec"}, ""},
			{"/dev/pts", []string{"nosuid", "noexec"}, "ptmxmode=666"},
			{"/dev/shm", []string{"nosuid", "nodev", "noexec"}, ""},
			{"/dev/mqueue", []string{"nosuid", "nodev", "noexec"}, ""},
			{"/sys/fs/cgroup/memory", []string{"ro", "nosuid", "nodev", "noexec"}, ""},
		} {
			m := findMount(ms, tc.point)
			if m == nil {
				t.Errorf("no mount at %s", tc.point)
				continue
			}
			for _, o := range tc.opts {
				if !hasOpt(m.Opts, o) {
					t.Errorf("%s: options %q lack %s", tc.point, m.Opts, o)
				}
			}
			if tc.super != "" && !strings.Contains(m.Super, tc.super) {
				t.Errorf("%s: super options %q lack %s", tc.point, m.Super, tc.super)
			}
		}
	})
}

// TestMountPropagation: rootfsPropagation and per-mount propagation flags
// show up in mountinfo, and a slave mount receives host mounts made after
// the container started while a private one does not.
func TestMountPropagation(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		// rootfsPropagation: every value is accepted, and the rootfs
		// is never left shared with the host unless asked. (runc 1.1
		// makes the rootfs mount's parent private for pivot_root, so
		// "/" reads private inside for every value.)
		for _, prop := range []string{"shared", "slave", "private", "rslave", "rprivate", ""} {
			b := testenv.NewBundle(t, testenv.WithArgs("/xtest", "mounts"), testenv.WithSpec(func(s *specs.Spec) {
				s.Linux.RootfsPropagation = prop
			}))
			ms := parseMountinfo(runOK(t, rt, b))
			root := findMount(ms, "/")
			if root == nil {
				t.Fatal("no / mount")
			}
			if got := propagation(root); got == "shared" && !strings.Contains(prop, "shared") {
				t.Errorf("rootfsPropagation %q: / is shared (%q)", prop, root.Optional)
			}
		}
		b0 := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) { s.Linux.RootfsPropagation = "bogus" }))
		if _, r := rt.TryCreate(t, b0); r.Code == 0 || !strings.Contains(rt.ErrorText(t, r), "rootfsPropagation") {
			t.Errorf("rootfsPropagation bogus: %s\nlog: %s", r, rt.LastError(t))
		}

		// A shared host source: bind it on itself and make it shared.
		src := testenv.TempDir(t, 0o755)
		if err := unix.Mount(src, src, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		testenv.OnCleanup(t, func() { unix.Unmount(src, unix.MNT_DETACH) })
		if err := unix.Mount("", src, "", unix.MS_SHARED, ""); err != nil {
			t.Fatal(err)
		}
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/mnt/slave", Type: "bind", Source: src, Options: []string{"rbind", "rslave"}},
				specs.Mount{Destination: "/mnt/private", Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}},
				specs.Mount{Destination: "/mnt/shared", Type: "bind", Source: src, Options: []string{"rbind", "rshared"}},
			)
			s.Linux.RootfsPropagation = "slave"
		}))
		c := rt.CreateStart(t, b)
		ms := parseMountinfo(execOK(t, rt, c.ID, nil, "/xtest", "mounts"))
		for point, want := range map[string]string{"/mnt/slave": "slave", "/mnt/private": "private", "/mnt/shared": "shared"} {
			m := findMount(ms, point)
			if m == nil {
				t.Errorf("no mount at %s", point)
				continue
			}
			if got := propagation(m); !strings.HasPrefix(got, want) {
				t.Errorf("%s: propagation %s (%q), want %s", point, got, m.Optional, want)
			}
		}
		// A mount made on the host now reaches the slave copy only.
		hostTmpfs(t, filepath.Join(src, "late"))
		os.WriteFile(filepath.Join(src, "late", "f"), []byte("late"), 0o644)
		deadline := time.Now().Add(shortWait)
		for {
			out := execOK(t, rt, c.ID, nil, "/bin/sh", "-c", "/xtest cat /mnt/slave/late/f; echo; /xtest cat /mnt/private/late/f; echo")
			if strings.HasPrefix(out, "late\n") {
				if strings.Contains(out, "late\nlate") {
					t.Errorf("host mount propagated into an rprivate mount")
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("host mount never propagated into the rslave mount: %q", out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// TestReadonlyRoot: root.readonly makes / read-only; false leaves it
// writable.
func TestReadonlyRoot(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		out := xtestRun(t, rt, []string{"mkdir", "/newdir"})
		if strings.TrimSpace(out) != "EROFS" {
			t.Errorf("readonly root: mkdir gave %q, want EROFS", out)
		}
		b := testenv.NewBundle(t, testenv.WithWritableRoot(), testenv.WithArgs("/xtest", "mkdir", "/newdir"))
		if out := runOK(t, rt, b); strings.TrimSpace(out) != "ok" {
			t.Errorf("writable root: mkdir gave %q", out)
		}
		if st, err := os.Stat(filepath.Join(b.Rootfs, "newdir")); err != nil || !st.IsDir() {
			t.Errorf("mkdir in the container did not reach the rootfs: %v", err)
		}
	})
}

// TestMaskedPaths: a masked file is /dev/null (char 1:3), a masked
// directory an empty read-only tmpfs.
func TestMaskedPaths(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			// /proc/kcore does not exist on this kernel; /proc/keys does.
			s.Linux.MaskedPaths = []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/etc/group", "/proc/driver", "/sys/firmware", "/home/user", "/proc/does-not-exist"}
		}), testenv.WithArgs("/bin/sh", "-c", `
echo "keys $(/xtest stat /proc/keys)"
echo "timer $(/xtest stat /proc/timer_list)"
echo "group $(/xtest stat /etc/group)"
echo "keys-cat [$(/xtest cat /proc/keys)]"
echo "group-cat [$(/xtest cat /etc/group)]"
echo "keys-wr $(/xtest open-wr /proc/keys)"
echo "driver $(/xtest stat /proc/driver)"
echo "driver-ls [$(/xtest ls /proc/driver)]"
echo "driver-mkdir $(/xtest mkdir /proc/driver/x)"
echo "firmware-ls [$(/xtest ls /sys/firmware)]"
echo "home $(/xtest stat /home/user)"
echo "home-ls [$(/xtest ls /home/user)]"`))
		os.WriteFile(filepath.Join(b.Rootfs, "home/user/secret"), []byte("s"), 0o644)
		out := runOK(t, rt, b)
		lines := kvSpace(out)
		for _, f := range []string{"keys", "timer", "group"} {
			st := parseStat(t, lines[f])
			if st.Type != "char" || st.Rdev != "1:3" {
				t.Errorf("masked file %s: %+v, want char 1:3 (/dev/null)", f, st)
			}
		}
		for _, f := range []string{"keys-cat", "group-cat"} {
			if lines[f] != "[]" {
				t.Errorf("masked file readable: %s %q", f, lines[f])
			}
		}
		for _, d := range []string{"driver", "home"} {
			st := parseStat(t, lines[d])
			if st.Type != "dir" || st.FSMagic != magicTmpfs {
				t.Errorf("masked dir %s: %+v, want a tmpfs dir", d, st)
			}
		}
		for _, k := range []string{"driver-ls", "firmware-ls", "home-ls"} {
			if lines[k] != "[]" {
				t.Errorf("masked dir %s not empty: %q", k, lines[k])
			}
		}
		if lines["driver-mkdir"] != "EROFS" {
			t.Errorf("masked dir writable: mkdir gave %q", lines["driver-mkdir"])
		}
	})
}

// kvSpace parses "key value" lines.
func kvSpace(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			m[k] = v
		}
	}
	return m
}

// TestReadonlyPaths: readonlyPaths are remounted read-only.
func TestReadonlyPaths(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t, testenv.WithWritableRoot(), testenv.WithSpec(func(s *specs.Spec) {
			s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/home")
		}), testenv.WithArgs("/bin/sh", "-c", `
echo "sys $(/xtest open-wr /proc/sys/kernel/hostname)"
echo "irq $(/xtest open-wr /proc/irq/default_smp_affinity)"
echo "home $(/xtest mkdir /home/x)"
echo "tmp $(/xtest mkdir /tmp/x)"`))
		lines := kvSpace(runOK(t, rt, b))
		for k, want := range map[string]string{"sys": "EROFS", "irq": "EROFS", "home": "EROFS", "tmp": "ok"} {
			if lines[k] != want {
				t.Errorf("%s: %q, want %s", k, lines[k], want)
			}
		}
	})
}

// TestIDMappedMount: a bind mount with uidMappings/gidMappings (or the
// idmap option, taking the container's) shows the source's owners through
// the mapping: 0 on disk is 100000 in a container without a user
// namespace, and root in a container whose user namespace maps 0 to
// 100000; files that root creates there are owned by 0 on disk.
func TestIDMappedMount(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		rt.SkipIf(t, "runc", "runc 1.1.5 predates id-mapped mounts (runc 1.2)")
		const base = 100000
		mapping := []specs.LinuxIDMapping{{ContainerID: 0, HostID: base, Size: 65536}}
		for _, tc := range []struct {
			name     string
			userns   bool
			mount    specs.Mount
			wantRoot uint32 // owner of the disk's uid 0 inside
		}{
			{"own mappings, no user namespace", false,
				specs.Mount{Destination: "/mnt/idm", Type: "bind", Options: []string{"bind"}, UIDMappings: mapping, GIDMappings: mapping}, base},
			{"own mappings, user namespace", true,
				specs.Mount{Destination: "/mnt/idm", Type: "bind", Options: []string{"bind"}, UIDMappings: mapping, GIDMappings: mapping}, 0},
			{"idmap option, user namespace", true,
				specs.Mount{Destination: "/mnt/idm", Type: "bind", Options: []string{"rbind", "idmap"}}, 0},
			{"no mapping, user namespace", true,
				specs.Mount{Destination: "/mnt/idm", Type: "bind", Options: []string{"bind"}}, 65534},
		} {
			t.Run(tc.name, func(t *testing.T) {
				src := testenv.TempDir(t, 0o777)
				if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(filepath.Join(src, "f"), 0, 0); err != nil {
					t.Fatal(err)
				}
				m := tc.mount
				m.Source = src
				opts := []testenv.BundleOption{testenv.WithSpec(func(s *specs.Spec) { s.Mounts = append(s.Mounts, m) })}
				if tc.userns {
					opts = append(opts, testenv.WithUserNS(base, base))
				}
				c := rt.CreateStart(t, testenv.NewBundle(t, opts...))
				st := parseStat(t, execOK(t, rt, c.ID, nil, "/xtest", "stat", "/mnt/idm/f"))
				if st.UID != tc.wantRoot || st.GID != tc.wantRoot {
					t.Errorf("disk 0:0 shows as %d:%d inside, want %d:%d", st.UID, st.GID, tc.wantRoot, tc.wantRoot)
				}
				if tc.userns && tc.wantRoot == 0 {
					execOK(t, rt, c.ID, nil, "/xtest", "write", "/mnt/idm/new", "y")
					var host unix.Stat_t
					if err := unix.Stat(filepath.Join(src, "new"), &host); err != nil || host.Uid != 0 || host.Gid != 0 {
						t.Errorf("file created by the container's root: %v, owner %d:%d on disk, want 0:0", err, host.Uid, host.Gid)
					}
				}
			})
		}
	})
}

// TestBindSourceOutOfUserNSReach: in a container with a user namespace the
// init is root only there, yet bind sources below a directory that only
// the host's root may search still mount, as with runc (podman keeps a
// container's /etc/hosts and /etc/hostname in such a directory). A
// directory and a single file, read from inside.
func TestBindSourceOutOfUserNSReach(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		private := testenv.TempDir(t, 0o700)
		dir := filepath.Join(private, "dir")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for path, data := range map[string]string{filepath.Join(dir, "f"): "in-dir\n", filepath.Join(private, "hosts"): "127.0.0.1 pmhost\n"} {
			if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b := testenv.NewBundle(t, testenv.WithUserNS(100000, 100000), testenv.WithSpec(func(s *specs.Spec) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/mnt/dir", Type: "bind", Source: dir, Options: []string{"rbind", "ro"}},
				specs.Mount{Destination: "/etc/hosts", Type: "bind", Source: filepath.Join(private, "hosts"), Options: []string{"bind"}})
		}))
		c := rt.CreateStart(t, b)
		if out := execOK(t, rt, c.ID, nil, "/xtest", "cat", "/mnt/dir/f"); out != "in-dir\n" {
			t.Errorf("bound directory: read %q", out)
		}
		if out := execOK(t, rt, c.ID, nil, "/xtest", "cat", "/etc/hosts"); out != "127.0.0.1 pmhost\n" {
			t.Errorf("bound file: read %q", out)
		}
		if r := rt.ExecIn(t, c.ID, nil, "/xtest", "write", "/mnt/dir/g", "x"); r.Code == 0 {
			t.Errorf("the ro bind is writable: %s", r)
		}
	})
}

// TestTmpCopyUp: the "tmpcopyup" option (runc's and crun's extension,
// which podman uses for --read-only and --tmpfs) mounts a tmpfs that
// starts with what the image had there: contents, owners, modes and
// symlinks as they were (a link out of the rootfs stays a link); writes
// stay in the tmpfs.
func TestTmpCopyUp(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		b := testenv.NewBundle(t, testenv.WithRootfs(func(rootfs string) {
			data := filepath.Join(rootfs, "data")
			must(os.MkdirAll(filepath.Join(data, "sub"), 0o755))
			must(os.WriteFile(filepath.Join(data, "f"), []byte("from-image\n"), 0o604))
			must(os.Chown(filepath.Join(data, "f"), 1000, 1000))
			must(os.WriteFile(filepath.Join(data, "sub", "g"), []byte("g\n"), 0o644))
			must(os.Symlink("/etc/passwd", filepath.Join(data, "link")))
		}), testenv.WithSpec(func(s *specs.Spec) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "mode=755"}},
				// Read-only: the copy goes in before the tmpfs turns read-only.
				specs.Mount{Destination: "/data/sub", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "ro"}})
		}))
		c := rt.CreateStart(t, b)
		if out := execOK(t, rt, c.ID, nil, "/xtest", "cat", "/data/f"); out != "from-image\n" {
			t.Errorf("/data/f: %q", out)
		}
		if out := execOK(t, rt, c.ID, nil, "/xtest", "cat", "/data/sub/g"); out != "g\n" {
			t.Errorf("/data/sub/g: %q", out)
		}
		if st := parseStat(t, execOK(t, rt, c.ID, nil, "/xtest", "lstat", "/data/f")); st.UID != 1000 || st.GID != 1000 || st.Mode != "0604" {
			t.Errorf("/data/f: owner %d:%d mode %s, want 1000:1000 0604", st.UID, st.GID, st.Mode)
		}
		if st := parseStat(t, execOK(t, rt, c.ID, nil, "/xtest", "lstat", "/data/link")); st.Type != "symlink" || st.Target != "/etc/passwd" {
			t.Errorf("/data/link: %+v, want a symlink to /etc/passwd", st)
		}
		if st := parseStat(t, execOK(t, rt, c.ID, nil, "/xtest", "stat", "/data")); st.FSMagic != "0x1021994" {
			t.Errorf("/data is on fs %s, want tmpfs (0x1021994)", st.FSMagic)
		}
		if r := rt.ExecIn(t, c.ID, nil, "/xtest", "write", "/data/sub/new", "x"); r.Code == 0 {
			t.Errorf("the read-only tmpfs at /data/sub is writable")
		}
		execOK(t, rt, c.ID, nil, "/xtest", "write", "/data/new", "x")
		if _, err := os.Stat(filepath.Join(b.Rootfs, "data", "new")); err == nil {
			t.Errorf("a write in the tmpfs reached the image's /data")
		}
	})
}
