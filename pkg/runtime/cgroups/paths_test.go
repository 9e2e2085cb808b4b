package cgroups

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const hybridProcCgroup = `9:name=systemd:/
8:pids:/
4:memory:/process_api/afcf
2:cpuacct:/
1:cpu:/
3:cpuset:/
0::/
`

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    map[string]string
		wantErr bool
	}{
		{
			name:    "hybrid",
			content: hybridProcCgroup,
			want: map[string]string{
				"name=systemd": "/", "pids": "/", "memory": "/process_api/afcf",
				"cpuacct": "/", "cpu": "/", "cpuset": "/", "": "/",
			},
		},
		{
			name:    "co-mounted and a path with a colon",
			content: "4:cpu,cpuacct:/a:b\n0::/user.slice/x.scope\n",
			want:    map[string]string{"cpu": "/a:b", "cpuacct": "/a:b", "": "/user.slice/x.scope"},
		},
		{name: "unified only", content: "0::/init.scope\n", want: map[string]string{"": "/init.scope"}},
		{name: "malformed", content: "garbage\n", wantErr: true},
		{name: "relative path", content: "1:cpu:x\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcCgroup(tt.content)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestContainerCgroupPath(t *testing.T) {
	tests := []struct {
		cgroupsPath, id string
		want            string
		relative        bool
		wantErr         bool
	}{
		{cgroupsPath: "/default/c1", id: "c1", want: "/default/c1"},
		{cgroupsPath: "/default//c1/", id: "c1", want: "/default/c1"},
		{cgroupsPath: "/../../etc", id: "c1", want: "/etc"},
		{cgroupsPath: "a/b", id: "c1", want: "a/b", relative: true},
		{cgroupsPath: "a/../../../b", id: "c1", want: "b", relative: true},
		{cgroupsPath: "system.slice:docker:abc", id: "c1", want: "system.slice:docker:abc", relative: true},
		{cgroupsPath: "", id: "c1", want: "c1", relative: true},
		{cgroupsPath: "", id: "", wantErr: true},
		{cgroupsPath: "", id: "..", wantErr: true},
		{cgroupsPath: "", id: "a/b", wantErr: true},
		{cgroupsPath: "/", id: "c1", wantErr: true},
		{cgroupsPath: "..", id: "c1", wantErr: true},
		{cgroupsPath: "/a\x00b", id: "c1", wantErr: true},
	}
	for _, tt := range tests {
		got, relative, err := containerCgroupPath(tt.cgroupsPath, tt.id)
		if (err != nil) != tt.wantErr {
			t.Errorf("containerCgroupPath(%q, %q): err = %v, wantErr %v", tt.cgroupsPath, tt.id, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && (got != tt.want || relative != tt.relative) {
			t.Errorf("containerCgroupPath(%q, %q) = %q, %v; want %q, %v", tt.cgroupsPath, tt.id, got, relative, tt.want, tt.relative)
		}
	}
}

func TestHierarchyDir(t *testing.T) {
	root := cgroupMount{mountpoint: "/sys/fs/cgroup/memory", root: "/", controllers: []string{"memory"}}
	sub := cgroupMount{mountpoint: "/sys/fs/cgroup/memory", root: "/docker/abc", controllers: []string{"memory"}}
	tests := []struct {
		name     string
		mnt      cgroupMount
		own      string
		path     string
		relative bool
		want     string
		wantErr  bool
	}{
		{name: "absolute", mnt: root, own: "/ignored", path: "/default/c1", want: "/sys/fs/cgroup/memory/default/c1"},
		{name: "absolute below a subtree mount", mnt: sub, path: "/c1", want: "/sys/fs/cgroup/memory/c1"},
		{name: "relative at root", mnt: root, own: "/", path: "a/b", relative: true, want: "/sys/fs/cgroup/memory/a/b"},
		{name: "relative nested", mnt: root, own: "/process_api/afcf", path: "c1", relative: true, want: "/sys/fs/cgroup/memory/process_api/afcf/c1"},
		{name: "relative in subtree mount", mnt: sub, own: "/docker/abc/x", path: "c1", relative: true, want: "/sys/fs/cgroup/memory/x/c1"},
		{name: "relative at subtree root", mnt: sub, own: "/docker/abc", path: "c1", relative: true, want: "/sys/fs/cgroup/memory/c1"},
		{name: "own outside subtree mount", mnt: sub, own: "/docker/abcd", path: "c1", relative: true, wantErr: true},
		{name: "own outside cgroup namespace", mnt: root, own: "/../..", path: "c1", relative: true, wantErr: true},
		{name: "own unknown", mnt: root, own: "", path: "c1", relative: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := hierarchyDir(tt.mnt, tt.own, tt.path, tt.relative)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// fakeHost writes a mountinfo and a /proc/self/cgroup into a temporary
// directory whose mountpoints live in that directory too.
func fakeHost(t *testing.T, mode Mode, mountinfo, procCgroup string) (hostLayout, string) {
	t.Helper()
	dir := t.TempDir()
	mountinfo = strings.ReplaceAll(mountinfo, " /sys/fs/cgroup", " "+dir)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return hostLayout{
		mode:           mode,
		unifiedRoot:    dir,
		mountinfoPath:  write("mountinfo", mountinfo),
		procCgroupPath: write("cgroup", procCgroup),
	}, dir
}

func TestNewManagerResolution(t *testing.T) {
	tests := []struct {
		name             string
		mode             Mode
		cgroupsPath, id  string
		want             map[string]string // values relative to the fake root
		wantErr          bool
		procCgroupChange string
	}{
		{
			name: "hybrid absolute", mode: Hybrid, cgroupsPath: "/default/c1", id: "c1",
			want: map[string]string{
				"cpu": "/cpu/default/c1", "cpuacct": "/cpuacct/default/c1", "cpuset": "/cpuset/default/c1",
				"memory": "/memory/default/c1", "name=systemd": "/systemd/default/c1", "": "/unified/default/c1",
			},
		},
		{
			name: "legacy relative skips the cgroup2 mount", mode: Legacy, cgroupsPath: "a/b", id: "c1",
			want: map[string]string{
				"cpu": "/cpu/a/b", "cpuacct": "/cpuacct/a/b", "cpuset": "/cpuset/a/b",
				"memory": "/memory/process_api/afcf/a/b", "name=systemd": "/systemd/a/b",
			},
		},
		{
			name: "hybrid empty path nests the id under our own cgroups, like runc", mode: Hybrid, id: "c1",
			want: map[string]string{
				"cpu": "/cpu/c1", "cpuacct": "/cpuacct/c1", "cpuset": "/cpuset/c1",
				"memory": "/memory/process_api/afcf/c1", "name=systemd": "/systemd/c1", "": "/unified/c1",
			},
		},
		{name: "unified absolute", mode: Unified, cgroupsPath: "/default/c1", id: "c1", want: map[string]string{"": "/default/c1"}},
		{
			name: "unified relative", mode: Unified, cgroupsPath: "c1", id: "c1", want: map[string]string{"": "/user.slice/c1"},
			procCgroupChange: "0::/user.slice\n",
		},
		{name: "bad id", mode: Hybrid, id: "a/b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proc := hybridProcCgroup
			if tt.procCgroupChange != "" {
				proc = tt.procCgroupChange
			}
			h, root := fakeHost(t, tt.mode, hybridMountinfo, proc)
			m, err := h.newManager(tt.cgroupsPath, tt.id)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			want := make(map[string]string)
			for k, v := range tt.want {
				want[k] = root + v
			}
			got := m.Paths()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Paths() = %v\nwant %v", got, want)
			}
			if loaded := Load(got).Paths(); !reflect.DeepEqual(loaded, want) {
				t.Errorf("Load(Paths()).Paths() = %v, want %v", loaded, want)
			}
		})
	}
}

func TestNewManagerWithoutV1Mounts(t *testing.T) {
	h, _ := fakeHost(t, Legacy, "26 1 254:0 / / rw - ext4 /dev/vda rw\n", hybridProcCgroup)
	if _, err := h.newManager("/c1", "c1"); err == nil {
		t.Fatal("newManager succeeded without any cgroup v1 mount")
	}
}

func TestLoadKind(t *testing.T) {
	if _, ok := Load(map[string]string{"": "/sys/fs/cgroup/c1"}).(*v2Manager); !ok {
		t.Error(`Load with only "" is not a v2 manager`)
	}
	if _, ok := Load(map[string]string{"": "/u/c1", "memory": "/m/c1"}).(*v1Manager); !ok {
		t.Error("Load of a hybrid map is not a v1 manager")
	}
	m := Load(nil)
	if err := m.Destroy(); err != nil {
		t.Errorf("Destroy of an empty manager: %v", err)
	}
	if _, err := m.Pids(); err == nil {
		t.Error("Pids of an empty manager succeeded")
	}
}
