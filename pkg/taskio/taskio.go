package taskio

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/pollread"
)

// Stream names, as stored in the log and sent to clients.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Config describes one process's stdio.
type Config struct {
	// Dir holds the FIFOs (created 0700 if missing).
	Dir string
	// Name prefixes the FIFO names: "init", or the exec id.
	Name string
	// Stdin asks for a stdin FIFO.
	Stdin bool
	// Terminal: the shim sends everything to stdout; no stderr FIFO.
	Terminal bool
	// LogPath, if set, receives every output chunk (see ReadLog),
	// rotated as LogRotation says.
	LogPath     string
	LogRotation Rotation
	// Log tells when the log at LogPath cannot be written (a full disk);
	// nil: nothing is said.
	Log *slog.Logger
}

// IO is xd's end of a process's stdio.
type IO struct {
	cfg   Config
	paths Paths
	log   *logWriter

	stdinMu sync.Mutex
	stdin   *os.File

	// hold are write ends xd keeps on the output FIFOs until the shim has
	// opened its own, so that the copiers don't read an early EOF.
	hold []*os.File

	mu      sync.Mutex
	subs    map[*Subscription]struct{}
	open    int // output streams not at EOF yet
	done    chan struct{}
	readers []*os.File
	copies  sync.WaitGroup
}

// Paths are the FIFO paths handed to the shim; empty for none.
type Paths struct {
	Stdin, Stdout, Stderr string
}

// Chunk is a piece of output.
type Chunk struct {
	Stream string
	Data   []byte
}

// Subscription receives a process's output from the moment it attached.
type Subscription struct {
	C    chan Chunk
	quit chan struct{}
	once sync.Once
}

// Close detaches; the copiers stop sending to it.
func (s *Subscription) Close() { s.once.Do(func() { close(s.quit) }) }

// Create makes the FIFOs for a new process and opens xd's ends.
func Create(cfg Config) (*IO, error) {
	return open(cfg, true)
}

// Reopen opens xd's ends of the FIFOs of a process that is already running
// (after an xd restart). Missing FIFOs mean the stream was never asked for.
func Reopen(cfg Config) (*IO, error) {
	return open(cfg, false)
}

func open(cfg Config, create bool) (_ *IO, err error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("stdio dir: %w", err)
	}
	p := &IO{cfg: cfg, subs: map[*Subscription]struct{}{}, done: make(chan struct{})}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if cfg.LogPath != "" {
		if p.log, err = openLog(cfg.LogPath, cfg.LogRotation, cfg.Log); err != nil {
			return nil, err
		}
	}
	fifo := func(stream string) (string, error) {
		path := filepath.Join(cfg.Dir, cfg.Name+"-"+stream)
		if create {
			if err := unix.Mkfifo(path, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
				return "", fmt.Errorf("mkfifo %s: %w", path, err)
			}
		} else if _, err := os.Stat(path); err != nil {
			return "", nil
		}
		return path, nil
	}
	if cfg.Stdin {
		if p.paths.Stdin, err = fifo("stdin"); err != nil {
			return nil, err
		}
		if p.paths.Stdin != "" {
			// O_RDWR never blocks and keeps the FIFO open for a shim that
			// opens it later; the container sees EOF once CloseStdin.
			if p.stdin, err = os.OpenFile(p.paths.Stdin, os.O_RDWR, 0); err != nil {
				return nil, fmt.Errorf("open stdin fifo: %w", err)
			}
		}
	}
	streams := []string{Stdout}
	if !cfg.Terminal {
		streams = append(streams, Stderr)
	}
	for _, stream := range streams {
		path, err := fifo(stream)
		if err != nil {
			return nil, err
		}
		if path == "" {
			continue
		}
		if stream == Stdout {
			p.paths.Stdout = path
		} else {
			p.paths.Stderr = path
		}
		// Non-blocking open succeeds without a writer; the poller then
		// gives reads that block until data or EOF.
		r, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s fifo: %w", stream, err)
		}
		p.readers = append(p.readers, r)
		if create {
			w, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0)
			if err != nil {
				return nil, fmt.Errorf("hold %s fifo: %w", stream, err)
			}
			p.hold = append(p.hold, w)
		}
	}
	p.open = len(p.readers)
	if p.open == 0 {
		close(p.done)
	}
	for i, r := range p.readers {
		stream := Stdout
		if i == 1 {
			stream = Stderr
		}
		p.copies.Add(1)
		go p.copy(stream, r)
	}
	return p, nil
}

// Paths returns the FIFO paths for the shim.
func (p *IO) Paths() Paths { return p.paths }

// Started drops xd's hold on the output FIFOs: the shim and the container
// have their own write ends now, and EOF will mean the output ended.
func (p *IO) Started() {
	p.mu.Lock()
	hold := p.hold
	p.hold = nil
	p.mu.Unlock()
	for _, f := range hold {
		f.Close()
	}
}

func (p *IO) copy(stream string, r *os.File) {
	defer p.copies.Done()
	// Most containers are quiet most of the time: wait without a buffer.
	src, err := pollread.New(r)
	for err == nil {
		var data []byte
		data, err = src.Next()
		if len(data) > 0 {
			if p.log != nil {
				p.log.write(stream, data)
			}
			p.fanout(Chunk{Stream: stream, Data: data})
		}
	}
	p.mu.Lock()
	p.open--
	if p.open == 0 {
		close(p.done)
		for s := range p.subs {
			close(s.C)
			delete(p.subs, s)
		}
	}
	p.mu.Unlock()
}

func (p *IO) fanout(c Chunk) {
	p.mu.Lock()
	subs := make([]*Subscription, 0, len(p.subs))
	for s := range p.subs {
		subs = append(subs, s)
	}
	p.mu.Unlock()
	// A slow client slows the container down (like a full pipe) but a
	// detached one never blocks it.
	for _, s := range subs {
		select {
		case s.C <- c:
		case <-s.quit:
			p.mu.Lock()
			delete(p.subs, s)
			p.mu.Unlock()
		}
	}
}

// Attach subscribes to the output from now on. The channel is closed when
// the output has ended (at once if it already has).
func (p *IO) Attach() *Subscription {
	s := &Subscription{C: make(chan Chunk, 64), quit: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		close(s.C)
	default:
		p.subs[s] = struct{}{}
	}
	return s
}

// Done is closed when every output stream reached EOF.
func (p *IO) Done() <-chan struct{} { return p.done }

// WriteStdin writes to the process's stdin.
func (p *IO) WriteStdin(b []byte) error {
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	if p.stdin == nil {
		return errors.New("process has no stdin (or it was closed)")
	}
	_, err := p.stdin.Write(b)
	return err
}

// CloseStdin closes xd's stdin writer; the process reads EOF once the shim
// closed its own (CloseIO).
func (p *IO) CloseStdin() {
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	if p.stdin != nil {
		p.stdin.Close()
		p.stdin = nil
	}
}

// Close releases everything xd holds; copiers still running are cut.
func (p *IO) Close() {
	p.Started()
	p.CloseStdin()
	for _, r := range p.readers {
		r.Close()
	}
	p.copies.Wait()
	if p.log != nil {
		p.log.close()
	}
}

// Remove deletes the FIFOs.
func (p *IO) Remove() {
	for _, path := range []string{p.paths.Stdin, p.paths.Stdout, p.paths.Stderr} {
		if path != "" {
			os.Remove(path)
		}
	}
}
