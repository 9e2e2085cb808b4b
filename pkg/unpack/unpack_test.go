package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/mount"
	"github.com/xstack/xstack/pkg/mountinfo"
	"github.com/xstack/xstack/pkg/snapshot"
)

func TestChainIDs(t *testing.T) {
	a, b, c := digest.FromString("a"), digest.FromString("b"), digest.FromString("c")
	ab := digest.FromString(a.String() + " " + b.String())
	abc := digest.FromString(ab.String() + " " + c.String())
	for _, tc := range []struct {
		in   []digest.Digest
		want []digest.Digest
	}{
		{nil, []digest.Digest{}},
		{[]digest.Digest{a}, []digest.Digest{a}},
		{[]digest.Digest{a, b, c}, []digest.Digest{a, ab, abc}},
	} {
		got := ChainIDs(tc.in)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ChainIDs(%v) = %v, want %v", tc.in, got, tc.want)
		}
		// Cross-check with the image-spec's reference implementation.
		if ref := identity.ChainIDs(append([]digest.Digest(nil), tc.in...)); len(tc.in) > 0 && fmt.Sprint(ref) != fmt.Sprint(got) {
			t.Errorf("ChainIDs(%v) = %v, image-spec says %v", tc.in, got, ref)
		}
	}
}

// testLayer is a layer built in memory that counts how often it is opened.
type testLayer struct {
	Layer
	opens *atomic.Int32
}

func newLayer(t *testing.T, files map[string]string) testLayer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(files[n]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	opens := new(atomic.Int32)
	d := digest.FromBytes(data)
	return testLayer{
		Layer: Layer{
			Digest: digest.FromString("blob of " + d.String()),
			DiffID: d,
			Open: func() (io.ReadCloser, error) {
				opens.Add(1)
				return io.NopCloser(bytes.NewReader(data)), nil
			},
		},
		opens: opens,
	}
}

func layers(ls ...testLayer) []Layer {
	out := make([]Layer, len(ls))
	for i, l := range ls {
		out[i] = l.Layer
	}
	return out
}

