package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/api/types"
	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
)

// Kind is the kind of a snapshot.
type Kind int

// The kinds of snapshots.
const (
	KindActive    Kind = iota + 1 // writable, has an upper dir
	KindView                      // read-only view of its parent
	KindCommitted                 // immutable, usable as a parent
)

// String returns "active", "view" or "committed".
func (k Kind) String() string {
	switch k {
	case KindActive:
		return "active"
	case KindView:
		return "view"
	case KindCommitted:
		return "committed"
	default:
		return "kind(" + strconv.Itoa(int(k)) + ")"
	}
}

// Info describes a snapshot.
type Info struct {
	Name    string
	Parent  string // "" for a base snapshot
	Kind    Kind
	Created time.Time
	Labels  map[string]string
}

// sentinel is an error that matches itself and an errdefs category, so that
// callers can test either and the API edge can map it to a gRPC code.
type sentinel struct {
	msg  string
	base error
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.base }

// Errors returned (wrapped) by the Snapshotter.
var (
	ErrNotFound    error = &sentinel{"not found", errdefs.ErrNotFound}
	ErrExists      error = &sentinel{"already exists", errdefs.ErrAlreadyExists}
	ErrHasChildren error = &sentinel{"has children", errdefs.ErrFailedPrecondition}
	ErrWrongKind   error = &sentinel{"wrong kind", errdefs.ErrFailedPrecondition}
)

var bucketSnapshots = []byte("snapshots")

