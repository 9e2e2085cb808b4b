package xd

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xstack/xstack/integration/internal/testenv"
)

type tarEntry struct {
	hdr  tar.Header
	data string
}

func tarOf(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		h.Size = int64(len(e.data))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// ociArchive wraps one uncompressed layer into an OCI image-layout tar
// named name.
func ociArchive(t *testing.T, name string, layer []byte) string {
	t.Helper()
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/bin/sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digestOf(layer)}},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digestOf(config), "size": len(config)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digestOf(layer), "size": len(layer)}},
	})
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digestOf(manifest), "size": len(manifest),
			"annotations": map[string]string{"io.containerd.image.name": name},
		}},
	})
	blob := func(b []byte) string { return "blobs/sha256/" + strings.TrimPrefix(digestOf(b), "sha256:") }
	archive := tarOf(t, []tarEntry{
		{tar.Header{Name: "oci-layout", Typeflag: tar.TypeReg}, `{"imageLayoutVersion":"1.0.0"}`},
		{tar.Header{Name: blob(config), Typeflag: tar.TypeReg}, string(config)},
		{tar.Header{Name: blob(layer), Typeflag: tar.TypeReg}, string(layer)},
		{tar.Header{Name: blob(manifest), Typeflag: tar.TypeReg}, string(manifest)},
		{tar.Header{Name: "index.json", Typeflag: tar.TypeReg}, string(index)},
	})
	path := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(path, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHostileLayers imports images whose layer tries to write outside its
// snapshot. Nothing lands outside; an image whose layer cannot be applied
// safely is refused with its error and leaves no blob, snapshot or name.
func TestHostileLayers(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	blobs := d.countBlobs()
	outside := t.TempDir() // the host directory a hostile layer aims at
	sentinel := "xd-escape-" + testenv.RandHex(4)
	for _, tc := range []struct {
		name    string
		entries []tarEntry
		refused bool
		// inside is where the entry must land in the layer's snapshot
		// ("" for none: the entry is skipped).
		inside string
	}{
		{"dot-dot", []tarEntry{
			{tar.Header{Name: "../../../../../../.." + outside + "/" + sentinel, Typeflag: tar.TypeReg}, "x"},
		}, false, outside + "/" + sentinel},
		{"absolute", []tarEntry{
			{tar.Header{Name: outside + "/" + sentinel, Typeflag: tar.TypeReg}, "x"},
		}, false, outside + "/" + sentinel},
		{"write through a symlink", []tarEntry{
			{tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: outside}, ""},
			{tar.Header{Name: "evil/" + sentinel, Typeflag: tar.TypeReg}, "x"},
		}, true, ""},
		{"hardlink out", []tarEntry{
			{tar.Header{Name: "passwd", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}, ""},
		}, true, ""},
		{"device node", []tarEntry{
			{tar.Header{Name: "sda-" + sentinel, Typeflag: tar.TypeBlock, Devmajor: 8, Devminor: 0, Mode: 0o600}, ""},
		}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "xstack.local/hostile:" + strings.ReplaceAll(tc.name, " ", "-")
			archive := ociArchive(t, name, tarOf(t, tc.entries))
			_, errOut, code := d.xctl("images", "import", archive)
			if _, err := os.Lstat(filepath.Join(outside, sentinel)); err == nil {
				t.Fatalf("the layer wrote %s on the host", filepath.Join(outside, sentinel))
			}
			if tc.refused {
				if code == 0 {
					t.Fatal("a layer that cannot be applied safely was imported")
				}
				if !strings.HasPrefix(errOut, "xctl: ") {
					t.Errorf("error not in xctl's format: %q", errOut)
				}
				if ls := d.ok("images", "ls", "-q"); strings.Contains(ls, "hostile") {
					t.Fatalf("a refused image is named:\n%s", ls)
				}
				if n := d.countBlobs(); n != blobs {
					t.Fatalf("a refused import left blobs: %d, had %d", n, blobs)
				}
				return
			}
			if code != 0 {
				t.Fatalf("import: exit %d: %s", code, errOut)
			}
			// The entry was confined to the snapshot, or skipped.
			found := d.inSnapshots(t, filepath.Base(tc.entries[len(tc.entries)-1].hdr.Name))
			switch {
			case tc.inside == "" && len(found) > 0:
				t.Fatalf("a skipped entry exists: %v", found)
			case tc.inside != "" && (len(found) != 1 || !strings.HasSuffix(found[0], "/fs"+tc.inside)):
				t.Fatalf("entry not confined to %s in the snapshot: %v", tc.inside, found)
			}
			d.ok("images", "rm", name)
		})
	}
}

// inSnapshots lists the paths of xd's snapshots holding a file named base.
func (d *daemon) inSnapshots(t *testing.T, base string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(filepath.Join(d.root, "snapshots"), func(path string, e os.DirEntry, err error) error {
		if err == nil && e.Name() == base {
			found = append(found, path)
		}
		return nil
	})
	return found
}
