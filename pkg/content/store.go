package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ingestPrefix starts the name of every temporary file in <root>/ingest.
const ingestPrefix = "tmp-"

// Store is a content-addressed blob store rooted at one directory.
// It is safe for concurrent use by multiple goroutines.
type Store struct {
	root string

	// mu guards active.
	mu sync.Mutex
	// active holds the base names of ingest temp files currently being
	// written, so GC does not remove them under a running Ingest.
	active map[string]bool
}

// New opens (creating if needed) a store at root.
func New(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("content store: empty root")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("content store %s: %w", root, err)
	}
	for _, d := range []string{
		abs,
		filepath.Join(abs, "blobs"),
		filepath.Join(abs, "blobs", string(digest.SHA256)),
		filepath.Join(abs, "ingest"),
	} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("content store %s: %w", root, err)
		}
		// MkdirAll leaves existing directories alone; tighten them.
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("content store %s: %w", root, err)
		}
	}
	return &Store{root: abs, active: map[string]bool{}}, nil
}

// Root returns the store's root directory.
func (s *Store) Root() string { return s.root }

// blobPath validates d and returns where its blob lives. Validation is what
// keeps a hostile digest ("sha256:../../x") from becoming a path.
func (s *Store) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("invalid digest %q: %w", string(d), err)
	}
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded()), nil
}