// record is the stored form of a snapshot; its directory is snapshots/<ID>.
type record struct {
	ID      uint64            `json:"id"`
	Kind    Kind              `json:"kind"`
	Parent  string            `json:"parent,omitempty"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Snapshotter manages overlay snapshots under one root directory. It is safe
// for concurrent use; one root must be used by one Snapshotter at a time
// (the bbolt file lock enforces it).
type Snapshotter struct {
	root string
	db   *bolt.DB
}

// NewOverlay opens (creating it if needed) the snapshotter rooted at root.
// It fails with a clear error if overlayfs cannot be mounted there, and
// removes the directories a crash left without a record.
func NewOverlay(root string) (*Snapshotter, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("snapshotter root: %w", err)
	}
	s := &Snapshotter{root: root}
	if err := os.MkdirAll(s.snapshotsDir(), 0o700); err != nil {
		return nil, fmt.Errorf("create snapshotter root: %w", err)
	}
	if err := os.Chmod(root, 0o700); err != nil {
		return nil, fmt.Errorf("snapshotter root: %w", err)
	}
	// The mount test costs a mount and an unmount: once per root is enough
	// (a daemon restart finds the database and skips it).
	if _, err := os.Stat(filepath.Join(root, "metadata.db")); errors.Is(err, fs.ErrNotExist) {
		if err := checkOverlay(s.snapshotsDir()); err != nil {
			return nil, err
		}
	}
	db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open snapshot metadata %s: %w", filepath.Join(root, "metadata.db"), err)
	}
	s.db = db
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketSnapshots)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("init snapshot metadata: %w", err)
	}
	if err := s.removeOrphans(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the metadata database.
func (s *Snapshotter) Close() error {
	return s.db.Close()
}

func (s *Snapshotter) snapshotsDir() string { return filepath.Join(s.root, "snapshots") }

func (s *Snapshotter) dir(id uint64) string {
	return filepath.Join(s.snapshotsDir(), strconv.FormatUint(id, 10))
}

func (s *Snapshotter) fsDir(id uint64) string   { return filepath.Join(s.dir(id), "fs") }
func (s *Snapshotter) workDir(id uint64) string { return filepath.Join(s.dir(id), "work") }

// removeOrphans deletes every entry of snapshots/ that is not the directory
// of a recorded snapshot: half-created, half-removed or crash leftovers.
func (s *Snapshotter) removeOrphans() error {
	ids := map[string]bool{}
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("snapshot %q: decode record: %w", k, err)
			}
			ids[strconv.FormatUint(r.ID, 10)] = true
			return nil
		})
	}); err != nil {
		return fmt.Errorf("load snapshot metadata: %w", err)
	}
	entries, err := os.ReadDir(s.snapshotsDir())
	if err != nil {
		return fmt.Errorf("scan snapshots: %w", err)
	}
	for _, e := range entries {
		if ids[e.Name()] {
			continue
		}
		p := filepath.Join(s.snapshotsDir(), e.Name())
		slog.Info("snapshotter: removing directory without a record (crash leftover)", "path", p)
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove leftover snapshot dir: %w", err)
		}
	}
	return nil
}

func getRecord(b *bolt.Bucket, key string) (record, error) {
	v := b.Get([]byte(key))
	if v == nil {
		return record{}, fmt.Errorf("snapshot %q: %w", key, ErrNotFound)
	}
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return record{}, fmt.Errorf("snapshot %q: decode record: %w", key, err)
	}
	return r, nil
}

func putRecord(b *bolt.Bucket, key string, r record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("snapshot %q: encode record: %w", key, err)
	}
	if err := b.Put([]byte(key), v); err != nil {
		return fmt.Errorf("snapshot %q: store record: %w", key, err)
	}
	return nil
}

// parentIDs returns the directory ids of parent and its ancestors, nearest
// first.
func parentIDs(b *bolt.Bucket, parent string) ([]uint64, error) {
	var ids []uint64
	for parent != "" {
		r, err := getRecord(b, parent)
		if err != nil {
			return nil, fmt.Errorf("parent chain: %w", err)
		}
		ids = append(ids, r.ID)
		parent = r.Parent
		if len(ids) > 1<<16 {
			return nil, fmt.Errorf("parent chain of %q: loop", parent)
		}
	}
	return ids, nil
}

// Prepare creates an active (writable) snapshot key on top of the committed
// snapshot parent ("" for an empty one) and returns the mounts of its root
// filesystem.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string, labels map[string]string) ([]*types.Mount, error) {
	return s.create(ctx, KindActive, key, parent, labels)
}

// View creates a read-only snapshot key of the committed snapshot parent and
// returns its mounts.
func (s *Snapshotter) View(ctx context.Context, key, parent string, labels map[string]string) ([]*types.Mount, error) {
	return s.create(ctx, KindView, key, parent, labels)
}

func (s *Snapshotter) create(ctx context.Context, kind Kind, key, parent string, labels map[string]string) ([]*types.Mount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("%s snapshot: empty key: %w", kind, errdefs.ErrInvalidArgument)
	}
	tmp, err := os.MkdirTemp(s.snapshotsDir(), "new-")
	if err != nil {
		return nil, fmt.Errorf("snapshot %q: %w", key, err)
	}
	if err := os.Mkdir(filepath.Join(tmp, "fs"), 0o755); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("snapshot %q: %w", key, err)
	}
	if kind == KindActive {
		if err := os.Mkdir(filepath.Join(tmp, "work"), 0o700); err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("snapshot %q: %w", key, err)
		}
	}
	final := "" // set once tmp is renamed into place
	var rec record
	var parents []uint64
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		if b.Get([]byte(key)) != nil {
			return fmt.Errorf("snapshot %q: %w", key, ErrExists)
		}
		if parent != "" {
			p, err := getRecord(b, parent)
			if err != nil {
				return fmt.Errorf("parent: %w", err)
			}
			if p.Kind != KindCommitted {
				return fmt.Errorf("parent %q is %s, not committed: %w", parent, p.Kind, ErrWrongKind)
			}
			if parents, err = parentIDs(b, parent); err != nil {
				return err
			}
		}
		id, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("allocate snapshot id: %w", err)
		}
		rec = record{ID: id, Kind: kind, Parent: parent, Created: time.Now().UTC(), Labels: maps.Clone(labels)}
		if err := putRecord(b, key, rec); err != nil {
			return err
		}
		if err := os.Rename(tmp, s.dir(id)); err != nil {
			return fmt.Errorf("snapshot %q: move directory into place: %w", key, err)
		}
		final = s.dir(id)
		return nil
	})
	if err != nil {
		// The transaction did not commit: no record, so no directory.
		if final != "" {
			tmp = final
		}
		if rerr := os.RemoveAll(tmp); rerr != nil {
			slog.WarnContext(ctx, "snapshotter: cleanup after failed create", "path", tmp, "error", rerr)
		}
		return nil, fmt.Errorf("%s snapshot: %w", kind, err)
	}
	return s.mounts(key, rec, parents)
}

// Mounts returns the mounts of the active or view snapshot key.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]*types.Mount, error) {
	var rec record
	var parents []uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		var err error
		if rec, err = getRecord(b, key); err != nil {
			return err
		}
		parents, err = parentIDs(b, rec.Parent)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mounts: %w", err)
	}
	return s.mounts(key, rec, parents)
}

// mounts builds the mounts of a snapshot, like containerd's overlay
// snapshotter: a bind mount when there is a single directory to show, an
// overlay otherwise (lowerdir nearest parent first).
func (s *Snapshotter) mounts(key string, rec record, parents []uint64) ([]*types.Mount, error) {
	switch rec.Kind {
	case KindActive:
		if len(parents) == 0 {
			return []*types.Mount{{Type: "bind", Source: s.fsDir(rec.ID), Options: []string{"rbind", "rw"}}}, nil
		}
		return []*types.Mount{{
			Type:   "overlay",
			Source: "overlay",
			Options: []string{
				"index=off",
				"workdir=" + s.workDir(rec.ID),
				"upperdir=" + s.fsDir(rec.ID),
				"lowerdir=" + s.lowerdir(parents),
			},
		}}, nil
	case KindView:
		switch len(parents) {
		case 0:
			return []*types.Mount{{Type: "bind", Source: s.fsDir(rec.ID), Options: []string{"rbind", "ro"}}}, nil
		case 1:
			return []*types.Mount{{Type: "bind", Source: s.fsDir(parents[0]), Options: []string{"rbind", "ro"}}}, nil
		default:
			return []*types.Mount{{
				Type:    "overlay",
				Source:  "overlay",
				Options: []string{"index=off", "lowerdir=" + s.lowerdir(parents)},
			}}, nil
		}
	default:
		return nil, fmt.Errorf("mounts of snapshot %q: it is %s: %w", key, rec.Kind, ErrWrongKind)
	}
}

func (s *Snapshotter) lowerdir(ids []uint64) string {
	dirs := make([]string, len(ids))
	for i, id := range ids {
		dirs[i] = s.fsDir(id)
	}
	return strings.Join(dirs, ":")
}

// Commit turns the active snapshot key into the committed snapshot name,
// which can then be the parent of others. key no longer exists afterwards.
// The caller must have unmounted key.
func (s *Snapshotter) Commit(ctx context.Context, name, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("commit %q: empty name: %w", key, errdefs.ErrInvalidArgument)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		rec, err := getRecord(b, key)
		if err != nil {
			return err
		}
		if rec.Kind != KindActive {
			return fmt.Errorf("snapshot %q is %s, not active: %w", key, rec.Kind, ErrWrongKind)
		}
		if b.Get([]byte(name)) != nil {
			return fmt.Errorf("snapshot %q: %w", name, ErrExists)
		}
		rec.Kind = KindCommitted
		rec.Created = time.Now().UTC()
		if err := putRecord(b, name, rec); err != nil {
			return err
		}
		return b.Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("commit %q as %q: %w", key, name, err)
	}
	return nil
}

// Remove deletes the snapshot key and its directory. A snapshot that is the
// parent of others cannot be removed (ErrHasChildren).
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	removed, err := s.removeRecords(func(b *bolt.Bucket, all map[string]record) ([]string, error) {
		if _, ok := all[key]; !ok {
			return nil, fmt.Errorf("snapshot %q: %w", key, ErrNotFound)
		}
		var children []string
		for name, r := range all {
			if r.Parent == key {
				children = append(children, name)
			}
		}
		if len(children) > 0 {
			sort.Strings(children)
			return nil, fmt.Errorf("snapshot %q %w: %s", key, ErrHasChildren, strings.Join(children, ", "))
		}
		return []string{key}, nil
	})
	if err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	s.deleteDirs(ctx, removed)
	return nil
}

// GC removes every snapshot that is neither in keep nor an ancestor of one
// in keep, and returns the removed names, sorted.
func (s *Snapshotter) GC(ctx context.Context, keep map[string]bool) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	removed, err := s.removeRecords(func(b *bolt.Bucket, all map[string]record) ([]string, error) {
		live := map[string]bool{}
		for k := range keep {
			for name := k; name != "" && !live[name]; {
				r, ok := all[name]
				if !ok {
					break
				}
				live[name] = true
				name = r.Parent
			}
		}
		var dead []string
		for name := range all {
			if !live[name] {
				dead = append(dead, name)
			}
		}
		return dead, nil
	})
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	s.deleteDirs(ctx, removed)
	names := make([]string, len(removed))
	for i, r := range removed {
		names[i] = r.name
	}
	sort.Strings(names)
	return names, nil
}

type removal struct {
	name string
	dir  string // the renamed directory to delete
}

// removeRecords deletes, in one transaction, the records pick selects and
// renames their directories to "rm-<id>" so that a crash before they are
// deleted leaves only orphans. If the transaction fails, the renames are
// undone.
func (s *Snapshotter) removeRecords(pick func(*bolt.Bucket, map[string]record) ([]string, error)) ([]removal, error) {
	type rename struct{ from, to string }
	var done []rename
	var out []removal
	err := s.db.Update(func(tx *bolt.Tx) error {
		done, out = nil, nil
		b := tx.Bucket(bucketSnapshots)
		all := map[string]record{}
		if err := b.ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("snapshot %q: decode record: %w", k, err)
			}
			all[string(k)] = r
			return nil
		}); err != nil {
			return err
		}
		names, err := pick(b, all)
		if err != nil {
			return err
		}
		for _, name := range names {
			if err := b.Delete([]byte(name)); err != nil {
				return fmt.Errorf("snapshot %q: delete record: %w", name, err)
			}
			id := all[name].ID
			from := s.dir(id)
			to := filepath.Join(s.snapshotsDir(), "rm-"+strconv.FormatUint(id, 10))
			if err := os.Rename(from, to); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				return fmt.Errorf("snapshot %q: %w", name, err)
			}
			done = append(done, rename{from, to})
			out = append(out, removal{name: name, dir: to})
		}
		return nil
	})
	if err != nil {
		for i := len(done) - 1; i >= 0; i-- {
			if rerr := os.Rename(done[i].to, done[i].from); rerr != nil {
				slog.Error("snapshotter: cannot restore directory after failed removal", "path", done[i].from, "error", rerr)
			}
		}
		return nil, err
	}
	return out, nil
}

// deleteDirs deletes the directories of removed snapshots. A failure only
// leaves an orphan that the next NewOverlay deletes.
func (s *Snapshotter) deleteDirs(ctx context.Context, rs []removal) {
	for _, r := range rs {
		if err := os.RemoveAll(r.dir); err != nil {
			slog.WarnContext(ctx, "snapshotter: cannot delete directory of removed snapshot", "snapshot", r.name, "path", r.dir, "error", err)
		}
	}
}

// Stat returns the Info of snapshot key.
func (s *Snapshotter) Stat(ctx context.Context, key string) (Info, error) {
	var rec record
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		rec, err = getRecord(tx.Bucket(bucketSnapshots), key)
		return err
	})
	if err != nil {
		return Info{}, fmt.Errorf("stat: %w", err)
	}
	return info(key, rec), nil
}

func info(name string, r record) Info {
	return Info{Name: name, Parent: r.Parent, Kind: r.Kind, Created: r.Created, Labels: maps.Clone(r.Labels)}
}

// Walk calls fn for every snapshot, in name order, and stops at the first
// error fn returns. fn runs outside any transaction and may call s.
func (s *Snapshotter) Walk(ctx context.Context, fn func(Info) error) error {
	var infos []Info
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("snapshot %q: decode record: %w", k, err)
			}
			infos = append(infos, info(string(k), r))
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("walk: %w", err)
	}
	for _, in := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

// UpperDir returns the directory of the active snapshot key, where a layer
// is unpacked before the snapshot is committed.
func (s *Snapshotter) UpperDir(key string) (string, error) {
	var rec record
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		rec, err = getRecord(tx.Bucket(bucketSnapshots), key)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("upper dir: %w", err)
	}
	if rec.Kind != KindActive {
		return "", fmt.Errorf("upper dir: snapshot %q is %s, not active: %w", key, rec.Kind, ErrWrongKind)
	}
	return s.fsDir(rec.ID), nil
}
