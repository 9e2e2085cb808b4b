package shimmgr

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/pollread"
)

// maxLogLine is the longest shim log line logged in one record; longer
// lines are split.
const maxLogLine = 16 << 10

// logReader drains a shim's log FIFO into a logger.
type logReader struct {
	f    *os.File
	done chan struct{}
}

// openLog makes the bundle's log FIFO if needed and starts draining it,
// replacing the reader the Manager had for the container.
func (m *Manager) openLog(ns, id, bundle string) (*logReader, error) {
	path := filepath.Join(bundle, logFile)
	if err := unix.Mkfifo(path, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("mkfifo %s: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Type() != fs.ModeNamedPipe {
		return nil, fmt.Errorf("%s is not a FIFO", path)
	}
	// O_RDWR: the open never blocks and the reader never sees EOF when
	// the shim closes its end (it reopens it after a restart).
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r := &logReader{f: f, done: make(chan struct{})}
	go r.drain(m.logger().With("ns", ns, "id", id))

	key := ns + "/" + id
	m.mu.Lock()
	if m.logs == nil {
		m.logs = map[string]*logReader{}
	}
	old := m.logs[key]
	m.logs[key] = r
	m.mu.Unlock()
	if old != nil {
		old.stop()
	}
	return r, nil
}

// stopLog stops the container's log reader if it is r (any reader if r is
// nil).
func (m *Manager) stopLog(ns, id string, r *logReader) {
	key := ns + "/" + id
	m.mu.Lock()
	cur := m.logs[key]
	if cur == nil || (r != nil && cur != r) {
		m.mu.Unlock()
		return
	}
	delete(m.logs, key)
	m.mu.Unlock()
	cur.stop()
}

// drain logs each line until the FIFO is closed. The shim is silent most of
// its life: the wait holds no buffer, only an unfinished line if any.
func (r *logReader) drain(log *slog.Logger) {
	defer close(r.done)
	emit := func(line []byte) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		for len(line) > 0 {
			part := line[:min(len(line), maxLogLine)]
			log.Debug("shim log", "line", string(part))
			line = line[len(part):]
		}
	}
	src, err := pollread.New(r.f)
	var pending []byte
	for err == nil {
		var chunk []byte
		chunk, err = src.Next()
		pending = append(pending, chunk...)
		for {
			i := bytes.IndexByte(pending, '\n')
			if i < 0 {
				break
			}
			emit(pending[:i])
			pending = pending[i+1:]
		}
		// An unfinished line is logged in maxLogLine parts as it grows.
		if n := len(pending) / maxLogLine * maxLogLine; n > 0 {
			emit(pending[:n])
			pending = pending[n:]
		}
		// Keep the unfinished line, not the array the chunks came in.
		pending = append([]byte(nil), pending...)
	}
	emit(pending)
}

// stop closes the FIFO and waits for the drain to end.
func (r *logReader) stop() {
	r.f.Close()
	<-r.done
}
