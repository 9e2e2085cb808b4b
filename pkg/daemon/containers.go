package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/xstack/xstack/pkg/events"
	"github.com/xstack/xstack/pkg/image"
	"github.com/xstack/xstack/pkg/metadata"
	"github.com/xstack/xstack/pkg/mount"
	"github.com/xstack/xstack/pkg/specgen"
	"github.com/xstack/xstack/pkg/taskio"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

type containersService struct{ s *Server }

func (a *containersService) Create(ctx context.Context, r *xdv1.CreateContainerRequest) (*xdv1.Container, error) {
	return a.s.CreateContainer(ctx, r)
}

func (a *containersService) Get(ctx context.Context, r *xdv1.GetContainerRequest) (*xdv1.Container, error) {
	return a.s.db.GetContainer(namespace(ctx), r.Id)
}

func (a *containersService) List(ctx context.Context, _ *xdv1.ListContainersRequest) (*xdv1.ListContainersResponse, error) {
	cs, err := a.s.db.ListContainers(namespace(ctx))
	if err != nil {
		return nil, err
	}
	return &xdv1.ListContainersResponse{Containers: cs}, nil
}

func (a *containersService) Delete(ctx context.Context, r *xdv1.DeleteContainerRequest) (*emptypb.Empty, error) {
	return empty, a.s.DeleteContainer(ctx, r.Id, r.Force)
}

func randomID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// lookupImage finds an image by the name the user typed ("busybox" finds
// docker.io/library/busybox:latest).
func (s *Server) lookupImage(ns, name string) (*xdv1.Image, error) {
	img, err := s.db.GetImage(ns, name)
	if err == nil || !errors.Is(err, errdefs.ErrNotFound) {
		return img, err
	}
	ref, perr := image.ParseReference(name)
	if perr != nil {
		return nil, fmt.Errorf("image %q: %w: %w", name, perr, errdefs.ErrInvalidArgument)
	}
	if img, err = s.db.GetImage(ns, ref.String()); err != nil {
		return nil, notFound("image %q not found", name)
	}
	return img, nil
}

// CreateContainer makes a container from an image: a writable snapshot on
// the image's layers and the OCI spec generated from the image config and
// the run options.
func (s *Server) CreateContainer(ctx context.Context, r *xdv1.CreateContainerRequest) (_ *xdv1.Container, err error) {
	ns := namespace(ctx)
	id := r.Id
	if id == "" {
		id = randomID()
	}
	if err := metadata.ValidateName("container name", id); err != nil {
		return nil, err
	}
	if _, err := s.db.GetContainer(ns, id); err == nil {
		return nil, fmt.Errorf("container name %q is already in use: %w", id, errdefs.ErrAlreadyExists)
	}
	runtime := r.Runtime
	if runtime == "" {
		runtime = s.cfg.DefaultRuntime
	}
	if _, ok := s.cfg.Runtimes[runtime]; !ok {
		return nil, fmt.Errorf("unknown runtime %q: %w", runtime, errdefs.ErrInvalidArgument)
	}
	opts := r.Options
	if opts == nil {
		opts = &xdv1.RunOptions{}
	}
	if _, err := parseRestartPolicy(opts.Restart); err != nil {
		return nil, err
	}

	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	img, err := s.lookupImage(ns, r.Image)
	if err != nil {
		return nil, err
	}
	var config ocispec.Image
	data, err := s.content.ReadBlob(digestOf(img.Config), 4<<20)
	if err != nil {
		return nil, fmt.Errorf("image %s config: %w", img.Name, err)
	}
	if err := json.Unmarshal(data, &config); err != nil {
		return nil, fmt.Errorf("image %s config: %w", img.Name, err)
	}
	key := ns + "/" + id
	mounts, err := s.snaps.Prepare(ctx, key, img.ChainId, nil)
	if err != nil {
		return nil, fmt.Errorf("snapshot for %q: %w", id, err)
	}
	defer func() {
		if err != nil {
			s.snaps.Remove(context.Background(), key)
		}
	}()
	// Names in USER resolve against the image's own /etc/passwd: look at
	// the container's rootfs through a private mount.
	tmp, err := os.MkdirTemp(filepath.Join(s.cfg.State), "rootfs-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if err := mount.All(mounts, tmp); err != nil {
		return nil, fmt.Errorf("mount rootfs of %q: %w", id, err)
	}
	spec, genErr := specgen.Generate(config.Config, tmp, ns, id, opts)
	if err := mount.UnmountAll(tmp); err != nil {
		return nil, fmt.Errorf("unmount rootfs of %q: %w", id, err)
	}
	if genErr != nil {
		return nil, fmt.Errorf("container %q: %w: %w", id, genErr, errdefs.ErrInvalidArgument)
	}
	spec.Linux.CgroupsPath = filepath.Join(s.cfg.CgroupParent, ns, id)
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	c := &xdv1.Container{
		Id: id, Image: img.Name, Runtime: runtime, RuntimeBinary: r.RuntimeBinary,
		Spec: specJSON, SnapshotKey: key, Labels: r.Labels, Options: opts,
	}
	if err := s.db.CreateContainer(ns, c); err != nil {
		return nil, err
	}
	s.publish(ns, events.TopicContainerCreate, id, func(ev *xdv1.Event) { ev.Image = img.Name })
	return c, nil
}

// DeleteContainer removes a container, its snapshot and its log. A live
// task is refused unless force, which kills and deletes it first.
func (s *Server) DeleteContainer(ctx context.Context, id string, force bool) error {
	ns := namespace(ctx)
	s.cancelRestart(ns, id)
	c, err := s.db.GetContainer(ns, id)
	if err != nil {
		return err
	}
	if t := s.getTask(ns, id); t != nil {
		if t.shim == nil {
			return fmt.Errorf("container %q: its task is being created: %w", id, errdefs.ErrFailedPrecondition)
		}
		p, perr := t.proc("")
		running := perr == nil
		if running {
			select {
			case <-p.exited:
				running = false
			default:
			}
		}
		if running && !force {
			return fmt.Errorf("container %q is running: stop it first or force: %w", id, errdefs.ErrFailedPrecondition)
		}
		// Its restart policy must not bring back what is being removed.
		t.mu.Lock()
		t.record.StoppedByUser = true
		t.mu.Unlock()
		if _, err := s.DeleteProcess(ctx, id, "", true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	if err := s.snaps.Remove(ctx, c.SnapshotKey); err != nil && !errors.Is(err, snapshotNotFound) {
		return fmt.Errorf("remove snapshot of %q: %w", id, err)
	}
	if err := s.db.DeleteContainer(ns, id); err != nil {
		return err
	}
	if err := taskio.RemoveLog(s.logPath(ns, id)); err != nil {
		s.log.Warn("remove container log", "ns", ns, "id", id, "err", err)
	}
	s.publish(ns, events.TopicContainerDelete, id, nil)
	return nil
}
