package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/xstack/xstack/pkg/events"
	"github.com/xstack/xstack/pkg/image"
	"github.com/xstack/xstack/pkg/snapshot"
	"github.com/xstack/xstack/pkg/unpack"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

var snapshotNotFound = snapshot.ErrNotFound

func digestOf(d *xdv1.Descriptor) digest.Digest { return digest.Digest(d.GetDigest()) }

func toDescriptor(d ocispec.Descriptor) *xdv1.Descriptor {
	return &xdv1.Descriptor{MediaType: d.MediaType, Digest: d.Digest.String(), Size: d.Size}
}

type imagesService struct{ s *Server }

func (a *imagesService) Import(ctx context.Context, r *xdv1.ImportRequest) (*xdv1.ImportResponse, error) {
	imgs, err := a.s.ImportImage(ctx, r.Path, r.Name)
	if err != nil {
		return nil, err
	}
	return &xdv1.ImportResponse{Images: imgs}, nil
}

func (a *imagesService) Pull(ctx context.Context, r *xdv1.PullRequest, stream xdv1.Images_PullServer) error {
	ctx, err := streamNamespace(ctx, r.Namespace)
	if err != nil {
		return err
	}
	img, err := a.s.PullImage(ctx, r, func(p *xdv1.PullProgress) { stream.Send(p) })
	if err != nil {
		return errgrpc.ToGRPC(err)
	}
	return stream.Send(&xdv1.PullProgress{Status: "complete", Image: img})
}

func (a *imagesService) List(ctx context.Context, _ *xdv1.ListImagesRequest) (*xdv1.ListImagesResponse, error) {
	imgs, err := a.s.db.ListImages(namespace(ctx))
	if err != nil {
		return nil, err
	}
	return &xdv1.ListImagesResponse{Images: imgs}, nil
}

func (a *imagesService) Get(ctx context.Context, r *xdv1.GetImageRequest) (*xdv1.Image, error) {
	return a.s.lookupImage(namespace(ctx), r.Name)
}

func (a *imagesService) Tag(ctx context.Context, r *xdv1.TagImageRequest) (*xdv1.Image, error) {
	return a.s.TagImage(ctx, r.Source, r.Target)
}

func (a *imagesService) Remove(ctx context.Context, r *xdv1.RemoveImageRequest) (*emptypb.Empty, error) {
	return empty, a.s.RemoveImage(ctx, r.Name)
}

// ImportImage imports an image archive from a path on this host.
func (s *Server) ImportImage(ctx context.Context, path, name string) (_ []*xdv1.Image, err error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("import %q: the path must be absolute (it is read by xd): %w", path, errdefs.ErrInvalidArgument)
	}
	if name != "" {
		ref, err := image.ParseReference(name)
		if err != nil {
			return nil, fmt.Errorf("import name %q: %w: %w", name, err, errdefs.ErrInvalidArgument)
		}
		name = ref.String()
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	defer f.Close()
	s.gcMu.RLock()
	named, err := image.Import(ctx, s.content, f, name)
	if err != nil {
		s.gcMu.RUnlock()
		s.collectGarbage(context.Background())
		return nil, fmt.Errorf("import %s: %w: %w", path, err, errdefs.ErrInvalidArgument)
	}
	var out []*xdv1.Image
	for _, n := range named {
		img, err := s.storeImage(ctx, n, nil)
		if err != nil {
			s.gcMu.RUnlock()
			s.collectGarbage(context.Background())
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		out = append(out, img)
	}
	s.gcMu.RUnlock()
	return out, nil
}

// PullImage pulls a reference from its registry.
func (s *Server) PullImage(ctx context.Context, r *xdv1.PullRequest, progress func(*xdv1.PullProgress)) (*xdv1.Image, error) {
	ref, err := image.ParseReference(r.Ref)
	if err != nil {
		return nil, fmt.Errorf("pull %q: %w: %w", r.Ref, err, errdefs.ErrInvalidArgument)
	}
	s.gcMu.RLock()
	named, err := image.Pull(ctx, s.content, ref.String(), image.PullOptions{
		PlainHTTP: r.PlainHttp, Username: r.Username, Password: r.Password, InsecureSkipVerify: r.InsecureSkipVerify,
		Progress: func(p image.Progress) {
			progress(&xdv1.PullProgress{Status: p.Status, Digest: p.Digest.String(), MediaType: p.MediaType, Offset: p.Offset, Total: p.Total})
		},
	})
	if err == nil {
		var img *xdv1.Image
		img, err = s.storeImage(ctx, named, func(d digest.Digest, status string) {
			progress(&xdv1.PullProgress{Status: status, Digest: d.String()})
		})
		if err == nil {
			s.gcMu.RUnlock()
			return img, nil
		}
	}
	s.gcMu.RUnlock()
	s.collectGarbage(context.Background())
	return nil, fmt.Errorf("pull %s: %w", ref.String(), err)
}

// storeImage unpacks a named image's layers and records it.
func (s *Server) storeImage(ctx context.Context, n image.Named, progress func(digest.Digest, string)) (*xdv1.Image, error) {
	res, err := image.Resolve(ctx, s.content, n.Target)
	if err != nil {
		return nil, err
	}
	layers := make([]unpack.Layer, len(res.Layers))
	for i, l := range res.Layers {
		l := l
		layers[i] = unpack.Layer{Digest: l.Digest, DiffID: res.DiffIDs[i], Open: func() (io.ReadCloser, error) {
			return image.OpenLayer(s.content, l)
		}}
	}
	chain, err := unpack.Unpack(ctx, s.snaps, layers, progress)
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", n.Name, err)
	}
	img := &xdv1.Image{
		Name: n.Name, Target: toDescriptor(n.Target), Manifest: toDescriptor(res.Manifest),
		Config: toDescriptor(res.Config), Size: res.Size, ChainId: chain.String(),
	}
	ns := namespace(ctx)
	created, err := s.db.PutImage(ns, img)
	if err != nil {
		return nil, err
	}
	s.publishImage(ns, img.Name, created)
	return img, nil
}

