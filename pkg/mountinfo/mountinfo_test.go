package mountinfo

import (
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    Mount
		wantErr bool
	}{
		{
			name: "proc example",
			line: `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`,
			want: Mount{ID: 36, Parent: 35, Major: 98, Minor: 0, Root: "/mnt1", MountPoint: "/mnt2",
				Options: "rw,noatime", Optional: "master:1", FSType: "ext3", Source: "/dev/root", SuperOptions: "rw,errors=continue"},
		},
		{
			name: "no optional fields, escaped space",
			line: `25 1 0:22 / /mnt/with\040space rw,relatime - tmpfs tmpfs rw`,
			want: Mount{ID: 25, Parent: 1, Major: 0, Minor: 22, Root: "/", MountPoint: "/mnt/with space",
				Options: "rw,relatime", FSType: "tmpfs", Source: "tmpfs", SuperOptions: "rw"},
		},
		{
			name: "several optional fields",
			line: `30 25 0:26 / /sys/fs/cgroup/memory rw shared:9 master:3 - cgroup cgroup rw,memory`,
			want: Mount{ID: 30, Parent: 25, Major: 0, Minor: 26, Root: "/", MountPoint: "/sys/fs/cgroup/memory",
				Options: "rw", Optional: "shared:9 master:3", FSType: "cgroup", Source: "cgroup", SuperOptions: "rw,memory"},
		},
		{name: "no separator", line: `36 35 98:0 /mnt1 /mnt2 rw`, wantErr: true},
		{name: "bad id", line: `x 35 98:0 / / rw - ext4 /dev/a rw`, wantErr: true},
		{name: "bad device", line: `1 2 980 / / rw - ext4 /dev/a rw`, wantErr: true},
		{name: "missing fs fields", line: `1 2 9:0 / / rw - ext4`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLine(tt.line)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`plain`: "plain", `a\040b`: "a b", `tab\011`: "tab\t", `back\134slash`: `back\slash`,
		`short\04`: `short\04`, `bad\999`: `bad\999`, `\`: `\`,
		`/a\011\012`: "/a\t\n", `/a\777`: `/a\777`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContaining(t *testing.T) {
	mounts := []Mount{{MountPoint: "/"}, {MountPoint: "/var"}, {MountPoint: "/var/lib"}, {MountPoint: "/variable"}}
	for path, want := range map[string]string{
		"/": "/", "/etc": "/", "/var": "/var", "/var/x": "/var", "/var/lib/a": "/var/lib", "/variable/x": "/variable", "/varx": "/",
	} {
		got, ok := Containing(mounts, path)
		if !ok || got.MountPoint != want {
			t.Errorf("Containing(%q) = %q, want %q", path, got.MountPoint, want)
		}
	}
}

func TestReadSelf(t *testing.T) {
	ms, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := Containing(ms, "/"); !ok {
		t.Fatal("no mount contains /")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`)
	f.Add(`25 1 0:22 / /a\040b rw - tmpfs tmpfs rw`)
	f.Add(`1 2 3:4 / / rw - x y`)
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		// Every line must have produced exactly one mount, with the fields
		// callers index on.
		lines := strings.Count(strings.TrimSuffix(s, "\n"), "\n") + 1
		if s == "" {
			lines = 0
		}
		if len(ms) != lines {
			t.Fatalf("%d mounts from %d lines: %q", len(ms), lines, s)
		}
		for _, m := range ms {
			if m.FSType == "" || m.MountPoint == "" {
				t.Fatalf("mount without type or mount point from %q", s)
			}
		}
	})
}
