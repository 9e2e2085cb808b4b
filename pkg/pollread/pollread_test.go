package pollread

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestNext(t *testing.T) {
	tests := []struct {
		name   string
		writes [][]byte
		want   []byte
	}{
		{name: "nothing", writes: nil, want: nil},
		{name: "one write", writes: [][]byte{[]byte("hello\n")}, want: []byte("hello\n")},
		{name: "several writes", writes: [][]byte{[]byte("a"), []byte("bc"), []byte("def\n")}, want: []byte("abcdef\n")},
		{name: "more than a chunk", writes: [][]byte{bytes.Repeat([]byte("x"), 3*chunkSize+17)}, want: bytes.Repeat([]byte("x"), 3*chunkSize+17)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			r, err := New(pr)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				for _, w := range tt.writes {
					pw.Write(w)
					time.Sleep(time.Millisecond)
				}
				pw.Close()
			}()
			var got []byte
			for {
				chunk, err := r.Next()
				if len(chunk) > chunkSize {
					t.Fatalf("chunk of %d bytes, more than %d", len(chunk), chunkSize)
				}
				if cap(chunk) > 2*len(chunk)+64 {
					t.Errorf("chunk of %d bytes keeps a %d-byte array", len(chunk), cap(chunk))
				}
				got = append(got, chunk...)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("read %d bytes %q, want %d bytes", len(got), got[:min(len(got), 32)], len(tt.want))
			}
		})
	}
}

// A FIFO opened non-blocking before any writer: Next waits for data (no
// early EOF while the FIFO has never had a writer is the caller's business,
// but data written later must arrive), and Close ends a waiting Next.
func TestFIFOAndClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	go func() {
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte("late"))
	}()
	chunk, err := r.Next()
	if err != nil || string(chunk) != "late" {
		t.Fatalf("Next = %q, %v; want \"late\"", chunk, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Next()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	f.Close()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, io.EOF) {
			t.Errorf("Next after Close = %v, want the poller's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next still waiting 5s after Close")
	}
}