// publishImage says an image name was created or moved to new content.
func (s *Server) publishImage(ns, name string, created bool) {
	topic := events.TopicImageUpdate
	if created {
		topic = events.TopicImageCreate
	}
	s.publish(ns, topic, "", func(ev *xdv1.Event) { ev.Image = name })
}

// TagImage gives an image another name.
func (s *Server) TagImage(ctx context.Context, source, target string) (*xdv1.Image, error) {
	ns := namespace(ctx)
	src, err := s.lookupImage(ns, source)
	if err != nil {
		return nil, err
	}
	ref, err := image.ParseReference(target)
	if err != nil {
		return nil, fmt.Errorf("tag %q: %w: %w", target, err, errdefs.ErrInvalidArgument)
	}
	img := &xdv1.Image{Name: ref.String(), Target: src.Target, Manifest: src.Manifest, Config: src.Config, Size: src.Size, ChainId: src.ChainId}
	created, err := s.db.PutImage(ns, img)
	if err != nil {
		return nil, err
	}
	s.publishImage(ns, img.Name, created)
	return img, nil
}

// RemoveImage drops a name and collects what nothing references any more.
// Containers keep their snapshot (and so the image's layers) alive.
func (s *Server) RemoveImage(ctx context.Context, name string) error {
	ns := namespace(ctx)
	img, err := s.lookupImage(ns, name)
	if err != nil {
		return err
	}
	if err := s.db.DeleteImage(ns, img.Name); err != nil {
		return err
	}
	s.publish(ns, events.TopicImageDelete, "", func(ev *xdv1.Event) { ev.Image = img.Name })
	s.collectGarbage(ctx)
	return nil
}

// collectGarbage removes blobs and snapshots nothing references: every
// image's blobs and chain, every container's snapshot (and, through the
// snapshotter, their parents) are kept.
func (s *Server) collectGarbage(ctx context.Context) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	keepBlobs := map[digest.Digest]bool{}
	keepSnaps := map[string]bool{}
	nss, err := s.db.Namespaces()
	if err != nil {
		s.log.Error("gc: namespaces", "error", err)
		return
	}
	for _, ns := range nss {
		imgs, err := s.db.ListImages(ns)
		if err != nil {
			s.log.Error("gc: images", "error", err)
			return
		}
		for _, img := range imgs {
			keepSnaps[img.ChainId] = true
			res, err := image.Resolve(ctx, s.content, ocispec.Descriptor{MediaType: img.Target.MediaType, Digest: digestOf(img.Target), Size: img.Target.Size})
			if err != nil {
				// Keep what we can name rather than lose an image's blobs.
				s.log.Warn("gc: resolve image; keeping its top blobs", "image", img.Name, "error", err)
				for _, d := range []*xdv1.Descriptor{img.Target, img.Manifest, img.Config} {
					keepBlobs[digestOf(d)] = true
				}
				continue
			}
			for _, b := range res.Blobs {
				keepBlobs[b] = true
			}
		}
		cs, err := s.db.ListContainers(ns)
		if err != nil {
			s.log.Error("gc: containers", "error", err)
			return
		}
		for _, c := range cs {
			keepSnaps[c.SnapshotKey] = true
		}
	}
	removed, err := s.content.GC(keepBlobs)
	if err != nil {
		s.log.Error("gc: content", "error", err)
	}
	snaps, err := s.snaps.GC(ctx, keepSnaps)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error("gc: snapshots", "error", err)
	}
	if len(removed)+len(snaps) > 0 {
		s.log.Info("garbage collected", "blobs", len(removed), "snapshots", len(snaps))
	}
}
