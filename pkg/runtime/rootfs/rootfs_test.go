package rootfs

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	const atimeMask = unix.MOUNT_ATTR__ATIME
	tests := []struct {
		name string
		opts []string
		want mountOptions
	}{
		{"none", nil, mountOptions{}},
		{"defaults is a no-op", []string{"defaults"}, mountOptions{}},
		{
			name: "set flags",
			opts: []string{"nosuid", "nodev", "noexec"},
			want: mountOptions{
				flags:   unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC,
				attrSet: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC,
			},
		},
		{
			name: "clear words undo set words",
			opts: []string{"nosuid", "nodev", "noexec", "suid", "dev", "exec"},
			want: mountOptions{
				attrClr: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC,
			},
		},
		{
			name: "ro",
			opts: []string{"ro"},
			want: mountOptions{flags: unix.MS_RDONLY, attrSet: unix.MOUNT_ATTR_RDONLY},
		},
		{
			name: "rw after ro clears it",
			opts: []string{"ro", "rw"},
			want: mountOptions{attrClr: unix.MOUNT_ATTR_RDONLY},
		},
		{
			name: "ro after rw wins",
			opts: []string{"rw", "ro"},
			want: mountOptions{flags: unix.MS_RDONLY, attrSet: unix.MOUNT_ATTR_RDONLY},
		},
		{
			name: "rw alone clears",
			opts: []string{"rw"},
			want: mountOptions{attrClr: unix.MOUNT_ATTR_RDONLY},
		},
		{
			name: "noatime",
			opts: []string{"noatime"},
			want: mountOptions{flags: unix.MS_NOATIME, attrSet: unix.MOUNT_ATTR_NOATIME, attrClr: atimeMask, atime: true},
		},
		{
			name: "strictatime",
			opts: []string{"strictatime"},
			want: mountOptions{flags: unix.MS_STRICTATIME, attrSet: unix.MOUNT_ATTR_STRICTATIME, attrClr: atimeMask, atime: true},
		},
		{
			name: "relatime",
			opts: []string{"relatime"},
			want: mountOptions{flags: unix.MS_RELATIME, attrSet: unix.MOUNT_ATTR_RELATIME, attrClr: atimeMask, atime: true},
		},
		{
			name: "last atime word wins in the attr field",
			opts: []string{"noatime", "strictatime"},
			want: mountOptions{flags: unix.MS_NOATIME | unix.MS_STRICTATIME, attrSet: unix.MOUNT_ATTR_STRICTATIME, attrClr: atimeMask, atime: true},
		},
		{
			name: "strictatime then noatime",
			opts: []string{"strictatime", "noatime"},
			want: mountOptions{flags: unix.MS_NOATIME | unix.MS_STRICTATIME, attrSet: unix.MOUNT_ATTR_NOATIME, attrClr: atimeMask, atime: true},
		},
		{
			name: "atime clears noatime",
			opts: []string{"noatime", "atime"},
			want: mountOptions{attrSet: unix.MOUNT_ATTR_RELATIME, attrClr: atimeMask, atime: true},
		},
		{
			name: "norelatime and nostrictatime",
			opts: []string{"relatime", "strictatime", "norelatime", "nostrictatime"},
			want: mountOptions{attrSet: unix.MOUNT_ATTR_STRICTATIME, attrClr: atimeMask, atime: true},
		},
		{
			name: "atime field keeps other attrs",
			opts: []string{"ro", "noatime", "nosuid"},
			want: mountOptions{
				flags:   unix.MS_RDONLY | unix.MS_NOATIME | unix.MS_NOSUID,
				attrSet: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOATIME | unix.MOUNT_ATTR_NOSUID,
				attrClr: atimeMask,
				atime:   true,
			},
		},
		{
			name: "diratime family",
			opts: []string{"nodiratime"},
			want: mountOptions{flags: unix.MS_NODIRATIME, attrSet: unix.MOUNT_ATTR_NODIRATIME},
		},
		{
			name: "recursive words go to rAttr",
			opts: []string{"rro", "rnosuid", "rnodev", "rnoexec"},
			want: mountOptions{rAttrSet: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC},
		},
		{
			name: "recursive clear words",
			opts: []string{"rrw", "rsuid", "rdev", "rexec", "rdiratime", "rsymfollow"},
			want: mountOptions{rAttrClr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW},
		},
		{
			name: "rrw after rro",
			opts: []string{"rro", "rrw"},
			want: mountOptions{rAttrClr: unix.MOUNT_ATTR_RDONLY},
		},
		{
			name: "recursive atime",
			opts: []string{"rnoatime"},
			want: mountOptions{rAttrSet: unix.MOUNT_ATTR_NOATIME, rAttrClr: atimeMask, rAtime: true},
		},
		{
			name: "recursive and top-level are separate",
			opts: []string{"ro", "rnosuid", "rstrictatime", "noatime"},
			want: mountOptions{
				flags:    unix.MS_RDONLY | unix.MS_NOATIME,
				attrSet:  unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOATIME,
				attrClr:  atimeMask,
				atime:    true,
				rAttrSet: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_STRICTATIME,
				rAttrClr: atimeMask,
				rAtime:   true,
			},
		},
		{
			name: "propagation in order",
			opts: []string{"rprivate", "shared", "runbindable", "slave", "rshared", "private", "unbindable", "rslave"},
			want: mountOptions{propagation: []uintptr{
				unix.MS_PRIVATE | unix.MS_REC, unix.MS_SHARED, unix.MS_UNBINDABLE | unix.MS_REC, unix.MS_SLAVE,
				unix.MS_SHARED | unix.MS_REC, unix.MS_PRIVATE, unix.MS_UNBINDABLE, unix.MS_SLAVE | unix.MS_REC,
			}},
		},
		{
			name: "unknown words become data in order",
			opts: []string{"mode=755", "nosuid", "size=64k"},
			want: mountOptions{flags: unix.MS_NOSUID, attrSet: unix.MOUNT_ATTR_NOSUID, data: []string{"mode=755", "size=64k"}},
		},
		{
			name: "tmpcopyup is ours, not the filesystem's",
			opts: []string{"tmpcopyup", "mode=1777"},
			want: mountOptions{copyUp: true, data: []string{"mode=1777"}},
		},
		{
			name: "devpts data",
			opts: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
			want: mountOptions{
				flags:   unix.MS_NOSUID | unix.MS_NOEXEC,
				attrSet: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC,
				data:    []string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
			},
		},
		{
			name: "r-prefixed non-attribute words are data",
			opts: []string{"rsize=8192", "r", "rfoo", "rr"},
			want: mountOptions{data: []string{"rsize=8192", "r", "rfoo", "rr"}},
		},
		{
			name: "bind",
			opts: []string{"bind"},
			want: mountOptions{bind: true},
		},
		{
			name: "rbind",
			opts: []string{"rbind", "ro"},
			want: mountOptions{bind: true, recursive: true, flags: unix.MS_RDONLY, attrSet: unix.MOUNT_ATTR_RDONLY},
		},
		{
			name: "bind then rbind",
			opts: []string{"bind", "rbind"},
			want: mountOptions{bind: true, recursive: true},
		},
		{
			name: "idmap words are not data",
			opts: []string{"rbind", "idmap", "ridmap"},
			want: mountOptions{bind: true, recursive: true},
		},
		{
			name: "symfollow words",
			opts: []string{"nosymfollow"},
			want: mountOptions{flags: unix.MS_NOSYMFOLLOW, attrSet: unix.MOUNT_ATTR_NOSYMFOLLOW},
		},
		{
			name: "symfollow is not data",
			opts: []string{"symfollow"},
			want: mountOptions{attrClr: unix.MOUNT_ATTR_NOSYMFOLLOW},
		},
		{
			name: "mount(2)-only flags",
			opts: []string{"sync", "dirsync", "mand", "iversion", "lazytime", "silent", "remount"},
			want: mountOptions{flags: unix.MS_SYNCHRONOUS | unix.MS_DIRSYNC | unix.MS_MANDLOCK | unix.MS_I_VERSION | unix.MS_LAZYTIME | unix.MS_SILENT | unix.MS_REMOUNT},
		},
		{
			name: "mount(2)-only clear flags",
			opts: []string{"sync", "dirsync", "mand", "iversion", "lazytime", "silent", "async", "nomand", "noiversion", "nolazytime", "loud"},
			want: mountOptions{flags: unix.MS_DIRSYNC},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseOptions(tt.opts)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseOptions(%q) =\n %+v\nwant\n %+v", tt.opts, got, tt.want)
			}
		})
	}
}

