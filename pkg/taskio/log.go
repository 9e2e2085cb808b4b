package taskio

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
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

// logWriter appends whole lines only: a line cut short (a full disk, xd
// killed in the middle of a write) would make every later read of the log
// fail, so it is cut off again.
type logWriter struct {
	mu   sync.Mutex
	f    *os.File
	path string
	size int64 // of the whole lines in the file
	log  *slog.Logger
	// dropped counts the chunks lost since writing started failing.
	dropped int
}

func openLog(path string, log *slog.Logger) (*logWriter, error) {
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
	return &logWriter{f: f, path: path, size: size, log: log}, nil
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
	if l.f == nil {
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
	if l.dropped == 0 {
		l.log.Warn("container log: write failed, dropping output until it works again", "path", l.path, "err", err)
	}
	l.dropped++
}

func (l *logWriter) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// EveryLine as ReadOptions.Tail sends the whole log.
const EveryLine = -1

// ReadOptions choose what ReadLog sends.
type ReadOptions struct {
	// Follow keeps sending what is appended until ended is closed.
	Follow bool
	// Tail is how many of the last lines already in the log to send (a
	// last line without its newline counts), or EveryLine; what is
	// appended later is all sent.
	Tail int
	// Since leaves out the entries written before it.
	Since time.Time
}

// ReadLog sends the entries of the log at path to fn. With opts.Follow it
// keeps reading what is appended until ended is closed and the file is
// read to its end, or ctx is done. A missing log has no entries.
func ReadLog(ctx context.Context, path string, opts ReadOptions, ended <-chan struct{}, fn func(Entry) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	follow := opts.Follow
	// Until the first end of file, the entries are the backlog: with a
	// tail they wait in it until the last lines are known.
	var backlog *tail
	if opts.Tail >= 0 {
		backlog = &tail{lines: opts.Tail}
	}
	send := func(e Entry) error {
		if e.Time.Before(opts.Since) {
			return nil
		}
		if backlog != nil {
			backlog.add(e)
			return nil
		}
		return fn(e)
	}
	r := bufio.NewReader(f)
	var partial []byte
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = append(partial, line...)
			partial = nil
			var l logLine
			if jerr := json.Unmarshal(line, &l); jerr != nil {
				return fmt.Errorf("log %s: corrupt line: %w", path, jerr)
			}
			if err := send(Entry{Stream: l.Stream, Time: l.Time, Data: l.Data}); err != nil {
				return err
			}
			continue
		}
		partial = append(partial, line...)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read log: %w", err)
		}
		if backlog != nil {
			for _, e := range backlog.entries() {
				if err := fn(e); err != nil {
					return err
				}
			}
			backlog = nil
		}
		if !follow {
			return nil
		}
		select {
		case <-ended:
			// One more pass: what was written before the end is in the file.
			follow = false
			continue
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tail keeps the last lines of the entries it is given. A line is one
// stream's: the streams' chunks interleave, so each entry is kept as
// pieces of at most one line each, knowing whether a piece starts its line.
type tail struct {
	lines  int
	pieces []piece
	starts int // pieces that start a line
	// midLine: the streams whose last piece did not end its line.
	midLine map[string]bool
}

type piece struct {
	Entry
	start bool
}

func (t *tail) add(e Entry) {
	if t.lines == 0 {
		return
	}
	if t.midLine == nil {
		t.midLine = map[string]bool{}
	}
	for data := e.Data; len(data) > 0; {
		n := bytes.IndexByte(data, '\n') + 1
		if n == 0 {
			n = len(data)
		}
		p := piece{Entry: Entry{Stream: e.Stream, Time: e.Time, Data: data[:n]}, start: !t.midLine[e.Stream]}
		t.midLine[e.Stream] = data[n-1] != '\n'
		data = data[n:]
		t.pieces = append(t.pieces, p)
		if p.start {
			t.starts++
		}
		// What comes before the first of the last lines goes.
		for t.starts-b2i(t.pieces[0].start) >= t.lines {
			t.starts -= b2i(t.pieces[0].start)
			t.pieces = t.pieces[1:]
		}
	}
}

// entries returns the pieces of the last lines, without those that end a
// line begun before them.
func (t *tail) entries() []Entry {
	out := make([]Entry, 0, len(t.pieces))
	begun := map[string]bool{}
	for _, p := range t.pieces {
		if p.start {
			begun[p.Stream] = true
		}
		if begun[p.Stream] {
			out = append(out, p.Entry)
		}
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
