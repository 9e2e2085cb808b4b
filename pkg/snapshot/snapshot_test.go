package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/containerd/api/types"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/mount"
	"github.com/xstack/xstack/pkg/mountinfo"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (overlay and bind mounts)")
	}
}

// newTest opens a snapshotter in a temp dir and checks at the end that no
// mount is left under it.
func newTest(t *testing.T) (*Snapshotter, string) {
	t.Helper()
	requireRoot(t)
	base := t.TempDir()
	t.Cleanup(func() { assertNoMountsUnder(t, base) })
	s, err := NewOverlay(filepath.Join(base, "root"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, base
}

func assertNoMountsUnder(t *testing.T, dir string) {
	t.Helper()
	ms, err := mountinfo.Read()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if mountinfo.IsUnder(m.MountPoint, dir) {
			t.Errorf("leftover mount %s (%s)", m.MountPoint, m.FSType)
		}
	}
}

// mountAt mounts ms on a new directory under base, unmounted at cleanup.
func mountAt(t *testing.T, base, name string, ms []*types.Mount) string {
	t.Helper()
	target := filepath.Join(base, "mnt-"+name)
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mount.All(ms, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmount(t, target) })
	return target
}

func unmount(t *testing.T, target string) {
	t.Helper()
	if err := mount.UnmountAll(target); err != nil {
		t.Errorf("unmount %s: %v", target, err)
		_ = unix.Unmount(target, unix.MNT_DETACH)
	}
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// layer prepares key on parent, writes files into its upper dir and commits
// it as name.
func layer(t *testing.T, s *Snapshotter, name, parent string, files map[string]string) {
	t.Helper()
	ctx := context.Background()
	key := name + "-active"
	if _, err := s.Prepare(ctx, key, parent, map[string]string{"l": name}); err != nil {
		t.Fatal(err)
	}
	upper, err := s.UpperDir(key)
	if err != nil {
		t.Fatal(err)
	}
	for p, body := range files {
		writeFile(t, filepath.Join(upper, p), body)
	}
	if err := s.Commit(ctx, name, key); err != nil {
		t.Fatal(err)
	}
}

// dirEntries lists root/snapshots.
func dirEntries(t *testing.T, s *Snapshotter) []string {
	t.Helper()
	es, err := os.ReadDir(s.snapshotsDir())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func names(t *testing.T, s *Snapshotter) []string {
	t.Helper()
	var out []string
	if err := s.Walk(context.Background(), func(i Info) error {
		out = append(out, i.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// assertConsistent checks that records and directories match one to one.
func assertConsistent(t *testing.T, s *Snapshotter) {
	t.Helper()
	if d, n := dirEntries(t, s), names(t, s); len(d) != len(n) {
		t.Errorf("%d directories %v for %d records %v", len(d), d, len(n), n)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindActive: "active", KindView: "view", KindCommitted: "committed", 0: "kind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("%d: %q, want %q", int(k), got, want)
		}
	}
}

func TestChainMountsAndContent(t *testing.T) {
	s, base := newTest(t)
	ctx := context.Background()

	// Base layer through a real bind mount of the active snapshot.
	ms, err := s.Prepare(ctx, "a-active", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Type != "bind" || strings.Join(ms[0].Options, ",") != "rbind,rw" {
		t.Fatalf("active without parent: %+v", ms)
	}
	m := mountAt(t, base, "a", ms)
	writeFile(t, filepath.Join(m, "from-a"), "a")
	writeFile(t, filepath.Join(m, "shadowed"), "a")
	unmount(t, m)
	if err := s.Commit(ctx, "a", "a-active"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "a-active"); !errors.Is(err, ErrNotFound) || !errdefs.IsNotFound(err) {
		t.Errorf("Stat of committed key: %v", err)
	}
	if info, err := s.Stat(ctx, "a"); err != nil || info.Kind != KindCommitted || info.Parent != "" {
		t.Errorf("Stat a: %+v %v", info, err)
	}

	// Second layer through an overlay.
	ms, err = s.Prepare(ctx, "b-active", "a", map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Type != "overlay" {
		t.Fatalf("active with parent: %+v", ms)
	}
	m = mountAt(t, base, "b", ms)
	if got := readFile(t, filepath.Join(m, "from-a")); got != "a" {
		t.Errorf("from-a through overlay = %q", got)
	}
	writeFile(t, filepath.Join(m, "from-b"), "b")
	writeFile(t, filepath.Join(m, "shadowed"), "b")
	unmount(t, m)
	if info, err := s.Stat(ctx, "b-active"); err != nil || info.Kind != KindActive || info.Labels["k"] != "v" {
		t.Errorf("Stat b-active: %+v %v", info, err)
	}
	if err := s.Commit(ctx, "b", "b-active"); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Stat(ctx, "b"); info.Parent != "a" || info.Labels["k"] != "v" {
		t.Errorf("Stat b: %+v", info)
	}

	// Active on two parents: lowerdir nearest first, parents' dirs shared.
	ms, err = s.Prepare(ctx, "c", "b", nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := strings.Join(ms[0].Options, ",")
	lower := "lowerdir=" + s.fsDir(2) + ":" + s.fsDir(1)
	if !strings.Contains(opts, lower) || !strings.Contains(opts, "upperdir="+s.fsDir(3)) || !strings.Contains(opts, "workdir="+s.workDir(3)) {
		t.Errorf("c options %q, want %s and upper/work of id 3", opts, lower)
	}
	if again, err := s.Mounts(ctx, "c"); err != nil || strings.Join(again[0].Options, ",") != opts {
		t.Errorf("Mounts(c) = %+v, %v", again, err)
	}
	m = mountAt(t, base, "c", ms)
	for f, want := range map[string]string{"from-a": "a", "from-b": "b", "shadowed": "b"} {
		if got := readFile(t, filepath.Join(m, f)); got != want {
			t.Errorf("c: %s = %q, want %q", f, got, want)
		}
	}
	writeFile(t, filepath.Join(m, "from-c"), "c")
	upper, _ := s.UpperDir("c")
	if got := readFile(t, filepath.Join(upper, "from-c")); got != "c" {
		t.Errorf("write did not land in c's upper dir")
	}

	// View of one parent: read-only bind of the parent's own directory.
	ms, err = s.View(ctx, "v1", "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Type != "bind" || ms[0].Source != s.fsDir(1) || !contains(ms[0].Options, "ro") {
		t.Errorf("view of one parent: %+v", ms)
	}
	m = mountAt(t, base, "v1", ms)
	if got := readFile(t, filepath.Join(m, "shadowed")); got != "a" {
		t.Errorf("v1 shadowed = %q", got)
	}
	if err := os.WriteFile(filepath.Join(m, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write in view: %v, want EROFS", err)
	}
	// View of a chain: overlay with lower dirs only.
	ms, err = s.View(ctx, "v2", "b", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ms[0].Options, ","); ms[0].Type != "overlay" || strings.Contains(got, "upperdir") || !strings.Contains(got, lower) {
		t.Errorf("view of chain: %+v", ms)
	}
	m = mountAt(t, base, "v2", ms)
	if got := readFile(t, filepath.Join(m, "shadowed")); got != "b" {
		t.Errorf("v2 shadowed = %q", got)
	}
	if err := os.WriteFile(filepath.Join(m, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write in overlay view: %v, want EROFS", err)
	}
	// View without parent: read-only bind of an empty dir.
	if ms, err = s.View(ctx, "v0", "", nil); err != nil || ms[0].Type != "bind" || !contains(ms[0].Options, "ro") {
		t.Errorf("view without parent: %+v %v", ms, err)
	}

	if _, err := s.Mounts(ctx, "a"); !errors.Is(err, ErrWrongKind) {
		t.Errorf("Mounts of committed: %v", err)
	}
	if _, err := s.UpperDir("v1"); !errors.Is(err, ErrWrongKind) {
		t.Errorf("UpperDir of view: %v", err)
	}
	if err := s.Commit(ctx, "v1c", "v1"); !errors.Is(err, ErrWrongKind) {
		t.Errorf("Commit of view: %v", err)
	}
	if got, want := strings.Join(names(t, s), ","), "a,b,c,v0,v1,v2"; got != want {
		t.Errorf("Walk: %s, want %s", got, want)
	}
	assertConsistent(t, s)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestErrors(t *testing.T) {
	s, _ := newTest(t)
	ctx := context.Background()
	layer(t, s, "base", "", map[string]string{"f": "1"})
	if _, err := s.Prepare(ctx, "act", "base", nil); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		op   func() error
		want error
	}{
		{"prepare duplicate active key", func() error { _, err := s.Prepare(ctx, "act", "", nil); return err }, ErrExists},
		{"prepare over committed name", func() error { _, err := s.Prepare(ctx, "base", "", nil); return err }, ErrExists},
		{"view duplicate", func() error { _, err := s.View(ctx, "act", "base", nil); return err }, ErrExists},
		{"commit to existing name", func() error { return s.Commit(ctx, "base", "act") }, ErrExists},
		{"missing parent", func() error { _, err := s.Prepare(ctx, "x", "nope", nil); return err }, ErrNotFound},
		{"active parent", func() error { _, err := s.Prepare(ctx, "y", "act", nil); return err }, ErrWrongKind},
		{"commit missing", func() error { return s.Commit(ctx, "z", "nope") }, ErrNotFound},
		{"remove missing", func() error { return s.Remove(ctx, "nope") }, ErrNotFound},
		{"remove with children", func() error { return s.Remove(ctx, "base") }, ErrHasChildren},
		{"stat missing", func() error { _, err := s.Stat(ctx, "nope"); return err }, ErrNotFound},
		{"mounts missing", func() error { _, err := s.Mounts(ctx, "nope"); return err }, ErrNotFound},
		{"upperdir missing", func() error { _, err := s.UpperDir("nope"); return err }, ErrNotFound},
		{"empty key", func() error { _, err := s.Prepare(ctx, "", "", nil); return err }, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if err := s.Remove(ctx, "base"); !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "act") {
		t.Errorf("remove with children: %v (want FailedPrecondition naming the child)", err)
	}
	if _, err := s.Prepare(ctx, "act", "", nil); !errdefs.IsAlreadyExists(err) {
		t.Errorf("duplicate: %v, want errdefs AlreadyExists", err)
	}
	// Failed operations left neither records nor directories behind.
	assertConsistent(t, s)
	if got := strings.Join(names(t, s), ","); got != "act,base" {
		t.Errorf("snapshots after failures: %s", got)
	}
	// Removing the child, then the parent, works and deletes the dirs.
	if err := s.Remove(ctx, "act"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "base"); err != nil {
		t.Fatal(err)
	}
	if d := dirEntries(t, s); len(d) != 0 {
		t.Errorf("directories left after removing everything: %v", d)
	}
}

func TestGCKeepsAncestors(t *testing.T) {
	s, _ := newTest(t)
	ctx := context.Background()
	// a <- b <- c(active), a <- d, e, e <- f(view)
	layer(t, s, "a", "", map[string]string{"a": "a"})
	layer(t, s, "b", "a", nil)
	if _, err := s.Prepare(ctx, "c", "b", nil); err != nil {
		t.Fatal(err)
	}
	layer(t, s, "d", "a", nil)
	layer(t, s, "e", "", nil)
	if _, err := s.View(ctx, "f", "e", nil); err != nil {
		t.Fatal(err)
	}
	removed, err := s.GC(ctx, map[string]bool{"c": true, "missing": true})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(removed, ","); got != "d,e,f" {
		t.Errorf("GC removed %s, want d,e,f", got)
	}
	if got := strings.Join(names(t, s), ","); got != "a,b,c" {
		t.Errorf("left %s, want a,b,c", got)
	}
	assertConsistent(t, s)
	if removed, err := s.GC(ctx, map[string]bool{"c": true}); err != nil || len(removed) != 0 {
		t.Errorf("second GC: %v %v", removed, err)
	}
	if removed, err := s.GC(ctx, nil); err != nil || strings.Join(removed, ",") != "a,b,c" {
		t.Errorf("GC of everything: %v %v", removed, err)
	}
	if d := dirEntries(t, s); len(d) != 0 {
		t.Errorf("directories left: %v", d)
	}
}

func TestReopenAfterCrash(t *testing.T) {
	s, base := newTest(t)
	ctx := context.Background()
	layer(t, s, "a", "", map[string]string{"file": "kept"})
	if _, err := s.Prepare(ctx, "work", "a", map[string]string{"x": "y"}); err != nil {
		t.Fatal(err)
	}
	// Leftovers of a crash at each step: a half-built dir, a dir renamed
	// into place whose transaction never committed, a half-removed one.
	for _, d := range []string{"new-123456", "99", "rm-1"} {
		p := filepath.Join(s.snapshotsDir(), d, "fs")
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(p, "junk"), "junk")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := NewOverlay(filepath.Join(base, "root"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	got := dirEntries(t, s2)
	sort.Strings(got)
	if strings.Join(got, ",") != "1,2" {
		t.Errorf("snapshot dirs after reopen: %v, want 1,2", got)
	}
	if info, err := s2.Stat(ctx, "work"); err != nil || info.Kind != KindActive || info.Parent != "a" || info.Labels["x"] != "y" {
		t.Errorf("Stat after reopen: %+v %v", info, err)
	}
	ms, err := s2.Mounts(ctx, "work")
	if err != nil {
		t.Fatal(err)
	}
	m := mountAt(t, base, "work", ms)
	if got := readFile(t, filepath.Join(m, "file")); got != "kept" {
		t.Errorf("content after reopen = %q", got)
	}
	// Ids are not reused after a reopen.
	if _, err := s2.Prepare(ctx, "new", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s2.dir(3)); err != nil {
		t.Errorf("new snapshot not at id 3: %v", err)
	}
	assertConsistent(t, s2)
}

func TestNewOverlayErrors(t *testing.T) {
	requireRoot(t)
	f := filepath.Join(t.TempDir(), "file")
	writeFile(t, f, "")
	if _, err := NewOverlay(f); err == nil {
		t.Error("NewOverlay on a file succeeded")
	}
	// A second snapshotter on the same root would corrupt it: bbolt's lock
	// refuses it (after its timeout, so this is not tested here).
}

func TestConcurrent(t *testing.T) {
	s, _ := newTest(t)
	ctx := context.Background()
	layer(t, s, "base", "", nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "same"
			if i%2 == 0 {
				key = fmt.Sprintf("k%d", i)
			}
			_, err := s.Prepare(ctx, key, "base", nil)
			switch {
			case err == nil && key == "same":
				mu.Lock()
				wins++
				mu.Unlock()
			case err != nil && (key != "same" || !errors.Is(err, ErrExists)):
				t.Errorf("Prepare %s: %v", key, err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d Prepares of the same key succeeded", wins)
	}
	if n := len(names(t, s)); n != 22 {
		t.Errorf("%d snapshots, want 22", n)
	}
	assertConsistent(t, s)
}
