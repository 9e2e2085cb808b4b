package image

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/xstack/xstack/pkg/content"
)

// The only platform xstack runs.
const (
	wantOS   = "linux"
	wantArch = "amd64"
)

// maxIndexDepth bounds index-in-index nesting, so a cyclic or hostile
// index cannot recurse forever.
const maxIndexDepth = 4

// Named is an image record: a normalized name and the descriptor of the
// top-level manifest or index it points to.
type Named struct {
	Name   string
	Target ocispec.Descriptor
}

// Resolved is the linux/amd64 image reachable from a target in the store.
type Resolved struct {
	Manifest   ocispec.Descriptor
	Config     ocispec.Descriptor
	ConfigData ocispec.Image
	// Layers are as stored (compressed or not), base layer first.
	Layers []ocispec.Descriptor
	// DiffIDs are the config's rootfs.diff_ids, one per layer.
	DiffIDs []digest.Digest
	// Size is the sum of the layer sizes.
	Size int64
	// Blobs is every blob on the path from the target to the layers
	// (indexes, the chosen manifest, config, layers): the GC roots of the
	// image. Manifests of other platforms are not included.
	Blobs []digest.Digest
}

// Resolve walks from target (an index/manifest list or a manifest, OCI or
// Docker schema2) to the linux/amd64 image, reading everything from cs.
// Platform variants are ignored. Every layer must be present in cs.
func Resolve(ctx context.Context, cs *content.Store, target ocispec.Descriptor) (*Resolved, error) {
	res := &Resolved{}
	mdesc, err := resolveManifest(ctx, cs, target, res, 0)
	if err != nil {
		return nil, err
	}
	res.Manifest = mdesc
	return res, nil
}

func readJSONBlob(cs *content.Store, desc ocispec.Descriptor, max int64) ([]byte, error) {
	if desc.Size > max {
		return nil, fmt.Errorf("%s %s: size %d exceeds limit %d", desc.MediaType, desc.Digest, desc.Size, max)
	}
	data, err := cs.ReadBlob(desc.Digest, max)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != desc.Size {
		return nil, fmt.Errorf("blob %s: descriptor size %d, stored size %d", desc.Digest, desc.Size, len(data))
	}
	return data, nil
}

func resolveManifest(ctx context.Context, cs *content.Store, desc ocispec.Descriptor, res *Resolved, depth int) (ocispec.Descriptor, error) {
	if err := ctx.Err(); err != nil {
		return ocispec.Descriptor{}, err
	}
	if depth > maxIndexDepth {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: indexes nested deeper than %d", desc.Digest, maxIndexDepth)
	}
	data, err := readJSONBlob(cs, desc, maxManifestSize)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve: %w", err)
	}
	mt := desc.MediaType
	if mt == "" {
		if mt, err = sniffMediaType(data); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", desc.Digest, err)
		}
		desc.MediaType = mt
	}
	res.Blobs = append(res.Blobs, desc.Digest)
	switch {
	case isIndex(mt):
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("resolve: parse index %s: %w", desc.Digest, err)
		}
		child, err := pickPlatform(idx.Manifests)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("resolve index %s: %w", desc.Digest, err)
		}
		if !cs.Has(child.Digest) {
			return ocispec.Descriptor{}, fmt.Errorf("resolve index %s: %s/%s manifest %s is not in the content store", desc.Digest, wantOS, wantArch, child.Digest)
		}
		return resolveManifest(ctx, cs, child, res, depth+1)
	case isManifest(mt):
		var m ocispec.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("resolve: parse manifest %s: %w", desc.Digest, err)
		}
		if err := resolveImage(cs, desc, &m, res); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("resolve manifest %s: %w", desc.Digest, err)
		}
		return desc, nil
	case mt == mediaTypeDockerSchema1 || mt == mediaTypeDockerSchema1Sig:
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: docker schema1 manifests are unsupported", desc.Digest)
	default:
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: unsupported manifest media type %q", desc.Digest, mt)
	}
}

