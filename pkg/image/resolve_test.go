package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestResolve(t *testing.T) {
	amd := buildImage(t, "amd64", true, map[string]string{"bin/sh": "amd"}, map[string]string{"etc/motd": "hi"})
	arm := buildImage(t, "arm64", true, map[string]string{"bin/sh": "arm"})
	idxBytes, idxDesc := buildIndex(t, arm, amd)
	armOnlyBytes, armOnlyDesc := buildIndex(t, arm)

	// Same amd64 image described with Docker schema2 media types.
	dm := ocispec.Manifest{MediaType: MediaTypeDockerManifest,
		Config: ocispec.Descriptor{MediaType: MediaTypeDockerConfig, Digest: amd.cfgDesc.Digest, Size: amd.cfgDesc.Size}}
	dm.SchemaVersion = 2
	for _, l := range amd.layerDesc {
		l.MediaType = MediaTypeDockerLayerGzip
		dm.Layers = append(dm.Layers, l)
	}
	dmBytes := mustJSON(t, dm)
	dmDesc := ocispec.Descriptor{MediaType: MediaTypeDockerManifest, Digest: digest.FromBytes(dmBytes), Size: int64(len(dmBytes))}

	// A manifest whose config lists fewer diff_ids than layers.
	badCfg := mustJSON(t, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: amd.diffIDs[:1]}})
	bm := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(badCfg), Size: int64(len(badCfg))},
		Layers: amd.layerDesc}
	bm.SchemaVersion = 2
	bmBytes := mustJSON(t, bm)
	bmDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(bmBytes), Size: int64(len(bmBytes))}

	// A layer typed zstd (resolving does not read layers), and one of a
	// compression xstack does not know.
	withLayerType := func(mt string) ([]byte, ocispec.Descriptor) {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: amd.cfgDesc, Layers: append([]ocispec.Descriptor(nil), amd.layerDesc...)}
		m.SchemaVersion = 2
		m.Layers[0].MediaType = mt
		b := mustJSON(t, m)
		return b, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(b), Size: int64(len(b))}
	}
	zmBytes, zmDesc := withLayerType(ocispec.MediaTypeImageLayerZstd)
	lzBytes, lzDesc := withLayerType("application/vnd.oci.image.layer.v1.tar+lz4")

	tests := []struct {
		name    string
		blobs   []map[digest.Digest][]byte
		target  ocispec.Descriptor
		wantErr string
		want    testImage
		nBlobs  int
	}{
		{name: "index arm64+amd64 picks amd64", blobs: []map[digest.Digest][]byte{amd.blobs(), arm.blobs(), {idxDesc.Digest: idxBytes}},
			target: idxDesc, want: amd, nBlobs: 5},
		{name: "index with only amd64 blobs present", blobs: []map[digest.Digest][]byte{amd.blobs(), {idxDesc.Digest: idxBytes}},
			target: idxDesc, want: amd, nBlobs: 5},
		{name: "manifest", blobs: []map[digest.Digest][]byte{amd.blobs()}, target: amd.desc, want: amd, nBlobs: 4},
		{name: "manifest without media type", blobs: []map[digest.Digest][]byte{amd.blobs()},
			target: ocispec.Descriptor{Digest: amd.desc.Digest, Size: amd.desc.Size}, want: amd, nBlobs: 4},
		{name: "docker schema2", blobs: []map[digest.Digest][]byte{amd.blobs(), {dmDesc.Digest: dmBytes}}, target: dmDesc, want: amd, nBlobs: 4},
		{name: "arm64 only", blobs: []map[digest.Digest][]byte{arm.blobs(), {armOnlyDesc.Digest: armOnlyBytes}},
			target: armOnlyDesc, wantErr: "no linux/amd64 image"},
		{name: "amd64 manifest missing", blobs: []map[digest.Digest][]byte{arm.blobs(), {idxDesc.Digest: idxBytes}},
			target: idxDesc, wantErr: "not in the content store"},
		{name: "target missing", target: amd.desc, wantErr: "no such file"},
		{name: "layer missing", blobs: []map[digest.Digest][]byte{{amd.desc.Digest: amd.manifest, amd.cfgDesc.Digest: amd.config}},
			target: amd.desc, wantErr: "layer 0"},
		{name: "diff_ids mismatch", blobs: []map[digest.Digest][]byte{amd.blobs(), {bmDesc.Digest: bmBytes, bm.Config.Digest: badCfg}},
			target: bmDesc, wantErr: "1 diff_ids but manifest has 2 layers"},
		{name: "zstd layer", blobs: []map[digest.Digest][]byte{amd.blobs(), {zmDesc.Digest: zmBytes}}, target: zmDesc, want: amd, nBlobs: 4},
		{name: "lz4 layer", blobs: []map[digest.Digest][]byte{amd.blobs(), {lzDesc.Digest: lzBytes}}, target: lzDesc, wantErr: `unsupported layer media type "application/vnd.oci.image.layer.v1.tar+lz4"`},
		{name: "wrong descriptor size", blobs: []map[digest.Digest][]byte{amd.blobs()},
			target: ocispec.Descriptor{MediaType: amd.desc.MediaType, Digest: amd.desc.Digest, Size: 3}, wantErr: "size"},
		{name: "arm64 manifest directly", blobs: []map[digest.Digest][]byte{arm.blobs()}, target: arm.desc, wantErr: "is for linux/arm64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cs := newTestStore(t)
			for _, b := range tt.blobs {
				storeAll(t, cs, b)
			}
			res, err := Resolve(context.Background(), cs, tt.target)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if res.Config.Digest != tt.want.cfgDesc.Digest || res.ConfigData.Architecture != "amd64" {
				t.Errorf("config = %v (%s)", res.Config.Digest, res.ConfigData.Architecture)
			}
			if len(res.Layers) != len(tt.want.layerDesc) || len(res.DiffIDs) != len(res.Layers) {
				t.Fatalf("layers %d diffids %d", len(res.Layers), len(res.DiffIDs))
			}
			var size int64
			for i, l := range res.Layers {
				if l.Digest != tt.want.layerDesc[i].Digest || res.DiffIDs[i] != tt.want.diffIDs[i] {
					t.Errorf("layer %d = %s / %s", i, l.Digest, res.DiffIDs[i])
				}
				size += l.Size
			}
			if res.Size != size {
				t.Errorf("Size = %d, want %d", res.Size, size)
			}
			if len(res.Blobs) != tt.nBlobs {
				t.Errorf("Blobs = %v, want %d", res.Blobs, tt.nBlobs)
			}
			if res.Blobs[0] != tt.target.Digest {
				t.Errorf("Blobs[0] = %s, want target", res.Blobs[0])
			}
			for _, b := range res.Blobs {
				if arm.desc.Digest == b {
					t.Error("arm64 manifest among GC roots")
				}
			}
		})
	}
}

