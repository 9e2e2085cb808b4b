package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/xstack/xstack/pkg/content"
)

// AnnotationImageName is containerd's annotation for the full image name
// on an index.json entry.
const AnnotationImageName = "io.containerd.image.name"

// Small metadata files read into memory while scanning an archive.
var metaFiles = map[string]bool{
	ocispec.ImageLayoutFile: true, // oci-layout
	"index.json":            true,
	"manifest.json":         true,
	"repositories":          true,
}

// blobNameRe matches an OCI layout blob path.
var blobNameRe = lazyRegexp(`^blobs/([a-z0-9]+)/([a-zA-Z0-9=_-]+)$`)

// legacyConfigRe matches docker-archive's "<hex>.json" config file names.
var legacyConfigRe = lazyRegexp(`^([a-f0-9]{64})\.json$`)

const maxLinkDepth = 8

// archive is what one pass over the tar stream leaves behind.
type archive struct {
	meta  map[string][]byte             // metaFiles content
	files map[string]ocispec.Descriptor // stored regular files by cleaned name
	links map[string]string             // symlink/hardlink name -> cleaned target
}

// Import reads an OCI image-layout tar or a docker-archive tar (optionally
// gzip-compressed) from r, stores every blob in cs verified against its
// digest, and returns the images it names.
//
// OCI layout: every index.json entry is an image; its name comes from the
// "io.containerd.image.name" annotation, else from
// "org.opencontainers.image.ref.name". A ref.name that is only a tag (no
// "/", ":" or "@", e.g. "latest" or "v1") is combined with fallbackName's
// repository; without fallbackName that is an error. docker-archive: the
// images are manifest.json's entries, named by RepoTags; an OCI manifest is
// synthesized for each (layer compression detected from content) and
// stored, so every Target is a manifest Resolve understands.
// fallbackName names images the archive leaves unnamed.
//
// Every named image must resolve to a linux/amd64 image whose blobs are all
// present. On any error (corrupt or truncated tar, digest mismatch, missing
// blob, path-traversal entry names, unnamed image) Import returns no
// images; blobs already stored remain for GC.
func Import(ctx context.Context, cs *content.Store, r io.Reader, fallbackName string) ([]Named, error) {
	a, err := scanArchive(ctx, cs, r)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var named []Named
	switch {
	case a.meta["index.json"] != nil:
		named, err = a.importOCI(fallbackName)
	case a.meta["manifest.json"] != nil:
		named, err = a.importDocker(ctx, cs, fallbackName)
	default:
		err = errors.New("archive has neither index.json (OCI layout) nor manifest.json (docker-archive)")
	}
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if len(named) == 0 {
		return nil, errors.New("import: archive contains no images")
	}
	for _, n := range named {
		if _, err := Resolve(ctx, cs, n.Target); err != nil {
			return nil, fmt.Errorf("import %s: %w", n.Name, err)
		}
	}
	return named, nil
}

// cleanEntryName returns the archive-relative form of a tar entry name, or
// an error if it is absolute or climbs out of the archive.
func cleanEntryName(name string) (string, error) {
	if strings.ContainsRune(name, 0) || strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("tar entry %q: path escapes the archive", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("tar entry %q: path escapes the archive", name)
		}
	}
	return path.Clean(name), nil
}

