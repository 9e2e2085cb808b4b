package taskio

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

type logWriter struct {
	mu sync.Mutex
	f  *os.File
}

func openLog(path string) (*logWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return &logWriter{f: f}, nil
}

func (l *logWriter) write(stream string, data []byte) {
	line, err := json.Marshal(logLine{Stream: stream, Time: time.Now().UTC(), Data: data})
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Write(append(line, '\n'))
	}
}

func (l *logWriter) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// ReadLog sends every entry of the log at path to fn. With follow it keeps
// reading what is appended until ended is closed and the file is read to its
// end, or ctx is done. A missing log has no entries.
func ReadLog(ctx context.Context, path string, follow bool, ended <-chan struct{}, fn func(Entry) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
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
			if err := fn(Entry{Stream: l.Stream, Time: l.Time, Data: l.Data}); err != nil {
				return err
			}
			continue
		}
		partial = append(partial, line...)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read log: %w", err)
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
