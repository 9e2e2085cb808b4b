package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// Layout: v1/<namespace>/{containers,images,tasks,execs}/<key> = protobuf
// record; an exec's key is "<container id>/<exec id>" (neither may hold a
// slash).
var (
	bucketV1         = []byte("v1")
	bucketContainers = []byte("containers")
	bucketImages     = []byte("images")
	bucketTasks      = []byte("tasks")
	bucketExecs      = []byte("execs")
)

// validName is what container ids and namespaces may look like: they
// become path components, cgroup names and shim command-line words.
// (^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$, without a regexp whose bounded
// repetition costs milliseconds to compile at every start.)
func validName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// ValidateName checks a namespace or container id.
func ValidateName(kind, name string) error {
	if !validName(name) {
		return fmt.Errorf("%s %q: must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit: %w", kind, name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// DB is xd's metadata database.
type DB struct {
	db *bolt.DB
}

// Open opens (or creates) the database at path.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("metadata dir: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open metadata %s: %w", path, err)
	}
	return &DB{db: db}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

func nsBucket(tx *bolt.Tx, ns string, kind []byte, create bool) (*bolt.Bucket, error) {
	if create {
		v1, err := tx.CreateBucketIfNotExists(bucketV1)
		if err != nil {
			return nil, err
		}
		nb, err := v1.CreateBucketIfNotExists([]byte(ns))
		if err != nil {
			return nil, err
		}
		return nb.CreateBucketIfNotExists(kind)
	}
	v1 := tx.Bucket(bucketV1)
	if v1 == nil {
		return nil, nil
	}
	nb := v1.Bucket([]byte(ns))
	if nb == nil {
		return nil, nil
	}
	return nb.Bucket(kind), nil
}

// Namespaces lists the namespaces that hold anything.
func (d *DB) Namespaces() ([]string, error) {
	var out []string
	err := d.db.View(func(tx *bolt.Tx) error {
		v1 := tx.Bucket(bucketV1)
		if v1 == nil {
			return nil
		}
		return v1.ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}

func put(d *DB, ns string, kind []byte, key string, m proto.Message, mustCreate bool) error {
	data, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	return d.db.Update(func(tx *bolt.Tx) error { return putTx(tx, ns, kind, key, data, mustCreate) })
}

func putTx(tx *bolt.Tx, ns string, kind []byte, key string, data []byte, mustCreate bool) error {
	b, err := nsBucket(tx, ns, kind, true)
	if err != nil {
		return err
	}
	if mustCreate && b.Get([]byte(key)) != nil {
		return fmt.Errorf("%s %q already exists: %w", singular(kind), key, errdefs.ErrAlreadyExists)
	}
	return b.Put([]byte(key), data)
}

func get(d *DB, ns string, kind []byte, key string, m proto.Message) error {
	return d.db.View(func(tx *bolt.Tx) error {
		b, err := nsBucket(tx, ns, kind, false)
		if err != nil {
			return err
		}
		var data []byte
		if b != nil {
			data = b.Get([]byte(key))
		}
		if data == nil {
			return fmt.Errorf("%s %q not found: %w", singular(kind), key, errdefs.ErrNotFound)
		}
		return proto.Unmarshal(data, m)
	})
}

func list[T proto.Message](d *DB, ns string, kind []byte, newT func() T) ([]T, error) {
	var out []T
	err := d.db.View(func(tx *bolt.Tx) error {
		b, err := nsBucket(tx, ns, kind, false)
		if err != nil || b == nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			m := newT()
			if err := proto.Unmarshal(v, m); err != nil {
				return fmt.Errorf("%s %q: %w", singular(kind), k, err)
			}
			out = append(out, m)
			return nil
		})
	})
	return out, err
}

func del(d *DB, ns string, kind []byte, key string) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		b, err := nsBucket(tx, ns, kind, false)
		if err != nil {
			return err
		}
		if b == nil || b.Get([]byte(key)) == nil {
			return fmt.Errorf("%s %q not found: %w", singular(kind), key, errdefs.ErrNotFound)
		}
		return b.Delete([]byte(key))
	})
}

