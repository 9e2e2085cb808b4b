package shimmgr

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lineRecorder is a slog handler keeping the "line" of every record.
type lineRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (h *lineRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *lineRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *lineRecorder) WithGroup(string) slog.Handler            { return h }
func (h *lineRecorder) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "line" {
			h.mu.Lock()
			h.lines = append(h.lines, a.Value.String())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func TestLogDrain(t *testing.T) {
	long := strings.Repeat("y", maxLogLine+5)
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{name: "lines", writes: []string{"one\ntwo\n"}, want: []string{"one", "two"}},
		{name: "line split across writes", writes: []string{"par", "tial\nnext\n"}, want: []string{"partial", "next"}},
		{name: "crlf and empty lines", writes: []string{"a\r\n\n\nb\n"}, want: []string{"a", "b"}},
		{name: "unfinished line at close", writes: []string{"done\nhalf"}, want: []string{"done", "half"}},
		{name: "long line split", writes: []string{long + "\n"}, want: []string{long[:maxLogLine], "yyyyy"}},
		{name: "long line split across writes", writes: []string{long[:100], long[100:] + "\nz\n"}, want: []string{long[:maxLogLine], "yyyyy", "z"}},
		{name: "two parts, unfinished", writes: []string{long + long}, want: []string{long[:maxLogLine], long[:maxLogLine], strings.Repeat("y", 10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			if err := unix.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_RDWR|unix.O_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			w, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			rec := &lineRecorder{}
			r := &logReader{f: f, done: make(chan struct{})}
			go r.drain(slog.New(rec))
			for _, s := range tt.writes {
				if _, err := w.WriteString(s); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			// The reader holds the FIFO open read-write: it never sees EOF,
			// only its own close. Close once the written bytes were read.
			waitDrained(t, f)
			r.stop()
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if !slices.Equal(rec.lines, tt.want) {
				t.Errorf("logged %q, want %q", rec.lines, tt.want)
			}
		})
	}
}

// waitDrained waits until nothing is left to read in the FIFO f.
func waitDrained(t *testing.T, f *os.File) {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		avail := -1
		if err := rc.Control(func(fd uintptr) {
			avail, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ)
		}); err != nil {
			t.Fatal(err)
		}
		if avail == 0 {
			return
		}
	}
	t.Fatal("the log FIFO was not drained in 5s")
}
