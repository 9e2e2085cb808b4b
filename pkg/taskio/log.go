package taskio

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Log lines are JSON, one per output chunk, appended: the data is base64
// ([]byte), so any bytes survive.
type logLine struct {
	Stream string    `json:"s"`
	Time   time.Time `json:"t"`
	Data   []byte    `json:"d"`
}

// Entry is one chunk read back from a log.
type Entry struct {
	Stream string
	Time   time.Time
	Data   []byte
}

// Rotation bounds a log. Past MaxSize bytes the file at PATH is renamed
// PATH.N, N one more than the last rotated file's, and a new one is
// begun; MaxFiles files are kept, the one being written included, the
// oldest removed. A zero MaxSize never rotates. A rotated file is renamed
// once and never again, so a reader listing them cannot catch the log in
// the middle of a rotation.
type Rotation struct {
	MaxSize  int64
	MaxFiles int
}

// rotatedFile is a rotated file of a log: its name and number.
type rotatedFile struct {
	path string
	n    int
}

// rotatedFiles lists the rotated files of the log at path, the oldest
// first.
func rotatedFiles(path string) ([]rotatedFile, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	prefix := filepath.Base(path) + "."
	var files []rotatedFile
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(suffix); err == nil && n > 0 && strconv.Itoa(n) == suffix {
			files = append(files, rotatedFile{path: filepath.Join(filepath.Dir(path), e.Name()), n: n})
		}
	}
	slices.SortFunc(files, func(a, b rotatedFile) int { return cmp.Compare(a.n, b.n) })
	return files, nil
}

// RemoveLog removes the log at path with its rotated files.
func RemoveLog(path string) error {
	files, err := rotatedFiles(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	errs := []error{err}
	for _, f := range append(files, rotatedFile{path: path}) {
		if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// logWriter appends whole lines only: a line cut short (a full disk, xd
// killed in the middle of a write) would make every later read of the log
// fail, so it is cut off again.
type logWriter struct {
	mu       sync.Mutex
	f        *os.File // nil once closed, or after a rotation that failed
	closed   bool
	path     string
	size     int64 // of the whole lines in the file
	rotation Rotation
	next     int // the number the next rotated file gets; 0: not known yet
	log      *slog.Logger
	// dropped counts the chunks lost since writing started failing.
	dropped int
}

func openLog(path string, rotation Rotation, log *slog.Logger) (*logWriter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	size, err := wholeLines(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("log %s: %w", path, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &logWriter{f: f, path: path, size: size, rotation: rotation, log: log}, nil
}

// wholeLines cuts off a last line without its newline, left by a writer
// that died in the middle of it, and returns the size that remains.
func wholeLines(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := st.Size()
	buf := make([]byte, 4096)
	for pos := end; pos > 0; {
		n := int64(len(buf))
		if pos < n {
			n = pos
		}
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			whole := pos + int64(i) + 1
			if whole == end {
				return end, nil
			}
			return whole, f.Truncate(whole)
		}
	}
	return 0, f.Truncate(0)
}

func (l *logWriter) write(stream string, data []byte) {
	l.writeAt(stream, data, time.Now().UTC())
}

func (l *logWriter) writeAt(stream string, data []byte, at time.Time) {
	line, err := json.Marshal(logLine{Stream: stream, Time: at, Data: data})
	if err != nil {
		return
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if err := l.makeRoom(int64(len(line))); err != nil {
		l.failed(err)
		return
	}
	n, err := l.f.Write(line)
	if err == nil {
		l.size += int64(n)
		if l.dropped > 0 {
			l.log.Info("container log: writing again", "path", l.path, "dropped_chunks", l.dropped)
			l.dropped = 0
		}
		return
	}
	if n > 0 {
		if terr := l.f.Truncate(l.size); terr != nil {
			err = fmt.Errorf("%w; and cutting off the part written: %w", err, terr)
		}
	}
	l.failed(err)
}

func (l *logWriter) failed(err error) {
	if l.dropped == 0 {
		l.log.Warn("container log: write failed, dropping output until it works again", "path", l.path, "err", err)
	}
	l.dropped++
}

// makeRoom rotates the log if a line of n bytes would take it past its
// size, and opens a file to write if a rotation failed to.
func (l *logWriter) makeRoom(n int64) error {
	if l.f != nil && (l.rotation.MaxSize <= 0 || l.size == 0 || l.size+n <= l.rotation.MaxSize) {
		return nil
	}
	if l.f != nil {
		l.f.Close()
		l.f = nil
		if err := l.rotate(); err != nil {
			return fmt.Errorf("rotate: %w", err)
		}
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	size, err := wholeLines(f)
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, size
	return nil
}

// rotate renames the log being written to the next number and removes
// the file that leaves the ones kept. Readers keep reading a file they
// have open whatever its name.
func (l *logWriter) rotate() error {
	keep := max(l.rotation.MaxFiles, 1)
	if l.next == 0 {
		// The first rotation of this writer: the log may have rotated
		// files of an earlier xd. Listed now, not when the log is opened:
		// all logs of a namespace share a directory, and xd opens them
		// all when it restarts.
		files, err := rotatedFiles(l.path)
		if err != nil {
			return err
		}
		l.next = 1
		if len(files) > 0 {
			l.next = files[len(files)-1].n + 1
		}
		// Fewer kept than before: the oldest go.
		for len(files) > keep-1 {
			os.Remove(files[0].path)
			files = files[1:]
		}
	}
	if keep == 1 {
		return os.Remove(l.path)
	}
	if err := os.Rename(l.path, rotatedPath(l.path, l.next)); err != nil {
		return err
	}
	l.next++
	if gone := l.next - keep; gone > 0 {
		if err := os.Remove(rotatedPath(l.path, gone)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func rotatedPath(path string, n int) string { return path + "." + strconv.Itoa(n) }

func (l *logWriter) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
