package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(filepath.Join(t.TempDir(), "content"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func descOf(b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
}

func ingestDirEmpty(t *testing.T, s *Store) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.Root(), "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("ingest dir not empty: %v", ents)
	}
}

func TestNewLayout(t *testing.T) {
	s := newStore(t)
	for _, d := range []string{"", "blobs", "blobs/sha256", "ingest"} {
		st, err := os.Stat(filepath.Join(s.Root(), d))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", d, st.Mode().Perm())
		}
	}
	if _, err := New(""); err == nil {
		t.Error("New(\"\") succeeded")
	}
}

func TestIngest(t *testing.T) {
	data := []byte("hello, blob")
	other := []byte("something else")
	tests := []struct {
		name    string
		desc    ocispec.Descriptor
		input   []byte
		wantErr []string // substrings; nil = success
	}{
		{"ok", descOf(data), data, nil},
		{"empty blob", descOf(nil), nil, nil},
		{"unknown size", ocispec.Descriptor{Digest: digest.FromBytes(data), Size: -1}, data, nil},
		{"digest mismatch", ocispec.Descriptor{Digest: digest.FromBytes(other), Size: int64(len(data))}, data,
			[]string{"digest mismatch", digest.FromBytes(other).String(), digest.FromBytes(data).String()}},
		{"too short", ocispec.Descriptor{Digest: digest.FromBytes(data), Size: 100}, data,
			[]string{"size mismatch", "expected 100", "got 11"}},
		{"too long", ocispec.Descriptor{Digest: digest.FromBytes(data), Size: 3}, data,
			[]string{"size mismatch", "expected 3"}},
		{"hostile digest", ocispec.Descriptor{Digest: "sha256:../../../etc/passwd", Size: 11}, data,
			[]string{"invalid digest"}},
		{"unknown algorithm", ocispec.Descriptor{Digest: "md5:d41d8cd98f00b204e9800998ecf8427e", Size: 11}, data,
			[]string{"invalid digest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			var last int64
			err := s.Ingest(context.Background(), tt.desc, bytes.NewReader(tt.input), func(n int64) { last = n })
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("Ingest succeeded, want error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				if s.Has(tt.desc.Digest) {
					t.Error("blob present after failed ingest")
				}
				ingestDirEmpty(t, s)
				return
			}
			if err != nil {
				t.Fatalf("Ingest: %v", err)
			}
			if last != int64(len(tt.input)) {
				t.Errorf("progress last = %d, want %d", last, len(tt.input))
			}
			got, err := s.ReadBlob(tt.desc.Digest, 1<<20)
			if err != nil || !bytes.Equal(got, tt.input) {
				t.Fatalf("ReadBlob = %q, %v", got, err)
			}
			ingestDirEmpty(t, s)
		})
	}
}

// failingReader returns some data and then an error, like a dropped connection.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n > 0 {
		m := copy(p, bytes.Repeat([]byte("x"), min(f.n, len(p))))
		f.n -= m
		return m, nil
	}
	return 0, errors.New("connection reset")
}