func TestOpenLayer(t *testing.T) {
	files := map[string]string{"hello.txt": "world"}
	raw := tarOf(t, files)
	gz := gzipOf(t, raw)
	zst := zstdOf(t, raw, 0)
	// A frame asking for a 256 MiB window, over the decoder's bound: a
	// layer must not make xd reserve that much.
	wide := zstdOf(t, bytes.Repeat(raw, 100), 256<<20)
	cs := newTestStore(t)
	storeAll(t, cs, map[digest.Digest][]byte{digest.FromBytes(raw): raw, digest.FromBytes(gz): gz, digest.FromBytes(zst): zst, digest.FromBytes(wide): wide})
	tests := []struct {
		name    string
		desc    ocispec.Descriptor
		wantErr string
	}{
		{"oci tar", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(raw)}, ""},
		{"oci gzip", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(gz)}, ""},
		{"docker gzip", ocispec.Descriptor{MediaType: MediaTypeDockerLayerGzip, Digest: digest.FromBytes(gz)}, ""},
		{"docker tar that is gzip", ocispec.Descriptor{MediaType: MediaTypeDockerLayer, Digest: digest.FromBytes(gz)}, ""},
		{"gzip type but plain", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(raw)}, "gzip"},
		{"oci zstd", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerZstd, Digest: digest.FromBytes(zst)}, ""},
		{"docker zstd", ocispec.Descriptor{MediaType: MediaTypeDockerLayerZstd, Digest: digest.FromBytes(zst)}, ""},
		{"oci tar that is zstd", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(zst)}, ""},
		{"zstd type but plain", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerZstd, Digest: digest.FromBytes(raw)}, "zstd"},
		{"zstd window too large", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerZstd, Digest: digest.FromBytes(wide)}, "window"},
		{"unknown compression", ocispec.Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+lz4", Digest: digest.FromBytes(raw)}, "unsupported layer media type"},
		{"missing", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromString("x")}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := OpenLayer(cs, tt.desc)
			if tt.wantErr != "" {
				// A bad stream may show only once read (zstd reads lazily).
				if err == nil {
					_, err = io.Copy(io.Discard, rc)
					rc.Close()
				}
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			tr := tar.NewReader(rc)
			h, err := tr.Next()
			if err != nil || h.Name != "hello.txt" {
				t.Fatalf("first entry %v, %v", h, err)
			}
			b, _ := io.ReadAll(tr)
			if string(b) != "world" {
				t.Errorf("content %q", b)
			}
			if _, err := tr.Next(); !errors.Is(err, io.EOF) {
				t.Errorf("want EOF, got %v", err)
			}
		})
	}
}

func TestSniffMediaType(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"mediaType":"x/y"}`, "x/y"},
		{`{"schemaVersion":2,"manifests":[]}`, ocispec.MediaTypeImageIndex},
		{`{"schemaVersion":2,"config":{},"layers":[]}`, ocispec.MediaTypeImageManifest},
		{`{"schemaVersion":1,"fsLayers":[]}`, mediaTypeDockerSchema1},
		{`{}`, ""},
		{`nope`, ""},
	}
	for _, tt := range tests {
		got, err := sniffMediaType([]byte(tt.in))
		if got != tt.want || (tt.want == "") != (err != nil) {
			t.Errorf("sniff(%s) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