func singular(kind []byte) string {
	switch string(kind) {
	case string(bucketContainers):
		return "container"
	case string(bucketImages):
		return "image"
	case string(bucketExecs):
		return "exec"
	}
	return "task"
}

// CreateContainer stores a new container; an existing id is AlreadyExists.
func (d *DB) CreateContainer(ns string, c *xdv1.Container) error {
	if err := ValidateName("namespace", ns); err != nil {
		return err
	}
	if err := ValidateName("container id", c.Id); err != nil {
		return err
	}
	now := timestamppb.Now()
	c.CreatedAt, c.UpdatedAt = now, now
	return put(d, ns, bucketContainers, c.Id, c, true)
}

// GetContainer returns a container or NotFound.
func (d *DB) GetContainer(ns, id string) (*xdv1.Container, error) {
	c := &xdv1.Container{}
	if err := get(d, ns, bucketContainers, id, c); err != nil {
		return nil, err
	}
	return c, nil
}

// ContainerIDs returns the ids of a namespace's containers, in no
// particular order, without decoding the records.
func (d *DB) ContainerIDs(ns string) ([]string, error) {
	var out []string
	err := d.db.View(func(tx *bolt.Tx) error {
		b, err := nsBucket(tx, ns, bucketContainers, false)
		if err != nil || b == nil {
			return err
		}
		return b.ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}

// ListContainers returns a namespace's containers, oldest first.
func (d *DB) ListContainers(ns string) ([]*xdv1.Container, error) {
	cs, err := list(d, ns, bucketContainers, func() *xdv1.Container { return &xdv1.Container{} })
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].CreatedAt.AsTime().Before(cs[j].CreatedAt.AsTime()) })
	return cs, err
}

// DeleteContainer removes a container and its task record in one transaction.
func (d *DB) DeleteContainer(ns, id string) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		b, err := nsBucket(tx, ns, bucketContainers, false)
		if err != nil {
			return err
		}
		if b == nil || b.Get([]byte(id)) == nil {
			return fmt.Errorf("container %q not found: %w", id, errdefs.ErrNotFound)
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		if err := deleteExecs(tx, ns, id); err != nil {
			return err
		}
		if tb, _ := nsBucket(tx, ns, bucketTasks, false); tb != nil {
			return tb.Delete([]byte(id))
		}
		return nil
	})
}

// PutTask records the last known state of a container's task.
func (d *DB) PutTask(ns string, t *xdv1.Task) error {
	return put(d, ns, bucketTasks, t.ContainerId, t, false)
}

