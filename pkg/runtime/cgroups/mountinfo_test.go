package cgroups

import (
	"reflect"
	"strings"
	"testing"
)

// hybridMountinfo is this development machine's layout (cpu and cpuacct on
// separate hierarchies, a controller-less cgroup2 at unified).
const hybridMountinfo = `26 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
22 26 0:21 / /sys rw,relatime - sysfs sysfs rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []cgroupMount
		wantErr bool
	}{
		{
			name:    "hybrid host",
			content: hybridMountinfo,
			want: []cgroupMount{
				{mountpoint: "/sys/fs/cgroup/cpu", root: "/", controllers: []string{"cpu"}},
				{mountpoint: "/sys/fs/cgroup/cpuacct", root: "/", controllers: []string{"cpuacct"}},
				{mountpoint: "/sys/fs/cgroup/cpuset", root: "/", controllers: []string{"cpuset"}},
				{mountpoint: "/sys/fs/cgroup/memory", root: "/", controllers: []string{"memory"}},
				{mountpoint: "/sys/fs/cgroup/systemd", root: "/", controllers: []string{"name=systemd"}},
				{mountpoint: "/sys/fs/cgroup/unified", root: "/", unified: true},
			},
		},
		{
			name: "co-mounted controllers, options, optional fields and escapes",
			content: "35 25 0:30 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 master:2 - cgroup cgroup rw,xattr,clone_children,cpu,cpuacct\n" +
				"36 25 0:31 / /sys/fs/cgroup/sys\\040temd rw - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd\n" +
				"37 25 0:32 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
			want: []cgroupMount{
				{mountpoint: "/sys/fs/cgroup/cpu,cpuacct", root: "/docker/abc", controllers: []string{"cpu", "cpuacct"}},
				{mountpoint: "/sys/fs/cgroup/sys temd", root: "/", controllers: []string{"name=systemd"}},
				{mountpoint: "/sys/fs/cgroup", root: "/", unified: true},
			},
		},
		{name: "no cgroups", content: "26 1 254:0 / / rw - ext4 /dev/vda rw\n"},
		{name: "empty", content: ""},
		{name: "truncated cgroup line", content: "31 30 0:28 / - cgroup cgroup rw,cpu\n", wantErr: true},
		{name: "relative mountpoint", content: "31 30 0:28 / cpu rw - cgroup cgroup rw,cpu\n", wantErr: true},
		{name: "other filesystem named cgroup-something", content: "31 30 0:28 / /cpu rw - cgroupx x rw,cpu\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMountinfo(tt.content)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add(hybridMountinfo)
	f.Add("35 25 0:30 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw shared:14 - cgroup cgroup rw,cpu,cpuacct,name=x\n")
	f.Add("1 2 3:4 /\\040 /\\134x rw - cgroup2 none rw\n")
	f.Add(" - cgroup")
	f.Fuzz(func(t *testing.T, content string) {
		mounts, err := parseMountinfo(content)
		if err != nil {
			return
		}
		for _, m := range mounts {
			if !strings.HasPrefix(m.mountpoint, "/") || !strings.HasPrefix(m.root, "/") {
				t.Fatalf("relative path in %+v", m)
			}
			if m.unified && len(m.controllers) > 0 {
				t.Fatalf("cgroup2 mount with v1 controllers: %+v", m)
			}
			for _, c := range m.controllers {
				if c == "" || strings.ContainsAny(c, ", \n") || v1MountOptions[c] {
					t.Fatalf("bad controller %q in %+v", c, m)
				}
			}
		}
	})
}
