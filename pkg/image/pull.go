package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/xstack/xstack/pkg/content"
)

// Progress statuses.
const (
	StatusResolving   = "resolving"
	StatusDownloading = "downloading"
	StatusDone        = "done"
	StatusExists      = "exists"
)

// maxParallelBlobs bounds concurrent blob downloads in one Pull.
const maxParallelBlobs = 3

// PullOptions tune Pull.
type PullOptions struct {
	// PlainHTTP talks http instead of https. Loopback registries
	// (localhost, 127.0.0.0/8, ::1) are tried over https without
	// certificate checks, then over http if they answer in HTTP.
	PlainHTTP bool
	// Username and Password are used for Basic auth, and to authenticate to
	// a Bearer token server. Empty means anonymous.
	Username, Password string
	// InsecureSkipVerify disables TLS certificate checks. It only applies
	// to the client Pull builds itself, not to HTTPClient.
	InsecureSkipVerify bool
	// Progress, if not nil, is called from the pulling goroutines (possibly
	// concurrently) as blobs are resolved and downloaded.
	Progress func(Progress)
	// HTTPClient replaces the default client.
	HTTPClient *http.Client
}

// Progress reports the state of one blob of a pull.
type Progress struct {
	Status    string // StatusResolving, StatusDownloading, StatusDone, StatusExists
	Digest    digest.Digest
	MediaType string
	Offset    int64
	Total     int64
}

// manifestAccept is what we ask registries for, most preferred first.
var manifestAccept = []string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifestList,
	MediaTypeDockerManifest,
}

// Pull fetches ref's linux/amd64 image from its registry into cs: the
// top-level index (if any), the linux/amd64 manifest, its config and
// layers, each verified against its digest. Blobs already in cs are not
// downloaded again. It returns the image record (Name is the normalized
// reference, Target the top-level descriptor); on error nothing should be
// named, and blobs already stored are left for GC.
func Pull(ctx context.Context, cs *content.Store, ref string, opts PullOptions) (Named, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return Named{}, fmt.Errorf("pull: %w", err)
	}
	p := &puller{cs: cs, reg: newRegistry(r, opts), progress: opts.Progress}
	target, err := p.pull(ctx, r)
	if err != nil {
		return Named{}, fmt.Errorf("pull %s: %w", r, err)
	}
	return Named{Name: r.String(), Target: target}, nil
}

type puller struct {
	cs       *content.Store
	reg      *registry
	progress func(Progress)
}

func (p *puller) report(pr Progress) {
	if p.progress != nil {
		p.progress(pr)
	}
}

func (p *puller) pull(ctx context.Context, r Reference) (ocispec.Descriptor, error) {
	p.report(Progress{Status: StatusResolving})
	top, data, err := p.fetchManifest(ctx, r.object(), ocispec.Descriptor{Digest: r.Digest, Size: -1})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := top
	for depth := 0; isIndex(desc.MediaType); depth++ {
		if depth >= maxIndexDepth {
			return ocispec.Descriptor{}, fmt.Errorf("indexes nested deeper than %d", maxIndexDepth)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("parse index %s: %w", desc.Digest, err)
		}
		child, err := pickPlatform(idx.Manifests)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		if desc, data, err = p.fetchManifest(ctx, child.Digest.String(), child); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	if !isManifest(desc.MediaType) {
		return ocispec.Descriptor{}, fmt.Errorf("%s: unsupported manifest media type %q", desc.Digest, desc.MediaType)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("parse manifest %s: %w", desc.Digest, err)
	}
	if !isConfig(m.Config.MediaType) {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: config media type %q is not an image config", desc.Digest, m.Config.MediaType)
	}
	for i, l := range m.Layers {
		if _, err := layerCompression(l.MediaType); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("manifest %s layer %d: %w", desc.Digest, i, err)
		}
	}
	if err := p.fetchBlobs(ctx, append([]ocispec.Descriptor{m.Config}, m.Layers...)); err != nil {
		return ocispec.Descriptor{}, err
	}
	// Everything is stored; check the whole image is coherent.
	if _, err := Resolve(ctx, p.cs, top); err != nil {
		return ocispec.Descriptor{}, err
	}
	return top, nil
}

