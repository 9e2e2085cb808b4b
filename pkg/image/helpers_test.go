package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/xstack/xstack/pkg/content"
)

// testImage is a small single-platform image built in memory.
type testImage struct {
	arch      string
	layers    [][]byte // stored form (maybe gzip)
	diffIDs   []digest.Digest
	layerDesc []ocispec.Descriptor
	config    []byte
	cfgDesc   ocispec.Descriptor
	manifest  []byte
	desc      ocispec.Descriptor // manifest descriptor, with platform
}

func newTestStore(t *testing.T) *content.Store {
	t.Helper()
	cs, err := content.New(filepath.Join(t.TempDir(), "content"))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// tarOf builds an uncompressed tar holding files (name -> content), sorted.
func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zstdOf compresses b as one streamed zstd frame with the given window
// (0: the encoder's default).
func zstdOf(t *testing.T, b []byte, window int) []byte {
	t.Helper()
	var buf bytes.Buffer
	opts := []zstd.EOption{zstd.WithEncoderConcurrency(1)}
	if window > 0 {
		opts = append(opts, zstd.WithWindowSize(window))
	}
	zw, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buildImage makes an image with one layer per element of layers; layer i
// is gzip-compressed when gz is true.
func buildImage(t *testing.T, arch string, gz bool, layers ...map[string]string) testImage {
	t.Helper()
	img := testImage{arch: arch}
	for _, files := range layers {
		raw := tarOf(t, files)
		stored, mt := raw, ocispec.MediaTypeImageLayer
		if gz {
			stored, mt = gzipOf(t, raw), ocispec.MediaTypeImageLayerGzip
		}
		img.layers = append(img.layers, stored)
		img.diffIDs = append(img.diffIDs, digest.FromBytes(raw))
		img.layerDesc = append(img.layerDesc, ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(stored), Size: int64(len(stored))})
	}
	cfg := ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: img.diffIDs},
	}
	img.config = mustJSON(t, cfg)
	img.cfgDesc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(img.config), Size: int64(len(img.config))}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: img.cfgDesc, Layers: img.layerDesc}
	m.SchemaVersion = 2
	img.manifest = mustJSON(t, m)
	img.desc = ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(img.manifest), Size: int64(len(img.manifest)),
		Platform: &ocispec.Platform{OS: "linux", Architecture: arch},
	}
	return img
}

// blobs returns every blob of the image by digest.
func (img testImage) blobs() map[digest.Digest][]byte {
	out := map[digest.Digest][]byte{
		img.cfgDesc.Digest: img.config,
		img.desc.Digest:    img.manifest,
	}
	for i, l := range img.layers {
		out[img.layerDesc[i].Digest] = l
	}
	return out
}

// buildIndex makes an OCI index over imgs and returns its bytes and descriptor.
func buildIndex(t *testing.T, imgs ...testImage) ([]byte, ocispec.Descriptor) {
	t.Helper()
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	for _, img := range imgs {
		idx.Manifests = append(idx.Manifests, img.desc)
	}
	b := mustJSON(t, idx)
	return b, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// storeAll puts blobs into cs.
func storeAll(t *testing.T, cs *content.Store, blobs map[digest.Digest][]byte) {
	t.Helper()
	for d, b := range blobs {
		if err := cs.Ingest(context.Background(), ocispec.Descriptor{Digest: d, Size: int64(len(b))}, bytes.NewReader(b), nil); err != nil {
			t.Fatal(err)
		}
	}
}

// layout is an OCI image layout in memory.
type layout struct {
	blobs map[digest.Digest][]byte
	index ocispec.Index
}

func newLayout() *layout {
	l := &layout{blobs: map[digest.Digest][]byte{}}
	l.index.SchemaVersion = 2
	l.index.MediaType = ocispec.MediaTypeImageIndex
	return l
}

func (l *layout) add(blobs map[digest.Digest][]byte) {
	for d, b := range blobs {
		l.blobs[d] = b
	}
}

// entry adds a top-level index.json entry with annotations (k, v pairs).
func (l *layout) entry(desc ocispec.Descriptor, kv ...string) {
	desc.Annotations = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		desc.Annotations[kv[i]] = kv[i+1]
	}
	l.index.Manifests = append(l.index.Manifests, desc)
}

func (l *layout) files(t *testing.T) map[string][]byte {
	files := map[string][]byte{
		ocispec.ImageLayoutFile: []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"index.json":            mustJSON(t, l.index),
	}
	for d, b := range l.blobs {
		files["blobs/sha256/"+d.Encoded()] = b
	}
	return files
}

// writeDir writes the layout to dir (for skopeo).
func (l *layout) writeDir(t *testing.T, dir string) {
	t.Helper()
	for name, b := range l.files(t) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tarEntry is one entry of a hand-built archive.
type tarEntry struct {
	name string
	data []byte
	link string // symlink target when set
}

func archiveOf(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
		if e.link != "" {
			h = &tar.Header{Name: e.name, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: e.link}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.link == "" {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// entries lists the layout's files as tar entries, blobs first and
// index.json last (as a streaming writer would produce them).
func (l *layout) entries(t *testing.T) []tarEntry {
	files := l.files(t)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []tarEntry
	for _, n := range names {
		out = append(out, tarEntry{name: n, data: files[n]})
	}
	return out
}