func scanArchive(ctx context.Context, cs *content.Store, r io.Reader) (*archive, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	a := &archive{
		meta:  map[string][]byte{},
		files: map[string]ocispec.Descriptor{},
		links: map[string]string{},
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w", err)
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(name), target)
			}
			if target, err = cleanEntryName(target); err != nil {
				return nil, fmt.Errorf("symlink %q: %w", name, err)
			}
			a.links[name] = target
			continue
		case tar.TypeLink:
			target, err := cleanEntryName(hdr.Linkname)
			if err != nil {
				return nil, fmt.Errorf("hardlink %q: %w", name, err)
			}
			a.links[name] = target
			continue
		case tar.TypeReg:
		default:
			slog.Debug("image import: ignoring tar entry", "name", name, "type", hdr.Typeflag)
			continue
		}

		switch m := blobNameRe().FindStringSubmatch(name); {
		case metaFiles[name]:
			if hdr.Size > maxManifestSize {
				return nil, fmt.Errorf("%s: size %d exceeds limit %d", name, hdr.Size, maxManifestSize)
			}
			data, err := io.ReadAll(io.LimitReader(tr, maxManifestSize))
			if err != nil {
				return nil, fmt.Errorf("read archive %s: %w", name, err)
			}
			a.meta[name] = data
		case m != nil:
			d := digest.NewDigestFromEncoded(digest.Algorithm(m[1]), m[2])
			if err := d.Validate(); err != nil {
				return nil, fmt.Errorf("tar entry %q: not a valid blob name: %w", name, err)
			}
			desc := ocispec.Descriptor{Digest: d, Size: hdr.Size}
			if err := cs.Ingest(ctx, desc, tr, nil); err != nil {
				return nil, fmt.Errorf("tar entry %q: %w", name, err)
			}
			a.files[name] = desc
		default:
			// docker-archive files (layer.tar, <id>.json) are named by
			// image ID, not content digest: store under computed digest.
			desc, err := cs.Put(ctx, tr)
			if err != nil {
				return nil, fmt.Errorf("tar entry %q: %w", name, err)
			}
			a.files[name] = desc
		}
	}
	return a, nil
}

// lookup finds a stored file by archive path, following links.
func (a *archive) lookup(name string) (ocispec.Descriptor, error) {
	orig := name
	name, err := cleanEntryName(name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for i := 0; i <= maxLinkDepth; i++ {
		if d, ok := a.files[name]; ok {
			return d, nil
		}
		target, ok := a.links[name]
		if !ok {
			return ocispec.Descriptor{}, fmt.Errorf("missing blob: %q is not in the archive", orig)
		}
		name = target
	}
	return ocispec.Descriptor{}, fmt.Errorf("%q: too many levels of links", orig)
}

// nameSet collects image names, refusing one name for two targets.
type nameSet struct {
	out  []Named
	seen map[string]digest.Digest
}

func (s *nameSet) add(name string, target ocispec.Descriptor) error {
	if s.seen == nil {
		s.seen = map[string]digest.Digest{}
	}
	if d, ok := s.seen[name]; ok {
		if d == target.Digest {
			return nil
		}
		return fmt.Errorf("name %s is given to two images (%s and %s)", name, d, target.Digest)
	}
	s.seen[name] = target.Digest
	s.out = append(s.out, Named{Name: name, Target: target})
	return nil
}

func normalize(name, what string) (string, error) {
	ref, err := ParseReference(name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return ref.String(), nil
}

// isBareTag reports whether an org.opencontainers.image.ref.name value is
// only a tag rather than a full reference.
func isBareTag(s string) bool {
	return !strings.ContainsAny(s, "/:@") && tagRe().MatchString(s)
}

func ociName(desc ocispec.Descriptor, fallback string) (string, error) {
	if n := desc.Annotations[AnnotationImageName]; n != "" {
		return normalize(n, "index.json annotation "+AnnotationImageName)
	}
	if rn := desc.Annotations[ocispec.AnnotationRefName]; rn != "" {
		if !isBareTag(rn) {
			return normalize(rn, "index.json annotation "+ocispec.AnnotationRefName)
		}
		if fallback == "" {
			return "", fmt.Errorf("image %s is named only by the tag %q (%s), not a full name; give a name to import it as", desc.Digest, rn, ocispec.AnnotationRefName)
		}
		ref, err := ParseReference(fallback)
		if err != nil {
			return "", fmt.Errorf("fallback name: %w", err)
		}
		ref.Tag, ref.Digest = rn, ""
		return ref.String(), nil
	}
	if fallback == "" {
		return "", fmt.Errorf("image %s has no name in the archive and no name was given", desc.Digest)
	}
	return normalize(fallback, "fallback name")
}

func (a *archive) importOCI(fallback string) ([]Named, error) {
	if lb := a.meta[ocispec.ImageLayoutFile]; lb != nil {
		var l ocispec.ImageLayout
		if err := json.Unmarshal(lb, &l); err != nil {
			return nil, fmt.Errorf("parse oci-layout: %w", err)
		}
		if l.Version != ocispec.ImageLayoutVersion {
			return nil, fmt.Errorf("oci-layout version %q unsupported (want %s)", l.Version, ocispec.ImageLayoutVersion)
		}
	}
	var idx ocispec.Index
	if err := json.Unmarshal(a.meta["index.json"], &idx); err != nil {
		return nil, fmt.Errorf("parse index.json: %w", err)
	}
	var names nameSet
	for _, m := range idx.Manifests {
		if !isIndex(m.MediaType) && !isManifest(m.MediaType) {
			slog.Debug("image import: skipping non-image index.json entry", "digest", m.Digest, "mediaType", m.MediaType)
			continue
		}
		if err := m.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("index.json: bad digest %q: %w", m.Digest, err)
		}
		if _, err := a.lookup("blobs/" + m.Digest.Algorithm().String() + "/" + m.Digest.Encoded()); err != nil {
			return nil, fmt.Errorf("index.json entry %s: %w", m.Digest, err)
		}
		name, err := ociName(m, fallback)
		if err != nil {
			return nil, err
		}
		target := ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size}
		if err := names.add(name, target); err != nil {
			return nil, err
		}
	}
	return names.out, nil
}