func TestDataString(t *testing.T) {
	tests := []struct {
		opts []string
		want string
	}{
		{nil, ""},
		{[]string{"ro", "nosuid"}, ""},
		{[]string{"mode=755", "size=64k"}, "mode=755,size=64k"},
		{[]string{"nosuid", "mode=1777", "noexec", "size=65536k", "rprivate"}, "mode=1777,size=65536k"},
		{[]string{"lowerdir=/a:/b", "upperdir=/u", "workdir=/w"}, "lowerdir=/a:/b,upperdir=/u,workdir=/w"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.opts, ","), func(t *testing.T) {
			o := parseOptions(tt.opts)
			if got := o.dataString(); got != tt.want {
				t.Errorf("dataString = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKnownMountOptions(t *testing.T) {
	known := KnownMountOptions()
	if !sort.StringsAreSorted(known) {
		t.Errorf("not sorted: %q", known)
	}
	seen := map[string]bool{}
	for _, k := range known {
		if seen[k] {
			t.Errorf("duplicate %q", k)
		}
		seen[k] = true
	}
	for _, want := range []string{"rro", "rbind", "bind", "ro", "rw", "rrw", "nosuid", "rnosuid", "noatime", "rnoatime", "strictatime", "relatime", "private", "rprivate", "rslave", "shared", "runbindable", "nosymfollow", "defaults", "remount"} {
		if !seen[want] {
			t.Errorf("KnownMountOptions lacks %q", want)
		}
	}
	for _, not := range []string{"mode=755", "size", "r", "rdefaults", "rbind=1"} {
		if seen[not] {
			t.Errorf("KnownMountOptions has %q", not)
		}
	}
	// Every known word is interpreted by parseOptions, never passed to
	// the filesystem as data.
	for _, k := range known {
		if o := parseOptions([]string{k}); len(o.data) != 0 {
			t.Errorf("known option %q ends up as data %q", k, o.data)
		}
	}
	// The result is a fresh slice.
	known[0] = "changed"
	if KnownMountOptions()[0] == "changed" {
		t.Error("KnownMountOptions shares its slice")
	}
}

func TestCheckProcDestination(t *testing.T) {
	tests := []struct {
		name string
		m    specs.Mount
		want string // substring of the error, "" for ok
	}{
		{"proc at /proc", specs.Mount{Destination: "/proc", Type: "proc"}, ""},
		{"proc at /proc/", specs.Mount{Destination: "/proc/", Type: "proc"}, ""},
		{"proc at //proc/.", specs.Mount{Destination: "//proc/.", Type: "proc"}, ""},
		{"tmpfs at /proc", specs.Mount{Destination: "/proc", Type: "tmpfs"}, `only a proc filesystem may be mounted at /proc, not "tmpfs"`},
		{"bind at /proc", specs.Mount{Destination: "/proc", Type: "bind", Source: "/proc"}, "only a proc filesystem"},
		{"tmpfs at /proc via dotdot", specs.Mount{Destination: "/proc/sys/..", Type: "tmpfs"}, "only a proc filesystem"},
		{"bind over /proc/cpuinfo", specs.Mount{Destination: "/proc/cpuinfo", Type: "bind", Source: "/var/lib/lxcfs/proc/cpuinfo"}, ""},
		{"rbind option over /proc/meminfo", specs.Mount{Destination: "/proc/meminfo", Type: "none", Options: []string{"rbind"}}, ""},
		{"bind over /proc/net/dev", specs.Mount{Destination: "/proc/net/dev", Options: []string{"bind"}}, ""},
		{"bind over ns_last_pid", specs.Mount{Destination: "/proc/sys/kernel/ns_last_pid", Type: "bind"}, ""},
		{"bind over /proc/uptime via dotdot", specs.Mount{Destination: "/proc/self/../uptime", Type: "bind"}, ""},
		{"tmpfs at /proc/cpuinfo", specs.Mount{Destination: "/proc/cpuinfo", Type: "tmpfs"}, "destinations under /proc are not allowed"},
		{"bind over /proc/sys", specs.Mount{Destination: "/proc/sys", Type: "bind", Source: "/tmp"}, "mount /proc/sys: destinations under /proc are not allowed"},
		{"tmpfs at /proc/sys", specs.Mount{Destination: "/proc/sys", Type: "tmpfs"}, "destinations under /proc are not allowed"},
		{"bind over /proc/self/attr", specs.Mount{Destination: "/proc/self/attr/exec", Type: "bind"}, "destinations under /proc are not allowed"},
		{"bind over /proc/sysrq-trigger", specs.Mount{Destination: "/proc/sysrq-trigger", Type: "bind"}, "destinations under /proc are not allowed"},
		{"proc at /proc/sys", specs.Mount{Destination: "/proc/sys", Type: "proc"}, "destinations under /proc are not allowed"},
		{"sibling /procfs is not /proc", specs.Mount{Destination: "/procfs", Type: "tmpfs"}, ""},
		{"sys", specs.Mount{Destination: "/sys", Type: "sysfs"}, ""},
		{"tmpfs at /dev", specs.Mount{Destination: "/dev", Type: "tmpfs"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkProcDestination(tt.m)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("checkProcDestination(%+v) = %v", tt.m, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("checkProcDestination(%+v) = %v, want %q", tt.m, err, tt.want)
			}
		})
	}
}

func TestDefaultDevices(t *testing.T) {
	type dev struct {
		path         string
		typ          string
		major, minor int64
	}
	want := []dev{
		{"/dev/null", "c", 1, 3},
		{"/dev/zero", "c", 1, 5},
		{"/dev/full", "c", 1, 7},
		{"/dev/random", "c", 1, 8},
		{"/dev/urandom", "c", 1, 9},
		{"/dev/tty", "c", 5, 0},
	}
	if len(DefaultDevices) != len(want) {
		t.Fatalf("%d default devices, want %d", len(DefaultDevices), len(want))
	}
	for i, d := range DefaultDevices {
		w := want[i]
		t.Run(w.path, func(t *testing.T) {
			if d.Path != w.path || d.Type != w.typ || d.Major != w.major || d.Minor != w.minor {
				t.Errorf("device %d = %s %s %d:%d, want %s %s %d:%d", i, d.Path, d.Type, d.Major, d.Minor, w.path, w.typ, w.major, w.minor)
			}
			if d.FileMode == nil || *d.FileMode != 0o666 {
				t.Errorf("mode = %v, want 0666", d.FileMode)
			}
			if d.UID == nil || *d.UID != 0 || d.GID == nil || *d.GID != 0 {
				t.Errorf("owner = %v:%v, want 0:0", d.UID, d.GID)
			}
		})
	}
}

func TestDeviceType(t *testing.T) {
	tests := []struct {
		in      string
		want    uint32
		wantErr bool
	}{
		{"c", unix.S_IFCHR, false},
		{"u", unix.S_IFCHR, false},
		{"b", unix.S_IFBLK, false},
		{"p", unix.S_IFIFO, false},
		{"", 0, true},
		{"C", 0, true},
		{"x", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := deviceType(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("deviceType(%q) = %o, %v", tt.in, got, err)
			}
		})
	}
}

// openRoot opens dir as createDevice/setupDev expect.
func openRoot(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: creating device nodes needs root (euid is not 0)")
	}
}

func TestCreateDevice(t *testing.T) {
	requireRoot(t)
	old := unix.Umask(0o077) // mknod applies the umask; createDevice must not
	defer unix.Umask(old)

	u := func(v uint32) *uint32 { return &v }
	fm := func(m os.FileMode) *os.FileMode { return &m }
	tests := []struct {
		name     string
		prepare  func(t *testing.T, rootfs, outside string)
		dev      specs.LinuxDevice
		wantPath string // relative to rootfs
		wantMode uint32
		wantRdev [2]uint32
		wantUID  uint32
		wantGID  uint32
	}{
		{
			name:     "null",
			dev:      DefaultDevices[0],
			wantPath: "dev/null", wantMode: unix.S_IFCHR | 0o666, wantRdev: [2]uint32{1, 3},
		},
		{
			name:     "nested path, owner and mode",
			dev:      specs.LinuxDevice{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200, FileMode: fm(0o640), UID: u(1000), GID: u(5)},
			wantPath: "dev/net/tun", wantMode: unix.S_IFCHR | 0o640, wantRdev: [2]uint32{10, 200}, wantUID: 1000, wantGID: 5,
		},
		{
			name:     "block device",
			dev:      specs.LinuxDevice{Path: "/dev/loopx", Type: "b", Major: 7, Minor: 9, FileMode: fm(0o600)},
			wantPath: "dev/loopx", wantMode: unix.S_IFBLK | 0o600, wantRdev: [2]uint32{7, 9},
		},
		{
			name:     "fifo, default mode",
			dev:      specs.LinuxDevice{Path: "/dev/fifo", Type: "p"},
			wantPath: "dev/fifo", wantMode: unix.S_IFIFO | 0o666,
		},
		{
			name: "existing symlink replaced, not followed",
			prepare: func(t *testing.T, rootfs, outside string) {
				must(t, os.MkdirAll(filepath.Join(rootfs, "dev"), 0o755))
				must(t, os.WriteFile(filepath.Join(outside, "victim"), []byte("host"), 0o600))
				must(t, os.Symlink(filepath.Join(outside, "victim"), filepath.Join(rootfs, "dev/zero")))
			},
			dev:      DefaultDevices[1],
			wantPath: "dev/zero", wantMode: unix.S_IFCHR | 0o666, wantRdev: [2]uint32{1, 5},
		},
		{
			name: "symlinked /dev resolved inside the rootfs",
			prepare: func(t *testing.T, rootfs, outside string) {
				// In the image, /dev -> <outside> (an absolute path that
				// also exists on the host).
				must(t, os.Symlink(outside, filepath.Join(rootfs, "dev")))
				must(t, os.MkdirAll(filepath.Join(rootfs, outside), 0o755))
			},
			dev:      DefaultDevices[0],
			wantPath: "OUTSIDE/null", wantMode: unix.S_IFCHR | 0o666, wantRdev: [2]uint32{1, 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rootfs, outside := t.TempDir(), t.TempDir()
			if tt.prepare != nil {
				tt.prepare(t, rootfs, outside)
			}
			root := openRoot(t, rootfs)
			if err := createDevice(root, &Config{Rootfs: rootfs}, tt.dev); err != nil {
				t.Fatalf("createDevice: %v", err)
			}
			p := strings.Replace(tt.wantPath, "OUTSIDE", strings.TrimPrefix(outside, "/"), 1)
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(rootfs, p), &st); err != nil {
				t.Fatalf("lstat %s: %v", p, err)
			}
			if st.Mode != tt.wantMode {
				t.Errorf("mode = %o, want %o", st.Mode, tt.wantMode)
			}
			if got := [2]uint32{unix.Major(st.Rdev), unix.Minor(st.Rdev)}; got != tt.wantRdev {
				t.Errorf("rdev = %d:%d, want %d:%d", got[0], got[1], tt.wantRdev[0], tt.wantRdev[1])
			}
			if st.Uid != tt.wantUID || st.Gid != tt.wantGID {
				t.Errorf("owner = %d:%d, want %d:%d", st.Uid, st.Gid, tt.wantUID, tt.wantGID)
			}
			// Nothing was created or changed outside the rootfs.
			entries, err := os.ReadDir(outside)
			must(t, err)
			for _, e := range entries {
				if e.Name() != "victim" {
					t.Errorf("created %s outside the rootfs", filepath.Join(outside, e.Name()))
				}
			}
			if b, err := os.ReadFile(filepath.Join(outside, "victim")); err == nil && string(b) != "host" {
				t.Errorf("host file changed: %q", b)
			}
		})
	}
	t.Run("dangling symlinked /dev refused", func(t *testing.T) {
		rootfs, outside := t.TempDir(), t.TempDir()
		// /dev -> <outside>, which exists on the host but not in the rootfs.
		must(t, os.Symlink(outside, filepath.Join(rootfs, "dev")))
		if err := createDevice(openRoot(t, rootfs), &Config{Rootfs: rootfs}, DefaultDevices[0]); err == nil {
			t.Error("createDevice through a dangling /dev symlink succeeded")
		}
		if entries, _ := os.ReadDir(outside); len(entries) != 0 {
			t.Errorf("created %v outside the rootfs", entries)
		}
	})
	t.Run("bad type", func(t *testing.T) {
		rootfs := t.TempDir()
		err := createDevice(openRoot(t, rootfs), &Config{Rootfs: rootfs}, specs.LinuxDevice{Path: "/dev/x", Type: "z"})
		if err == nil || !strings.Contains(err.Error(), `device /dev/x: unknown device type "z"`) {
			t.Fatalf("createDevice = %v", err)
		}
	})
}

func TestSetupDev(t *testing.T) {
	requireRoot(t)
	rootfs := t.TempDir()
	extra := specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}
	if err := setupDev(openRoot(t, rootfs), &Config{Rootfs: rootfs, Devices: []specs.LinuxDevice{extra}}); err != nil {
		t.Fatal(err)
	}
	for _, d := range append(slices.Clone(DefaultDevices), extra) {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(rootfs, d.Path), &st); err != nil {
			t.Errorf("%s: %v", d.Path, err)
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != uint32(d.Major) || unix.Minor(st.Rdev) != uint32(d.Minor) {
			t.Errorf("%s: mode %o rdev %d:%d", d.Path, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
	}
	links := map[string]string{
		"dev/fd": "/proc/self/fd", "dev/stdin": "/proc/self/fd/0", "dev/stdout": "/proc/self/fd/1",
		"dev/stderr": "/proc/self/fd/2", "dev/ptmx": "pts/ptmx",
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links["dev/core"] = "/proc/kcore"
	}
	for link, target := range links {
		got, err := os.Readlink(filepath.Join(rootfs, link))
		if err != nil || got != target {
			t.Errorf("readlink %s = %q, %v; want %q", link, got, err, target)
		}
	}
	// A second run (existing nodes and links) succeeds too.
	if err := setupDev(openRoot(t, rootfs), &Config{Rootfs: rootfs}); err != nil {
		t.Fatalf("second setupDev: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