func newSnapshotter(t *testing.T) (*snapshot.Snapshotter, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (overlay snapshots, chown)")
	}
	base := t.TempDir()
	t.Cleanup(func() {
		ms, err := mountinfo.Read()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if mountinfo.IsUnder(m.MountPoint, base) {
				t.Errorf("leftover mount %s", m.MountPoint)
			}
		}
	})
	sn, err := snapshot.NewOverlay(filepath.Join(base, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	return sn, base
}

func walk(t *testing.T, sn *snapshot.Snapshotter) []snapshot.Info {
	t.Helper()
	var out []snapshot.Info
	if err := sn.Walk(context.Background(), func(i snapshot.Info) error {
		out = append(out, i)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// assertOnlyCommitted checks that sn holds exactly the committed snapshots
// want (no temporary ones) and one directory each.
func assertOnlyCommitted(t *testing.T, sn *snapshot.Snapshotter, root string, want ...digest.Digest) {
	t.Helper()
	infos := walk(t, sn)
	var got []string
	for _, i := range infos {
		if i.Kind != snapshot.KindCommitted {
			t.Errorf("snapshot %s is %s", i.Name, i.Kind)
		}
		got = append(got, i.Name)
	}
	var ws []string
	for _, w := range want {
		ws = append(ws, w.String())
	}
	sort.Strings(ws)
	if strings.Join(got, ",") != strings.Join(ws, ",") {
		t.Errorf("snapshots %v, want %v", got, ws)
	}
	dirs, err := os.ReadDir(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != len(want) {
		t.Errorf("%d snapshot directories for %d snapshots", len(dirs), len(want))
	}
}

func TestSharedLayersUnpackedOnce(t *testing.T) {
	sn, base := newSnapshotter(t)
	root := filepath.Join(base, "snapshots")
	ctx := context.Background()
	l0 := newLayer(t, map[string]string{"base": "0", "shadow": "0"})
	l1 := newLayer(t, map[string]string{"one": "1"})
	l2 := newLayer(t, map[string]string{"two": "2", "shadow": "2"})

	var mu sync.Mutex
	var events []string
	progress := func(d digest.Digest, state string) {
		mu.Lock()
		defer mu.Unlock()
		name := map[digest.Digest]string{l0.Digest: "l0", l1.Digest: "l1", l2.Digest: "l2"}[d]
		events = append(events, name+":"+state)
	}
	top1, err := Unpack(ctx, sn, layers(l0, l1), progress)
	if err != nil {
		t.Fatal(err)
	}
	top2, err := Unpack(ctx, sn, layers(l0, l2), progress)
	if err != nil {
		t.Fatal(err)
	}
	chain1 := ChainIDs([]digest.Digest{l0.DiffID, l1.DiffID})
	chain2 := ChainIDs([]digest.Digest{l0.DiffID, l2.DiffID})
	if top1 != chain1[1] || top2 != chain2[1] {
		t.Errorf("top chain IDs %s %s, want %s %s", top1, top2, chain1[1], chain2[1])
	}
	want := "l0:unpacking,l0:unpacked,l1:unpacking,l1:unpacked,l0:exists,l2:unpacking,l2:unpacked"
	if got := strings.Join(events, ","); got != want {
		t.Errorf("progress %s\nwant     %s", got, want)
	}
	for name, l := range map[string]testLayer{"l0": l0, "l1": l1, "l2": l2} {
		if n := l.opens.Load(); n != 1 {
			t.Errorf("%s opened %d times", name, n)
		}
	}
	assertOnlyCommitted(t, sn, root, chain1[0], chain1[1], chain2[1])
	if info, err := sn.Stat(ctx, top2.String()); err != nil || info.Parent != chain2[0].String() || info.Labels[LabelLayer] != l2.Digest.String() {
		t.Errorf("Stat top2: %+v %v", info, err)
	}
	// Unpacking again does nothing.
	if _, err := Unpack(ctx, sn, layers(l0, l1), nil); err != nil || l0.opens.Load() != 1 || l1.opens.Load() != 1 {
		t.Errorf("second unpack: %v, opens %d %d", err, l0.opens.Load(), l1.opens.Load())
	}

	// The merged view of image 2 has l0 and l2, not l1.
	ms, err := sn.View(ctx, "view", top2.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(base, "rootfs")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mount.All(ms, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mount.UnmountAll(target); err != nil {
			t.Errorf("unmount: %v", err)
			_ = unix.Unmount(target, unix.MNT_DETACH)
		}
	})
	for f, want := range map[string]string{"base": "0", "two": "2", "shadow": "2"} {
		b, err := os.ReadFile(filepath.Join(target, f))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", f, b, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(target, "one")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("layer of the other image visible: %v", err)
	}
}

func TestDiffIDMismatchCleansUp(t *testing.T) {
	sn, base := newSnapshotter(t)
	root := filepath.Join(base, "snapshots")
	ctx := context.Background()
	good := newLayer(t, map[string]string{"a": "a"})
	bad := newLayer(t, map[string]string{"b": "b"})
	bad.DiffID = digest.FromString("something else")

	_, err := Unpack(ctx, sn, layers(good, bad), nil)
	if err == nil {
		t.Fatal("Unpack with a wrong diffID succeeded")
	}
	if !strings.Contains(err.Error(), bad.Digest.String()) || !strings.Contains(err.Error(), "mismatch") {
		t.Errorf("error %q does not name layer %s and the mismatch", err, bad.Digest)
	}
	// The good layer stays committed; the bad one left nothing behind.
	assertOnlyCommitted(t, sn, root, good.DiffID)

	// Bad input is refused before anything is created.
	for name, ls := range map[string][]Layer{
		"none":      nil,
		"no diffID": {{Digest: good.Digest, Open: good.Open}},
		"no Open":   {{Digest: good.Digest, DiffID: good.DiffID}},
	} {
		if _, err := Unpack(ctx, sn, ls, nil); err == nil {
			t.Errorf("%s: Unpack succeeded", name)
		}
	}
	// An Open error and a broken tar clean up too.
	failing := newLayer(t, map[string]string{"c": "c"})
	failing.Open = func() (io.ReadCloser, error) { return nil, errors.New("blob missing") }
	if _, err := Unpack(ctx, sn, layers(good, failing), nil); err == nil || !strings.Contains(err.Error(), "blob missing") {
		t.Errorf("open failure: %v", err)
	}
	broken := newLayer(t, map[string]string{"d": "d"})
	broken.Open = func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(strings.Repeat("not a tar ", 100))), nil
	}
	if _, err := Unpack(ctx, sn, layers(broken), nil); err == nil {
		t.Error("broken tar: Unpack succeeded")
	}
	assertOnlyCommitted(t, sn, root, good.DiffID)
}

func TestConcurrentUnpack(t *testing.T) {
	sn, base := newSnapshotter(t)
	root := filepath.Join(base, "snapshots")
	ctx := context.Background()
	l0 := newLayer(t, map[string]string{"0": strings.Repeat("0", 1<<20)})
	l1 := newLayer(t, map[string]string{"1": "1"})
	l2 := newLayer(t, map[string]string{"2": "2"})
	l3 := newLayer(t, map[string]string{"3": "3"})
	images := [][]Layer{layers(l0, l1, l2), layers(l0, l1, l3)}

	var wg sync.WaitGroup
	tops := make([]digest.Digest, 16)
	for i := range tops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			top, err := Unpack(ctx, sn, images[i%2], nil)
			if err != nil {
				t.Errorf("Unpack %d: %v", i, err)
			}
			tops[i] = top
		}()
	}
	wg.Wait()
	for i, top := range tops {
		if top != tops[i%2] {
			t.Errorf("unpack %d returned %s, want %s", i, top, tops[i%2])
		}
	}
	for name, l := range map[string]testLayer{"l0": l0, "l1": l1, "l2": l2, "l3": l3} {
		if n := l.opens.Load(); n != 1 {
			t.Errorf("%s unpacked %d times", name, n)
		}
	}
	c := ChainIDs([]digest.Digest{l0.DiffID, l1.DiffID, l2.DiffID})
	c3 := ChainIDs([]digest.Digest{l0.DiffID, l1.DiffID, l3.DiffID})
	assertOnlyCommitted(t, sn, root, c[0], c[1], c[2], c3[2])
}

func TestUnpackCancelled(t *testing.T) {
	sn, base := newSnapshotter(t)
	ctx, cancel := context.WithCancel(context.Background())
	l := newLayer(t, map[string]string{"a": "a"})
	open := l.Open
	l.Open = func() (io.ReadCloser, error) {
		cancel() // cancelled while unpacking
		return open()
	}
	if _, err := Unpack(ctx, sn, layers(l), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Unpack: %v, want context.Canceled", err)
	}
	assertOnlyCommitted(t, sn, filepath.Join(base, "snapshots"))
}

func TestKeyLock(t *testing.T) {
	var l keyLock
	ctx := context.Background()
	if err := l.lock(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.lock(cctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("lock of a held key with a cancelled context: %v", err)
	}
	if err := l.lock(ctx, "other"); err != nil {
		t.Errorf("other key: %v", err)
	}
	l.unlock("other")
	l.unlock("k")
	if err := l.lock(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	l.unlock("k")
	if len(l.locks) != 0 {
		t.Errorf("%d lock entries left", len(l.locks))
	}
}