// Has reports whether the blob d is in the store. Invalid digests are never present.
func (s *Store) Has(d digest.Digest) bool {
	p, err := s.blobPath(d)
	if err != nil {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Open opens blob d for reading. When the blob is missing the error
// satisfies errors.Is(err, fs.ErrNotExist).
func (s *Store) Open(d digest.Digest) (*os.File, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	return f, nil
}

// Size returns the size in bytes of blob d.
func (s *Store) Size(d digest.Digest) (int64, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return 0, fmt.Errorf("stat blob: %w", err)
	}
	st, err := os.Stat(p)
	if err != nil {
		return 0, fmt.Errorf("stat blob %s: %w", d, err)
	}
	return st.Size(), nil
}

// ReadBlob reads a whole blob into memory, refusing blobs larger than max
// bytes. It is meant for small JSON documents (manifests, indexes,
// configs); the content is re-verified against d, so on-disk corruption is
// reported rather than parsed.
func (s *Store) ReadBlob(d digest.Digest, max int64) ([]byte, error) {
	f, err := s.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if st.Size() > max {
		return nil, fmt.Errorf("read blob %s: size %d exceeds limit %d", d, st.Size(), max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("read blob %s: size exceeds limit %d", d, max)
	}
	if got := d.Algorithm().FromBytes(data); got != d {
		return nil, fmt.Errorf("read blob %s: corrupt in store: content digest is %s", d, got)
	}
	return data, nil
}

// Delete removes blob d. A missing blob is an error satisfying
// errors.Is(err, fs.ErrNotExist).
func (s *Store) Delete(d digest.Digest) error {
	p, err := s.blobPath(d)
	if err != nil {
		return fmt.Errorf("delete blob: %w", err)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// Walk calls fn for every blob in the store, in no particular order.
// Files whose names are not valid digests are skipped. An error from fn
// stops the walk and is returned.
func (s *Store) Walk(fn func(d digest.Digest, size int64) error) error {
	blobs := filepath.Join(s.root, "blobs")
	algs, err := os.ReadDir(blobs)
	if err != nil {
		return fmt.Errorf("walk blobs: %w", err)
	}
	for _, a := range algs {
		if !a.IsDir() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(blobs, a.Name()))
		if err != nil {
			return fmt.Errorf("walk blobs: %w", err)
		}
		for _, e := range ents {
			d := digest.NewDigestFromEncoded(digest.Algorithm(a.Name()), e.Name())
			if !e.Type().IsRegular() || d.Validate() != nil {
				slog.Debug("content: skipping stray file in blob dir", "path", filepath.Join(blobs, a.Name(), e.Name()))
				continue
			}
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since ReadDir
			}
			if err != nil {
				return fmt.Errorf("walk blobs: %w", err)
			}
			if err := fn(d, info.Size()); err != nil {
				return err
			}
		}
	}
	return nil
}

// GC removes every blob whose digest is not in keep, and every ingest
// temporary file not belonging to an Ingest running in this process
// (left over from a crash). It returns the digests it removed, and keeps
// going past individual failures, returning the first one.
//
// GC cannot know about blobs that a concurrent pull or import has stored
// but not yet named: callers must serialize GC against those operations.
func (s *Store) GC(keep map[digest.Digest]bool) ([]digest.Digest, error) {
	var (
		victims []digest.Digest
		removed []digest.Digest
		first   error
	)
	if err := s.Walk(func(d digest.Digest, _ int64) error {
		if !keep[d] {
			victims = append(victims, d)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	for _, d := range victims {
		if err := s.Delete(d); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if first == nil {
				first = fmt.Errorf("gc: %w", err)
			}
			continue
		}
		removed = append(removed, d)
	}

	ingest := filepath.Join(s.root, "ingest")
	ents, err := os.ReadDir(ingest)
	if err != nil && first == nil {
		first = fmt.Errorf("gc: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range ents {
		if s.active[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(ingest, e.Name())); err != nil && first == nil {
			first = fmt.Errorf("gc: remove stale ingest file: %w", err)
		}
	}
	return removed, first
}

// Ingest copies r into the store as blob desc.Digest.
//
// The data is written to a temporary file under <root>/ingest, its size
// (when desc.Size >= 0) and digest are checked against desc, it is fsync'd
// and renamed into place; on any failure the temporary file is removed and
// the error names the expected and actual digest or size. progress, if not
// nil, is called after each write with the number of bytes written so far.
// Cancelling ctx aborts the copy.
//
// A negative desc.Size means "unknown": only the digest is checked. Note
// that an OCI descriptor's zero Size means an empty blob.
//
// If the blob is already present Ingest returns nil without reading r at
// all; callers that must drain r (e.g. the next entry of a tar stream is
// behind it) have to do so themselves. If desc.Size >= 0 and the stored
// blob has a different size, that is reported as an error.
func (s *Store) Ingest(ctx context.Context, desc ocispec.Descriptor, r io.Reader, progress func(written int64)) error {
	p, err := s.blobPath(desc.Digest)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if st, err := os.Stat(p); err == nil {
		if desc.Size >= 0 && st.Size() != desc.Size {
			return fmt.Errorf("ingest %s: size mismatch: expected %d, stored blob has %d", desc.Digest, desc.Size, st.Size())
		}
		return nil
	}
	if _, _, err := s.write(ctx, r, desc.Digest.Algorithm(), desc.Size, p, desc.Digest, progress); err != nil {
		return fmt.Errorf("ingest %s: %w", desc.Digest, err)
	}
	return nil
}

// Put stores the content of r under its computed SHA-256 digest and
// returns the descriptor (without media type) of the stored blob. It is for
// content whose digest is not known in advance, such as the files of a
// legacy docker-archive; there is nothing to verify against.
func (s *Store) Put(ctx context.Context, r io.Reader) (ocispec.Descriptor, error) {
	d, n, err := s.write(ctx, r, digest.SHA256, -1, "", "", nil)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("put blob: %w", err)
	}
	return ocispec.Descriptor{Digest: d, Size: n}, nil
}

// write copies r into an ingest temp file, hashing with alg. If want is
// set the digest must match it and the file is renamed to dst; otherwise
// dst is derived from the computed digest. wantSize < 0 disables the size
// check (but never the digest check).
func (s *Store) write(ctx context.Context, r io.Reader, alg digest.Algorithm, wantSize int64, dst string, want digest.Digest, progress func(int64)) (digest.Digest, int64, error) {
	if !alg.Available() {
		return "", 0, fmt.Errorf("digest algorithm %q unavailable", alg)
	}
	ingest := filepath.Join(s.root, "ingest")
	tmp, err := os.CreateTemp(ingest, ingestPrefix+"*")
	if err != nil {
		return "", 0, err
	}
	name := filepath.Base(tmp.Name())
	s.mu.Lock()
	s.active[name] = true
	s.mu.Unlock()
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
		s.mu.Lock()
		delete(s.active, name)
		s.mu.Unlock()
	}()

	dgst := alg.Digester()
	src := r
	if wantSize >= 0 {
		// One byte more than expected is enough to tell "too long".
		src = io.LimitReader(r, wantSize+1)
	}
	w := io.MultiWriter(tmp, dgst.Hash())
	buf := make([]byte, 128<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", n, err
		}
		m, rerr := src.Read(buf)
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				return "", n, err
			}
			n += int64(m)
			if progress != nil {
				progress(n)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", n, fmt.Errorf("read content: %w", rerr)
		}
	}
	if wantSize >= 0 && n != wantSize {
		if n > wantSize {
			return "", n, fmt.Errorf("size mismatch: expected %d bytes, got more", wantSize)
		}
		return "", n, fmt.Errorf("size mismatch: expected %d bytes, got %d", wantSize, n)
	}
	got := dgst.Digest()
	if want != "" && got != want {
		return "", n, fmt.Errorf("digest mismatch: expected %s, got %s", want, got)
	}
	if dst == "" {
		dst = filepath.Join(s.root, "blobs", got.Algorithm().String(), got.Encoded())
	}
	if err := tmp.Sync(); err != nil {
		return "", n, err
	}
	if err := tmp.Close(); err != nil {
		return "", n, err
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", n, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", n, err
	}
	done = true
	if err := syncDir(dir); err != nil {
		return "", n, err
	}
	return got, n, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