// fetchManifest GETs a manifest or index by tag or digest, verifies it
// against want (digest and size when known) and the registry's
// Docker-Content-Digest header, and stores it.
func (p *puller) fetchManifest(ctx context.Context, object string, want ocispec.Descriptor) (ocispec.Descriptor, []byte, error) {
	resp, err := p.reg.get(ctx, "/v2/"+p.reg.repo+"/manifests/"+object, manifestAccept)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, p.reg.transportError(err)
	}
	if len(data) > maxManifestSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("registry %s: manifest %s larger than %d bytes", p.reg.host, object, maxManifestSize)
	}
	alg := digest.Canonical
	if want.Digest != "" {
		alg = want.Digest.Algorithm()
	}
	got := alg.FromBytes(data)
	if want.Digest != "" && got != want.Digest {
		return ocispec.Descriptor{}, nil, fmt.Errorf("registry %s: manifest digest mismatch: expected %s, got %s", p.reg.host, want.Digest, got)
	}
	if want.Size >= 0 && want.Digest != "" && int64(len(data)) != want.Size {
		return ocispec.Descriptor{}, nil, fmt.Errorf("registry %s: manifest %s: size mismatch: expected %d, got %d", p.reg.host, want.Digest, want.Size, len(data))
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" {
		if hd, err := digest.Parse(h); err == nil && hd.Algorithm() == got.Algorithm() && hd != got {
			return ocispec.Descriptor{}, nil, fmt.Errorf("registry %s: manifest %s: Docker-Content-Digest header says %s, content is %s", p.reg.host, object, hd, got)
		}
	}
	mt := contentType(resp)
	if !isIndex(mt) && !isManifest(mt) {
		if mt, err = sniffMediaType(data); err != nil {
			return ocispec.Descriptor{}, nil, fmt.Errorf("registry %s: manifest %s: %w", p.reg.host, object, err)
		}
	}
	desc := ocispec.Descriptor{MediaType: mt, Digest: got, Size: int64(len(data))}
	exists := p.cs.Has(got)
	if err := p.cs.Ingest(ctx, desc, bytes.NewReader(data), nil); err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	status := StatusDone
	if exists {
		status = StatusExists
	}
	p.report(Progress{Status: status, Digest: got, MediaType: mt, Offset: desc.Size, Total: desc.Size})
	return desc, data, nil
}

// fetchBlobs downloads blobs not yet in the store, a few at a time. The
// first error cancels the rest.
func (p *puller) fetchBlobs(ctx context.Context, blobs []ocispec.Descriptor) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		sem   = make(chan struct{}, maxParallelBlobs)
		seen  = map[digest.Digest]bool{}
	)
	for _, b := range blobs {
		if seen[b.Digest] {
			continue
		}
		seen[b.Digest] = true
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := p.fetchBlob(ctx, b); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

func (p *puller) fetchBlob(ctx context.Context, desc ocispec.Descriptor) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("blob %q: %w", desc.Digest, err)
	}
	if p.cs.Has(desc.Digest) {
		p.report(Progress{Status: StatusExists, Digest: desc.Digest, MediaType: desc.MediaType, Offset: desc.Size, Total: desc.Size})
		return nil
	}
	p.report(Progress{Status: StatusDownloading, Digest: desc.Digest, MediaType: desc.MediaType, Total: desc.Size})
	resp, err := p.reg.get(ctx, "/v2/"+p.reg.repo+"/blobs/"+desc.Digest.String(), nil)
	if err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	defer resp.Body.Close()
	err = p.cs.Ingest(ctx, desc, resp.Body, func(n int64) {
		p.report(Progress{Status: StatusDownloading, Digest: desc.Digest, MediaType: desc.MediaType, Offset: n, Total: desc.Size})
	})
	if err != nil {
		return fmt.Errorf("registry %s: %w", p.reg.host, err)
	}
	p.report(Progress{Status: StatusDone, Digest: desc.Digest, MediaType: desc.MediaType, Offset: desc.Size, Total: desc.Size})
	return nil
}
