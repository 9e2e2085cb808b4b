package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWriteFileErrorNamesFileAndValue(t *testing.T) {
	dir := t.TempDir()
	err := writeFile(dir, "missing", "42")
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("err = %v, want ENOENT", err)
	}
	want := `write ` + dir + `/missing="42": `
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want prefix %q", err, want)
	}
	if _, err := readFile(dir, "missing"); !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), dir+"/missing") {
		t.Errorf("readFile error = %v", err)
	}
}

func TestReadFileLarge(t *testing.T) {
	content := strings.Repeat("0123456789abcdef\n", 1000) // larger than one buffer
	dir := fakeCgroupDir(t, map[string]string{"big": content})
	got, err := readFile(dir, "big")
	if err != nil || got != content {
		t.Errorf("readFile returned %d bytes, %v; want %d", len(got), err, len(content))
	}
}

func TestParseLimit(t *testing.T) {
	tests := map[string]uint64{
		"max\n": Unlimited, "9223372036854771712\n": Unlimited, "9223372036854775807": Unlimited,
		"0": 0, "134217728\n": 134217728,
	}
	for in, want := range tests {
		if got, err := parseLimit(in); err != nil || got != want {
			t.Errorf("parseLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseLimit("-1"); err == nil {
		t.Error(`parseLimit("-1") succeeded`)
	}
}

func TestMakeCgroupDirCreatesTopDown(t *testing.T) {
	root := t.TempDir()
	var created []string
	onCreate := func(dir string) error {
		created = append(created, strings.TrimPrefix(dir, root))
		return nil
	}
	if err := makeCgroupDir(root+"/a/b/c", false, onCreate); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/a", "/a/b", "/a/b/c"}; !reflect.DeepEqual(created, want) {
		t.Errorf("created %v, want %v", created, want)
	}
	created = nil
	if err := makeCgroupDir(root+"/a/b/c", false, onCreate); err != nil || created != nil {
		t.Errorf("second makeCgroupDir: %v, created %v", err, created)
	}
	// A temporary directory is no cgroupfs: with the check on, nothing may
	// be left behind.
	if err := makeCgroupDir(root+"/x/y", true, nil); err == nil {
		t.Error("makeCgroupDir created directories outside cgroupfs")
	}
	if _, err := os.Stat(root + "/x"); !os.IsNotExist(err) {
		t.Errorf("stat %s/x: %v, want it removed", root, err)
	}
}

func TestRemoveCgroupDirIdempotent(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "c1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := removeCgroupDir(dir); err != nil {
			t.Fatalf("removeCgroupDir #%d: %v", i, err)
		}
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("parent removed: %v", err)
	}
}

func TestCollectPidsRecursive(t *testing.T) {
	root := fakeCgroupDir(t, map[string]string{"cgroup.procs": "1\n2\n"})
	sub := filepath.Join(root, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "cgroup.procs"), []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := collectPids(root, nil)
	if err != nil || !reflect.DeepEqual(got, []int{1, 2, 3}) {
		t.Errorf("collectPids = %v, %v", got, err)
	}
}

func TestFillCpusetCopiesFromFirstNonEmptyAncestor(t *testing.T) {
	root := fakeCgroupDir(t, map[string]string{"cpuset.cpus": "0-3\n", "cpuset.mems": "0\n"})
	mid, leaf := root+"/mid", root+"/mid/leaf"
	for _, d := range []string{mid, leaf} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if err := os.WriteFile(d+"/"+f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := fillCpuset(leaf, false); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{mid, leaf} {
		if got := readFake(t, d, "cpuset.cpus"); got != "0-3" {
			t.Errorf("%s cpuset.cpus = %q", d, got)
		}
		if got := readFake(t, d, "cpuset.mems"); got != "0" {
			t.Errorf("%s cpuset.mems = %q", d, got)
		}
	}
}
