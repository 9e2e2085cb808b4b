package mount

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/api/types"
	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		in    []string
		flags uintptr
		data  string
	}{
		{nil, 0, ""},
		{[]string{"ro", "bind"}, unix.MS_RDONLY | unix.MS_BIND, ""},
		{[]string{"rbind", "ro", "rw"}, unix.MS_BIND | unix.MS_REC, ""},
		{[]string{"lowerdir=/a:/b", "upperdir=/u", "workdir=/w", "index=off"}, 0, "lowerdir=/a:/b,upperdir=/u,workdir=/w,index=off"},
		{[]string{"nosuid", "nodev", "size=1m"}, unix.MS_NOSUID | unix.MS_NODEV, "size=1m"},
	} {
		flags, data := parseOptions(tc.in)
		if flags != tc.flags || data != tc.data {
			t.Errorf("parseOptions(%q) = %#x, %q; want %#x, %q", tc.in, flags, data, tc.flags, tc.data)
		}
	}
}

func isMountPoint(t *testing.T, dir string) bool {
	t.Helper()
	var st, parent unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil {
		t.Fatal(err)
	}
	return st.Dev != parent.Dev
}

func TestMountAndUnmount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	dir := t.TempDir()
	lower, upper, work, target := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")
	for _, d := range []string{lower, upper, work, target} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	ms := []*types.Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}}}
	if err := All(ms, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = UnmountAll(target) })
	if b, err := os.ReadFile(filepath.Join(target, "hello")); err != nil || string(b) != "hi" {
		t.Fatalf("read through overlay: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
		t.Fatalf("write did not land in upperdir: %v", err)
	}
	// A read-only bind on top.
	if err := Mount(&types.Mount{Type: "bind", Source: lower, Options: []string{"rbind", "ro"}}, target); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); err == nil {
		t.Fatal("write to a read-only bind mount succeeded")
	}
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	if isMountPoint(t, target) {
		t.Fatal("target is still a mount point")
	}
	// Idempotent, also for a missing target.
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	if err := UnmountAll(filepath.Join(dir, "missing")); err != nil {
		t.Fatal(err)
	}
}

func TestMountErrorNamesTheMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	target := t.TempDir()
	err := All([]*types.Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/nonexistent-lower"}}}, target)
	if err == nil {
		_ = UnmountAll(target)
		t.Fatal("mounting a missing lowerdir succeeded")
	}
	if want := "overlay"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), target) {
		t.Fatalf("error %q does not name the mount", err)
	}
}
