package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestLayerNamesEachPathOnce: containers/storage (podman load) rejects a
// layer with a path twice, and an -add over an applet must replace its link.
func TestLayerNamesEachPathOnce(t *testing.T) {
	const busybox = "/bin/busybox"
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("no static busybox at %s (apt-get install busybox-static): %v", busybox, err)
	}
	extra := filepath.Join(t.TempDir(), "extra")
	if err := os.WriteFile(extra, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		add     []string
		wantErr bool
	}{
		{name: "plain"},
		{name: "new file", add: []string{extra + ":/xtest"}},
		{name: "over an applet", add: []string{extra + ":/bin/true"}},
		{name: "same path twice", add: []string{extra + ":/xtest", extra + ":/xtest"}, wantErr: true},
		{name: "over a fixed file", add: []string{extra + ":/etc/passwd"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := layer(busybox, tc.add)
			if tc.wantErr {
				if err == nil {
					t.Fatal("layer with a duplicate path: no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]*tar.Header{}
			tr := tar.NewReader(bytes.NewReader(b))
			for {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if seen[h.Name] != nil {
					t.Errorf("%s is in the layer twice", h.Name)
				}
				seen[h.Name] = h
			}
			if h := seen["home/app/"]; h == nil || h.Uid != 1000 || h.Gid != 1000 {
				t.Errorf("home/app/ is not owned by 1000:1000: %+v", h)
			}
			for _, a := range tc.add {
				_, dst, _ := strings.Cut(a, ":")
				if h := seen[strings.TrimPrefix(dst, "/")]; h == nil || h.Typeflag != tar.TypeReg {
					t.Errorf("-add %s: not a regular file in the layer: %+v", dst, h)
				}
			}
			if h := seen["bin/sh"]; h == nil || h.Typeflag != tar.TypeSymlink {
				t.Errorf("bin/sh applet link missing: %+v", h)
			}
		})
	}
}

// TestCompressLayer: each compression round-trips and is typed as OCI
// names it; an unknown one is refused.
func TestCompressLayer(t *testing.T) {
	raw := bytes.Repeat([]byte("layer bytes "), 1000)
	for _, tc := range []struct {
		compression, mediaType string
		decompress             func(io.Reader) (io.Reader, error)
	}{
		{"gzip", "application/vnd.oci.image.layer.v1.tar+gzip", func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
		{"zstd", "application/vnd.oci.image.layer.v1.tar+zstd", func(r io.Reader) (io.Reader, error) { return zstd.NewReader(r) }},
	} {
		t.Run(tc.compression, func(t *testing.T) {
			z, mt, err := compressLayer(raw, tc.compression)
			if err != nil {
				t.Fatal(err)
			}
			if mt != tc.mediaType {
				t.Errorf("media type %q, want %q", mt, tc.mediaType)
			}
			r, err := tc.decompress(bytes.NewReader(z))
			if err != nil {
				t.Fatal(err)
			}
			back, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(back, raw) {
				t.Errorf("round trip: %d bytes, %v", len(back), err)
			}
		})
	}
	if _, _, err := compressLayer(raw, "lz4"); err == nil || !strings.Contains(err.Error(), "lz4") {
		t.Errorf("unknown compression: %v", err)
	}
}