// dockerManifestEntry is one image of a docker-archive manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (a *archive) importDocker(ctx context.Context, cs *content.Store, fallback string) ([]Named, error) {
	var entries []dockerManifestEntry
	if err := json.Unmarshal(a.meta["manifest.json"], &entries); err != nil {
		return nil, fmt.Errorf("parse manifest.json: %w", err)
	}
	var names nameSet
	for i, e := range entries {
		cfg, err := a.lookup(e.Config)
		if err != nil {
			return nil, fmt.Errorf("manifest.json entry %d config: %w", i, err)
		}
		if m := legacyConfigRe().FindStringSubmatch(path.Base(e.Config)); m != nil && cfg.Digest.Encoded() != m[1] {
			return nil, fmt.Errorf("manifest.json entry %d config %q: digest mismatch: name says sha256:%s, content is %s", i, e.Config, m[1], cfg.Digest)
		}
		cfg.MediaType = ocispec.MediaTypeImageConfig
		man := ocispec.Manifest{
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    cfg,
			Layers:    []ocispec.Descriptor{},
		}
		man.SchemaVersion = 2
		for j, lp := range e.Layers {
			l, err := a.lookup(lp)
			if err != nil {
				return nil, fmt.Errorf("manifest.json entry %d layer %d: %w", i, j, err)
			}
			if l.MediaType, err = sniffLayerType(cs, l.Digest); err != nil {
				return nil, fmt.Errorf("manifest.json entry %d layer %d (%s): %w", i, j, lp, err)
			}
			man.Layers = append(man.Layers, l)
		}
		data, err := json.Marshal(man)
		if err != nil {
			return nil, err
		}
		target := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Size: int64(len(data))}
		if err := cs.Ingest(ctx, target, strings.NewReader(string(data)), nil); err != nil {
			return nil, fmt.Errorf("store synthesized manifest: %w", err)
		}
		tags := e.RepoTags
		if len(tags) == 0 {
			if fallback == "" {
				return nil, fmt.Errorf("manifest.json entry %d has no RepoTags and no name was given", i)
			}
			tags = []string{fallback}
		}
		for _, t := range tags {
			name, err := normalize(t, fmt.Sprintf("manifest.json entry %d RepoTags", i))
			if err != nil {
				return nil, err
			}
			if err := names.add(name, target); err != nil {
				return nil, err
			}
		}
	}
	return names.out, nil
}

// sniffLayerType picks the OCI layer media type from a stored layer's magic bytes.
func sniffLayerType(cs *content.Store, d digest.Digest) (string, error) {
	f, err := cs.Open(d)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var magic [4]byte
	n, err := io.ReadFull(f, magic[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read layer %s: %w", d, err)
	}
	switch {
	case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		return ocispec.MediaTypeImageLayerGzip, nil
	case n == 4 && magic == zstdMagic:
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return ocispec.MediaTypeImageLayer, nil
}
