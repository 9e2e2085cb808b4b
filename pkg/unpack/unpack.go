package unpack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/xstack/xstack/pkg/archive"
	"github.com/xstack/xstack/pkg/snapshot"
)

// Layer is one layer of an image, bottom first.
type Layer struct {
	Digest digest.Digest // of the blob as stored (compressed or not): names the layer in errors and progress
	DiffID digest.Digest // of the uncompressed tar
	// Open returns the uncompressed tar stream.
	Open func() (io.ReadCloser, error)
}

// Progress states reported to the progress callback.
const (
	StateUnpacking = "unpacking"
	StateExists    = "exists"
	StateUnpacked  = "unpacked"
)

// LabelLayer is set on each snapshot Unpack creates: the layer digest.
const LabelLayer = "xstack.layer.digest"

// locks serializes the unpacking of one chain ID in one snapshotter.
var locks keyLock

// ChainIDs returns the chain ID of each layer prefix, as the OCI image spec
// defines them: chainID(L0) = diffID0 and chainID(Ln) =
// sha256(chainID(Ln-1) + " " + diffIDn).
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

// Unpack makes sure a committed snapshot named by each layer's chain ID
// exists in sn, unpacking only the missing ones, and returns the top chain
// ID. A layer is unpacked into a temporary active snapshot whose digest
// must equal the layer's DiffID before it is committed; on any failure the
// temporary snapshot is removed. Concurrent Unpacks sharing layers wait for
// each other rather than unpack a layer twice. progress, if not nil, is
// called with a layer digest and StateUnpacking, StateExists or
// StateUnpacked.
func Unpack(ctx context.Context, sn *snapshot.Snapshotter, layers []Layer, progress func(digest.Digest, string)) (digest.Digest, error) {
	if len(layers) == 0 {
		return "", fmt.Errorf("unpack: no layers: %w", errdefs.ErrInvalidArgument)
	}
	diffIDs := make([]digest.Digest, len(layers))
	for i, l := range layers {
		if err := l.DiffID.Validate(); err != nil {
			return "", fmt.Errorf("unpack: layer %d (%s): diffID: %w", i, l.Digest, errors.Join(err, errdefs.ErrInvalidArgument))
		}
		if l.Open == nil {
			return "", fmt.Errorf("unpack: layer %d (%s): no content: %w", i, l.Digest, errdefs.ErrInvalidArgument)
		}
		diffIDs[i] = l.DiffID
	}
	if progress == nil {
		progress = func(digest.Digest, string) {}
	}
	chain := ChainIDs(diffIDs)
	parent := ""
	for i, l := range layers {
		if err := unpackLayer(ctx, sn, l, chain[i].String(), parent, progress); err != nil {
			return "", fmt.Errorf("unpack layer %s: %w", l.Digest, err)
		}
		parent = chain[i].String()
	}
	return chain[len(chain)-1], nil
}

func unpackLayer(ctx context.Context, sn *snapshot.Snapshotter, l Layer, chainID, parent string, progress func(digest.Digest, string)) (retErr error) {
	lockKey := fmt.Sprintf("%p/%s", sn, chainID)
	if err := locks.lock(ctx, lockKey); err != nil {
		return err
	}
	defer locks.unlock(lockKey)

	switch info, err := sn.Stat(ctx, chainID); {
	case err == nil:
		if info.Kind != snapshot.KindCommitted {
			return fmt.Errorf("snapshot %s exists but is %s: %w", chainID, info.Kind, errdefs.ErrFailedPrecondition)
		}
		progress(l.Digest, StateExists)
		return nil
	case !errors.Is(err, snapshot.ErrNotFound):
		return err
	}

	progress(l.Digest, StateUnpacking)
	key, err := tempKey(chainID)
	if err != nil {
		return err
	}
	if _, err := sn.Prepare(ctx, key, parent, map[string]string{LabelLayer: l.Digest.String()}); err != nil {
		return err
	}
	defer func() {
		if retErr == nil {
			return
		}
		// Clean up even if ctx was cancelled.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := sn.Remove(cctx, key); err != nil {
			slog.WarnContext(ctx, "unpack: cannot remove temporary snapshot", "key", key, "error", err)
		}
	}()
	dir, err := sn.UpperDir(key)
	if err != nil {
		return err
	}
	rc, err := l.Open()
	if err != nil {
		return fmt.Errorf("open layer: %w", err)
	}
	got, err := archive.Apply(ctx, dir, rc)
	if cerr := rc.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close layer: %w", cerr)
	}
	if err != nil {
		return err
	}
	if got != l.DiffID {
		return fmt.Errorf("diffID mismatch: content is %s, image says %s: %w", got, l.DiffID, errdefs.ErrFailedPrecondition)
	}
	err = sn.Commit(ctx, chainID, key)
	if errors.Is(err, snapshot.ErrExists) {
		// Another unpacker (another process on this root) won the race.
		progress(l.Digest, StateExists)
		return errExistsCleanup(ctx, sn, key)
	}
	if err != nil {
		return err
	}
	progress(l.Digest, StateUnpacked)
	return nil
}

// errExistsCleanup removes the temporary snapshot after losing a commit race;
// losing is not an error.
func errExistsCleanup(ctx context.Context, sn *snapshot.Snapshotter, key string) error {
	if err := sn.Remove(context.WithoutCancel(ctx), key); err != nil {
		slog.WarnContext(ctx, "unpack: cannot remove temporary snapshot", "key", key, "error", err)
	}
	return nil
}

func tempKey(chainID string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("temporary snapshot key: %w", err)
	}
	return "unpack-" + hex.EncodeToString(b[:]) + "-" + chainID, nil
}
