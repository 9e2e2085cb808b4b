package taskio

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

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

// followPoll is how often a follower looks for more of the log.
var followPoll = 100 * time.Millisecond

// ReadLog sends the entries of the log at path, its rotated files first,
// to fn. With opts.Follow it keeps reading what is appended, across
// rotations, until ended is closed and the log is read to its end, or ctx
// is done. A missing log has no entries.
func ReadLog(ctx context.Context, path string, opts ReadOptions, ended <-chan struct{}, fn func(Entry) error) error {
	older, cur, err := openLogFiles(path)
	if err != nil {
		return err
	}
	defer func() {
		closeFiles(older)
		if cur != nil {
			cur.f.Close()
		}
	}()
	if cur == nil && len(older) == 0 {
		return nil
	}
	// Until the first end of the file being written, the entries are the
	// backlog: with a tail they wait in it until the last lines are known.
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
	for _, r := range older {
		if err := r.sendAll(send); err != nil {
			return err
		}
	}
	if cur == nil {
		// Caught between a rotation and the new file: what comes next
		// comes after the last file read.
		cur, older = older[len(older)-1], older[:len(older)-1]
	}
	follow, last := opts.Follow, false
	for {
		if err := cur.sendAll(send); err != nil {
			return err
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
		newer, err := filesAfter(path, cur)
		if err != nil {
			return err
		}
		if len(newer) > 0 {
			// The file read was rotated: what was written to it since the
			// pass above, then the files after it up to the one being
			// written, read from the top of the loop.
			done := append([]*logFile{cur}, newer[:len(newer)-1]...)
			cur = newer[len(newer)-1]
			for i, r := range done {
				err := r.sendAll(send)
				r.f.Close()
				if err != nil {
					closeFiles(done[i+1:])
					return err
				}
			}
			continue
		}
		if last {
			return nil
		}
		select {
		case <-ended:
			// One more pass: what was written before the end is in the log.
			last = true
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followPoll):
		}
	}
}

// logFile reads a log's lines.
type logFile struct {
	f       *os.File
	r       *bufio.Reader
	partial []byte // of a line not ended yet
}

func newLogFile(f *os.File) *logFile {
	return &logFile{f: f, r: bufio.NewReader(f)}
}

// sendAll sends the entries of the whole lines up to the end of the file.
func (l *logFile) sendAll(send func(Entry) error) error {
	for {
		line, err := l.r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = append(l.partial, line...)
			l.partial = nil
			var ll logLine
			if jerr := json.Unmarshal(line, &ll); jerr != nil {
				return fmt.Errorf("log %s: corrupt line: %w", l.f.Name(), jerr)
			}
			if err := send(Entry{Stream: ll.Stream, Time: ll.Time, Data: ll.Data}); err != nil {
				return err
			}
			continue
		}
		l.partial = append(l.partial, line...)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log %s: %w", l.f.Name(), err)
		}
	}
}

// openLogFiles opens the files of the log at path: the rotated ones, the
// oldest first, and the one being written (nil if there is none). That
// one is opened first: if it is rotated before the others are listed, it
// is met again among them, where the list ends.
func openLogFiles(path string) (older []*logFile, cur *logFile, err error) {
	f, err := os.Open(path)
	switch {
	case err == nil:
		cur = newLogFile(f)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("open log: %w", err)
	}
	curID := [2]uint64{}
	if cur != nil {
		curID, _ = fileID(cur.f)
	}
	names, err := rotatedFiles(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		if cur != nil {
			cur.f.Close()
		}
		return nil, nil, fmt.Errorf("log: %w", err)
	}
	for _, name := range names {
		f, err := os.Open(name.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // the oldest, removed meanwhile
		}
		if err != nil {
			closeFiles(older)
			if cur != nil {
				cur.f.Close()
			}
			return nil, nil, fmt.Errorf("open log: %w", err)
		}
		if id, ok := fileID(f); ok && cur != nil && id == curID {
			// Rotated since it was opened; the ones after it are newer
			// still, for a follower to find.
			f.Close()
			break
		}
		older = append(older, newLogFile(f))
	}
	return older, cur, nil
}

// filesAfter opens the files of the log at path written after cur, the
// oldest first; none while cur is the file being written.
func filesAfter(path string, cur *logFile) ([]*logFile, error) {
	// The cheap look first: is cur still the file at path?
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // between a rotation and the new file
	}
	if err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	was, _ := fileID(cur.f)
	if was == idOf(st) {
		return nil, nil
	}
	older, now, err := openLogFiles(path)
	if err != nil {
		return nil, err
	}
	all := older
	if now != nil {
		all = append(all, now)
	}
	for i, r := range all {
		if id, ok := fileID(r.f); ok && id == was {
			closeFiles(all[:i+1])
			return all[i+1:], nil
		}
	}
	// cur was rotated out of the log altogether: all of it is newer.
	return all, nil
}

func closeFiles(files []*logFile) {
	for _, r := range files {
		r.f.Close()
	}
}

// fileID is the device and inode of f.
func fileID(f *os.File) ([2]uint64, bool) {
	st, err := f.Stat()
	if err != nil {
		return [2]uint64{}, false
	}
	return idOf(st), true
}

func idOf(st fs.FileInfo) [2]uint64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return [2]uint64{sys.Dev, sys.Ino}
	}
	return [2]uint64{}
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