// pickPlatform chooses the linux/amd64 entry of an index. Entries without
// a platform are taken only if no entry names linux/amd64 and exactly one
// such entry exists (single-image indexes often omit the platform).
func pickPlatform(ms []ocispec.Descriptor) (ocispec.Descriptor, error) {
	var noPlatform []ocispec.Descriptor
	for _, m := range ms {
		if m.Platform == nil {
			if isIndex(m.MediaType) || isManifest(m.MediaType) {
				noPlatform = append(noPlatform, m)
			}
			continue
		}
		if m.Platform.OS == wantOS && m.Platform.Architecture == wantArch {
			return m, nil
		}
	}
	if len(noPlatform) == 1 {
		return noPlatform[0], nil
	}
	var have []string
	for _, m := range ms {
		if m.Platform != nil {
			have = append(have, m.Platform.OS+"/"+m.Platform.Architecture)
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("no %s/%s image (index has %d entries, platforms %v)", wantOS, wantArch, len(ms), have)
}

func resolveImage(cs *content.Store, mdesc ocispec.Descriptor, m *ocispec.Manifest, res *Resolved) error {
	if m.SchemaVersion != 2 {
		return fmt.Errorf("schemaVersion %d, want 2", m.SchemaVersion)
	}
	if !isConfig(m.Config.MediaType) {
		return fmt.Errorf("config media type %q is not an image config (artifact?)", m.Config.MediaType)
	}
	cdata, err := readJSONBlob(cs, m.Config, maxConfigSize)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var img ocispec.Image
	if err := json.Unmarshal(cdata, &img); err != nil {
		return fmt.Errorf("parse config %s: %w", m.Config.Digest, err)
	}
	if img.OS != "" && img.OS != wantOS || img.Architecture != "" && img.Architecture != wantArch {
		return fmt.Errorf("config %s is for %s/%s, want %s/%s", m.Config.Digest, img.OS, img.Architecture, wantOS, wantArch)
	}
	if img.RootFS.Type != "layers" {
		return fmt.Errorf("config %s: rootfs type %q, want \"layers\"", m.Config.Digest, img.RootFS.Type)
	}
	if len(img.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("config %s has %d diff_ids but manifest has %d layers", m.Config.Digest, len(img.RootFS.DiffIDs), len(m.Layers))
	}
	for _, id := range img.RootFS.DiffIDs {
		if err := id.Validate(); err != nil {
			return fmt.Errorf("config %s: bad diff_id %q: %w", m.Config.Digest, id, err)
		}
	}
	res.Config = m.Config
	res.ConfigData = img
	res.DiffIDs = img.RootFS.DiffIDs
	res.Blobs = append(res.Blobs, m.Config.Digest)
	for i, l := range m.Layers {
		if _, err := layerCompression(l.MediaType); err != nil {
			return fmt.Errorf("layer %d (%s): %w", i, l.Digest, err)
		}
		n, err := cs.Size(l.Digest)
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		if n != l.Size {
			return fmt.Errorf("layer %d (%s): descriptor size %d, stored size %d", i, l.Digest, l.Size, n)
		}
		res.Layers = append(res.Layers, l)
		res.Size += l.Size
		res.Blobs = append(res.Blobs, l.Digest)
	}
	return nil
}

// zstdMagic starts every zstd frame.
var zstdMagic = [4]byte{0x28, 0xb5, 0x2f, 0xfd}

// maxZstdWindow bounds the memory a zstd layer can make the decoder take:
// 128 MiB is zstd's --long default, more than any image tool writes.
const maxZstdWindow = 128 << 20

// OpenLayer returns the uncompressed tar stream of a layer. Compression
// follows the media type; layers typed as plain tar are still sniffed for
// the gzip and zstd magics, because docker-archive tools are lax about it.
func OpenLayer(cs *content.Store, layer ocispec.Descriptor) (io.ReadCloser, error) {
	comp, err := layerCompression(layer.MediaType)
	if err != nil {
		return nil, fmt.Errorf("open layer %s: %w", layer.Digest, err)
	}
	f, err := cs.Open(layer.Digest)
	if err != nil {
		return nil, fmt.Errorf("open layer: %w", err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	if comp == "" {
		magic, err := br.Peek(4)
		if err != nil && !errors.Is(err, io.EOF) {
			f.Close()
			return nil, fmt.Errorf("open layer %s: %w", layer.Digest, err)
		}
		switch {
		case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
			comp = "gzip"
		case len(magic) == 4 && [4]byte(magic) == zstdMagic:
			comp = "zstd"
		}
	}
	switch comp {
	case "gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open layer %s: gzip: %w", layer.Digest, err)
		}
		return &layerReader{Reader: zr, closers: []io.Closer{zr, f}}, nil
	case "zstd":
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open layer %s: zstd: %w", layer.Digest, err)
		}
		// zstd reports a bad stream only when read: name what was read.
		named := errorPrefixer{r: zr, prefix: fmt.Sprintf("layer %s: zstd", layer.Digest)}
		return &layerReader{Reader: named, closers: []io.Closer{closerFunc(zr.Close), f}}, nil
	}
	return &layerReader{Reader: br, closers: []io.Closer{f}}, nil
}

// errorPrefixer prefixes the read errors of r, io.EOF aside.
type errorPrefixer struct {
	r      io.Reader
	prefix string
}

func (e errorPrefixer) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%s: %w", e.prefix, err)
	}
	return n, err
}

// closerFunc makes a Close without a result an io.Closer.
type closerFunc func()

func (c closerFunc) Close() error { c(); return nil }

type layerReader struct {
	io.Reader
	closers []io.Closer
}

func (l *layerReader) Close() error {
	var first error
	for _, c := range l.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