func TestIngestAtomic(t *testing.T) {
	s := newStore(t)
	want := bytes.Repeat([]byte("x"), 1000)
	d := descOf(want)
	// A reader failing half way leaves neither the blob nor a temp file.
	err := s.Ingest(context.Background(), d, &failingReader{n: 500}, nil)
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("err = %v", err)
	}
	if s.Has(d.Digest) {
		t.Fatal("partial blob visible")
	}
	ingestDirEmpty(t, s)

	// While the copy is running the blob is not visible under its name.
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- s.Ingest(context.Background(), d, pr, nil) }()
	if _, err := pw.Write(want[:600]); err != nil {
		t.Fatal(err)
	}
	if s.Has(d.Digest) {
		t.Fatal("blob visible before it is complete")
	}
	if _, err := s.GC(nil); err != nil { // must not remove the active temp file
		t.Fatal(err)
	}
	if _, err := pw.Write(want[600:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-errc; err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	if !s.Has(d.Digest) {
		t.Fatal("blob missing")
	}

	// Ingesting a present blob does not read r.
	if err := s.Ingest(context.Background(), d, &failingReader{}, nil); err != nil {
		t.Fatalf("re-ingest: %v", err)
	}
	// ... but a descriptor with the wrong size is still refused.
	bad := d
	bad.Size = 1
	if err := s.Ingest(context.Background(), bad, &failingReader{}, nil); err == nil {
		t.Fatal("re-ingest with wrong size succeeded")
	}
}

func TestIngestCancel(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := []byte("abc")
	if err := s.Ingest(ctx, descOf(data), bytes.NewReader(data), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	ingestDirEmpty(t, s)
}

func TestAccessors(t *testing.T) {
	s := newStore(t)
	data := []byte(`{"a":1}`)
	d := descOf(data)
	missing := digest.FromString("missing")
	if err := s.Ingest(context.Background(), d, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Size(d.Digest); err != nil || n != d.Size {
		t.Errorf("Size = %d, %v", n, err)
	}
	if _, err := s.Open(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) err = %v, want ErrNotExist", err)
	}
	if _, err := s.Size(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Size(missing) err = %v", err)
	}
	if _, err := s.ReadBlob(d.Digest, 3); err == nil || !strings.Contains(err.Error(), "exceeds limit") {
		t.Errorf("ReadBlob over max: %v", err)
	}
	// Corruption on disk is detected by ReadBlob.
	p := filepath.Join(s.Root(), "blobs", "sha256", d.Digest.Encoded())
	if err := os.WriteFile(p, []byte(`{"a":2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBlob(d.Digest, 100); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("ReadBlob corrupt: %v", err)
	}

	hostile := []digest.Digest{
		"sha256:../../../../etc/passwd",
		"sha256:" + digest.Digest(strings.Repeat("a", 63)+"/"),
		"../blobs/sha256/" + d.Digest,
		"",
		"sha256:" + digest.Digest(strings.ToUpper(d.Digest.Encoded())),
	}
	for _, h := range hostile {
		if s.Has(h) {
			t.Errorf("Has(%q) = true", h)
		}
		if _, err := s.Open(h); err == nil || !strings.Contains(err.Error(), "invalid digest") {
			t.Errorf("Open(%q) err = %v", h, err)
		}
		if err := s.Delete(h); err == nil {
			t.Errorf("Delete(%q) succeeded", h)
		}
		if _, err := s.ReadBlob(h, 10); err == nil {
			t.Errorf("ReadBlob(%q) succeeded", h)
		}
	}
	if err := s.Delete(d.Digest); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(d.Digest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second Delete err = %v", err)
	}
}

func TestPut(t *testing.T) {
	s := newStore(t)
	data := []byte("unknown digest content")
	desc, err := s.Put(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != digest.FromBytes(data) || desc.Size != int64(len(data)) {
		t.Fatalf("Put = %+v", desc)
	}
	if !s.Has(desc.Digest) {
		t.Fatal("blob missing after Put")
	}
}

func TestWalkAndGC(t *testing.T) {
	s := newStore(t)
	blobs := map[digest.Digest][]byte{}
	for _, c := range []string{"a", "bb", "ccc", "dddd"} {
		b := []byte(c)
		blobs[digest.FromBytes(b)] = b
		if err := s.Ingest(context.Background(), descOf(b), bytes.NewReader(b), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Stray files must not confuse Walk/GC.
	if err := os.WriteFile(filepath.Join(s.Root(), "blobs", "sha256", "not-a-digest"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A stale temp file from a crashed ingest.
	stale := filepath.Join(s.Root(), "ingest", "tmp-crashed")
	if err := os.WriteFile(stale, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := map[digest.Digest]int64{}
	if err := s.Walk(func(d digest.Digest, n int64) error { seen[d] = n; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(blobs) {
		t.Fatalf("Walk saw %d blobs, want %d", len(seen), len(blobs))
	}
	for d, b := range blobs {
		if seen[d] != int64(len(b)) {
			t.Errorf("Walk size %s = %d", d, seen[d])
		}
	}
	stop := errors.New("stop")
	if err := s.Walk(func(digest.Digest, int64) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Walk error not propagated: %v", err)
	}

	keepD := digest.FromString("a")
	removed, err := s.GC(map[digest.Digest]bool{keepD: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 3 {
		t.Errorf("GC removed %v, want 3 blobs", removed)
	}
	for d := range blobs {
		if got, want := s.Has(d), d == keepD; got != want {
			t.Errorf("after GC Has(%s) = %v, want %v", d, got, want)
		}
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale ingest file survived GC: %v", err)
	}
}
