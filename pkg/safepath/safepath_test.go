package safepath

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"": ".", "/": ".", "a": "a", "/a/b/": "a/b", "../../etc": "etc", "a/../../b": "b", "/./x/./y": "x/y",
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// tree builds a root with hostile symlinks next to an outside marker dir.
func tree(t *testing.T) (root *os.File, rootPath, outside string) {
	t.Helper()
	base := t.TempDir()
	rootPath = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	for _, d := range []string{rootPath + "/etc", rootPath + "/real", outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"abs":      outside,        // absolute symlink to the host
		"up":       "../../..",     // climbs out
		"updir":    "../outside",   // relative escape
		"inside":   "/real",        // absolute but meant for the root
		"dangling": "/nope/deeper", // dangling
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(rootPath, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootPath, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(rootPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, rootPath, outside
}

func fdPath(t *testing.T, f *os.File) string {
	t.Helper()
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMkdirAllStaysInside(t *testing.T) {
	root, rootPath, outside := tree(t)
	tests := []struct {
		path    string
		want    string // expected directory, relative to the root
		wantErr bool
	}{
		{path: "a/b/c", want: "a/b/c"},
		// Symlinks are resolved inside the root: these point at places
		// that do not exist there, so they are dangling.
		{path: "/abs/x", wantErr: true},
		{path: "updir/z", wantErr: true},
		{path: "up/y", want: "y"},
		{path: "inside/w", want: "real/w"},
		{path: "../../../../q", want: "q"},
		{path: "file/sub", wantErr: true},
		{path: "dangling", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			d, err := MkdirAll(root, tt.path, 0o755)
			if tt.wantErr {
				if err == nil {
					d.Close()
					t.Fatalf("MkdirAll(%q) succeeded, want an error", tt.path)
				}
				return
			}
			if err != nil {
				t.Fatalf("MkdirAll(%q): %v", tt.path, err)
			}
			defer d.Close()
			if got, want := fdPath(t, d), filepath.Join(rootPath, tt.want); got != want {
				t.Fatalf("MkdirAll(%q) made %s, want %s", tt.path, got, want)
			}
		})
	}
	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("something was created outside the root: %v", entries)
	}
}

func TestOpenRefusesMagicLinks(t *testing.T) {
	root, _, _ := tree(t)
	_, err := Open(root, "/proc/self/root", unix.O_PATH)
	if err == nil {
		t.Fatal("opened a path outside the tree")
	}
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("want ENOENT (no /proc inside the root), got %v", err)
	}
}

func FuzzMkdirAllNeverEscapes(f *testing.F) {
	for _, s := range []string{"a", "../x", "abs/../../y", "up/up/z", "inside/../../../w", "//a//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		if strings.ContainsRune(path, 0) || len(path) > 200 {
			return
		}
		root, rootPath, outside := tree(t)
		d, err := MkdirAll(root, path, 0o755)
		if err != nil {
			return
		}
		got := fdPath(t, d)
		d.Close()
		if got != rootPath && !strings.HasPrefix(got, rootPath+"/") {
			t.Fatalf("MkdirAll(%q) resolved to %s, outside %s", path, got, rootPath)
		}
		if entries, _ := os.ReadDir(outside); len(entries) != 0 {
			t.Fatalf("MkdirAll(%q) created %v outside the root", path, entries)
		}
	})
}