// PutTasks records many tasks in one transaction (xd's recovery).
func (d *DB) PutTasks(ns string, tasks []*xdv1.Task) error {
	if len(tasks) == 0 {
		return nil
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		b, err := nsBucket(tx, ns, bucketTasks, true)
		if err != nil {
			return err
		}
		for _, t := range tasks {
			data, err := proto.Marshal(t)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(t.ContainerId), data); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetTask returns a container's task record or NotFound.
func (d *DB) GetTask(ns, id string) (*xdv1.Task, error) {
	t := &xdv1.Task{}
	if err := get(d, ns, bucketTasks, id, t); err != nil {
		return nil, err
	}
	return t, nil
}

// ListTasks returns a namespace's task records.
func (d *DB) ListTasks(ns string) ([]*xdv1.Task, error) {
	return list(d, ns, bucketTasks, func() *xdv1.Task { return &xdv1.Task{} })
}

// DeleteTask drops a task record; a missing one is not an error.
func (d *DB) DeleteTask(ns, id string) error {
	if err := del(d, ns, bucketTasks, id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	return nil
}

// PutExec records an exec process (ContainerId and ExecId set) for as long
// as its shim holds it, so that a restarted xd re-attaches to it too.
func (d *DB) PutExec(ns string, t *xdv1.Task) error {
	if err := ValidateName("exec id", t.ExecId); err != nil {
		return err
	}
	return put(d, ns, bucketExecs, execKey(t.ContainerId, t.ExecId), t, false)
}

// ListExecs returns the exec records of a container's task.
func (d *DB) ListExecs(ns, id string) ([]*xdv1.Task, error) {
	var out []*xdv1.Task
	err := d.db.View(func(tx *bolt.Tx) error {
		b, err := nsBucket(tx, ns, bucketExecs, false)
		if err != nil || b == nil {
			return err
		}
		prefix := []byte(execKey(id, ""))
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			t := &xdv1.Task{}
			if err := proto.Unmarshal(v, t); err != nil {
				return fmt.Errorf("exec %q: %w", k, err)
			}
			out = append(out, t)
		}
		return nil
	})
	return out, err
}

// DeleteExec drops an exec record; a missing one is not an error.
func (d *DB) DeleteExec(ns, id, execID string) error {
	if err := del(d, ns, bucketExecs, execKey(id, execID)); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	return nil
}

// DeleteExecs drops every exec record of a container's task (its shim is
// gone, and the execs with it). With none to drop nothing is written: a
// commit costs two fdatasyncs, and most tasks never had an exec.
func (d *DB) DeleteExecs(ns, id string) error {
	var n int
	if err := d.db.View(func(tx *bolt.Tx) error {
		n = len(execKeys(tx, ns, id))
		return nil
	}); err != nil || n == 0 {
		return err
	}
	return d.db.Update(func(tx *bolt.Tx) error { return deleteExecs(tx, ns, id) })
}

// EndTask records the last state of a task whose shim is gone and drops
// its exec records, in one transaction.
func (d *DB) EndTask(ns string, t *xdv1.Task) error {
	data, err := proto.Marshal(t)
	if err != nil {
		return err
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		if err := putTx(tx, ns, bucketTasks, t.ContainerId, data, false); err != nil {
			return err
		}
		return deleteExecs(tx, ns, t.ContainerId)
	})
}

func deleteExecs(tx *bolt.Tx, ns, id string) error {
	b, err := nsBucket(tx, ns, bucketExecs, false)
	if err != nil || b == nil {
		return err
	}
	for _, k := range execKeys(tx, ns, id) {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// execKeys lists the keys of a task's exec records.
func execKeys(tx *bolt.Tx, ns, id string) [][]byte {
	b, err := nsBucket(tx, ns, bucketExecs, false)
	if err != nil || b == nil {
		return nil
	}
	prefix := []byte(execKey(id, ""))
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	return keys
}

func execKey(id, execID string) string { return id + "/" + execID }

// PutImage stores an image by name, keeping the creation time of an
// existing record; it reports whether the name is new.
func (d *DB) PutImage(ns string, img *xdv1.Image) (created bool, err error) {
	if err := ValidateName("namespace", ns); err != nil {
		return false, err
	}
	err = d.db.Update(func(tx *bolt.Tx) error {
		b, err := nsBucket(tx, ns, bucketImages, true)
		if err != nil {
			return err
		}
		now := timestamppb.Now()
		img.CreatedAt, img.UpdatedAt = now, now
		if old := b.Get([]byte(img.Name)); old != nil {
			prev := &xdv1.Image{}
			if err := proto.Unmarshal(old, prev); err == nil {
				img.CreatedAt = prev.CreatedAt
			}
		} else {
			created = true
		}
		data, err := proto.Marshal(img)
		if err != nil {
			return err
		}
		return b.Put([]byte(img.Name), data)
	})
	return created, err
}

// GetImage returns an image by name or NotFound.
func (d *DB) GetImage(ns, name string) (*xdv1.Image, error) {
	img := &xdv1.Image{}
	if err := get(d, ns, bucketImages, name, img); err != nil {
		return nil, err
	}
	return img, nil
}

// ListImages returns a namespace's images sorted by name.
func (d *DB) ListImages(ns string) ([]*xdv1.Image, error) {
	return list(d, ns, bucketImages, func() *xdv1.Image { return &xdv1.Image{} })
}

// DeleteImage removes an image name.
func (d *DB) DeleteImage(ns, name string) error {
	return del(d, ns, bucketImages, name)
}
