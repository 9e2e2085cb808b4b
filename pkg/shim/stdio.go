package shim

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/ocicli"
	"github.com/xstack/xstack/pkg/runtime/terminal"
	"github.com/xstack/xstack/pkg/shim/reaper"
)

// stdioPaths are a process's stdio as the client gave them: FIFO paths,
// or a "file://" or "binary://" URI for stdout (then stderr goes there
// too), or empty for none.
type stdioPaths struct {
	Stdin, Stdout, Stderr string
	Terminal              bool
}

// processIO is the shim's side of a process's stdio.
//
// Without a terminal the container gets the client's FIFOs directly (no
// copying through the shim). The shim keeps a reader open on each output
// FIFO and a writer on the stdin FIFO, so that the container never gets
// EPIPE or a premature EOF while the client is away (restarting): data then
// waits in the FIFO, and the client reopens it by path when it is back.
// file:// gives the container the file itself; binary:// gives it pipes to
// a logger process. With a terminal the shim copies between the pty master
// and the FIFOs.
type processIO struct {
	// container are the fds handed to the runtime for the process; closed
	// once it has them.
	container ocicli.IO
	// keep are the shim's own keep-alive ends.
	keep []*os.File
	// stdinKeep is the shim's writer on the stdin FIFO (closed by CloseIO).
	stdinKeep *os.File

	logger *exec.Cmd // binary:// logger

	mu      sync.Mutex
	console *os.File // pty master, with a terminal
	copies  sync.WaitGroup
	stdinW  *os.File // terminal: the stdin FIFO reader copied into the master
}

// openIO prepares stdio for a new process.
func openIO(p stdioPaths, ns, id string, r *reaper.Reaper) (_ *processIO, err error) {
	pio := &processIO{}
	defer func() {
		if err != nil {
			pio.close()
		}
	}()
	if p.Terminal {
		// The runtime's own stdio stays /dev/null; the FIFOs are tied to
		// the pty master once it arrives (attachConsole).
		return pio, nil
	}
	if p.Stdin != "" {
		if err := pio.openStdin(p.Stdin); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(p.Stdout)
	if err != nil {
		return nil, fmt.Errorf("stdout %q: %w", p.Stdout, err)
	}
	switch u.Scheme {
	case "", "fifo":
		if pio.container.Stdout, err = pio.openOutput(p.Stdout); err != nil {
			return nil, err
		}
		if pio.container.Stderr, err = pio.openOutput(p.Stderr); err != nil {
			return nil, err
		}
	case "file":
		if err := pio.openFile(u.Path); err != nil {
			return nil, err
		}
	case "binary":
		if err := pio.startLogger(u, ns, id, r); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("stdout %q: unsupported scheme %q", p.Stdout, u.Scheme)
	}
	return pio, nil
}

// openStdin opens the stdin FIFO for the container (blocking reads) and a
// writer the shim keeps until CloseIO.
func (pio *processIO) openStdin(path string) error {
	r, err := os.OpenFile(path, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open stdin %s: %w", path, err)
	}
	if err := setBlocking(r); err != nil {
		r.Close()
		return err
	}
	w, err := os.OpenFile(path, unix.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		r.Close()
		return fmt.Errorf("open stdin %s: %w", path, err)
	}
	pio.container.Stdin, pio.stdinKeep = r, w
	return nil
}

// openOutput opens an output FIFO: a reader the shim keeps (so writes
// never fail with EPIPE) and the writer the container gets.
func (pio *processIO) openOutput(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	r, err := os.OpenFile(path, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	pio.keep = append(pio.keep, r)
	w, err := os.OpenFile(path, unix.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return w, nil
}

func (pio *processIO) openFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("log file %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("log file %s: %w", path, err)
	}
	pio.container.Stdout, pio.container.Stderr = f, f
	return nil
}

// loggerReadyTimeout is how long a binary:// logger has to report ready.
var loggerReadyTimeout = 10 * time.Second

// startLogger runs a binary:// logger as containerd does: fd 3 and 4 are
// the read ends of stdout and stderr, fd 5 a pipe it closes when ready,
// CONTAINER_ID and CONTAINER_NAMESPACE in its environment and the URI's
// query as arguments.
func (pio *processIO) startLogger(u *url.URL, ns, id string, r *reaper.Reaper) error {
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		for _, f := range []*os.File{outR, outW, errR, errW} {
			f.Close()
		}
		return err
	}
	defer readyR.Close()
	defer outR.Close()
	defer errR.Close()
	pio.container.Stdout, pio.container.Stderr = outW, errW
	var args []string
	for k, vs := range u.Query() {
		args = append(args, k)
		if len(vs) > 0 && vs[0] != "" {
			args = append(args, vs[0])
		}
	}
	cmd := exec.Command(u.Path, args...)
	cmd.Env = append(os.Environ(), "CONTAINER_ID="+id, "CONTAINER_NAMESPACE="+ns)
	cmd.ExtraFiles = []*os.File{outR, errR, readyW}
	wait, err := r.Start(cmd)
	// Our copy of the ready pipe's write end goes, so EOF means the
	// logger closed its own (ready), or exited.
	readyW.Close()
	if err != nil {
		outW.Close()
		errW.Close()
		pio.container.Stdout, pio.container.Stderr = nil, nil
		return fmt.Errorf("logger %s: %w", u.Path, err)
	}
	go func() { _, _ = wait() }()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, readyR)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(loggerReadyTimeout):
		// Nobody else knows of it yet: end it here (the reaper's wait
		// above collects it).
		_ = cmd.Process.Kill()
		return fmt.Errorf("logger %s did not report ready (close fd 5) within %v", u.Path, loggerReadyTimeout)
	}
	pio.logger = cmd
	return nil
}

// containerFilesHandedOver closes the shim's copies of the container's
// ends once the runtime has passed them on.
func (pio *processIO) containerFilesHandedOver() {
	seen := map[*os.File]bool{}
	for _, f := range []*os.File{pio.container.Stdin, pio.container.Stdout, pio.container.Stderr} {
		if f != nil && !seen[f] {
			seen[f] = true
			f.Close()
		}
	}
	pio.container = ocicli.IO{}
}

// attachConsole ties a received pty master to the client's FIFOs.
func (pio *processIO) attachConsole(master *os.File, p stdioPaths) error {
	pio.mu.Lock()
	pio.console = master
	pio.mu.Unlock()
	if p.Stdin != "" {
		in, err := os.OpenFile(p.Stdin, unix.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open stdin %s: %w", p.Stdin, err)
		}
		// A writer of our own keeps the FIFO from reporting EOF between
		// client connections; CloseIO drops it.
		w, err := os.OpenFile(p.Stdin, unix.O_WRONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			in.Close()
			return fmt.Errorf("open stdin %s: %w", p.Stdin, err)
		}
		pio.stdinKeep, pio.stdinW = w, in
		go func() { _, _ = io.Copy(master, in) }()
	}
	if p.Stdout != "" {
		r, err := os.OpenFile(p.Stdout, unix.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open stdout %s: %w", p.Stdout, err)
		}
		pio.keep = append(pio.keep, r)
		out, err := os.OpenFile(p.Stdout, unix.O_WRONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open stdout %s: %w", p.Stdout, err)
		}
		pio.keep = append(pio.keep, out)
		pio.copies.Add(1)
		go func() {
			defer pio.copies.Done()
			_, _ = io.Copy(out, master)
			// The terminal is gone (its last holder exited): the client
			// reads EOF, as from a process's own stdout.
			out.Close()
		}()
	}
	return nil
}

// resize sets the window size of the process's terminal.
func (pio *processIO) resize(width, height uint32) error {
	pio.mu.Lock()
	defer pio.mu.Unlock()
	if pio.console == nil {
		return errors.New("the process has no terminal")
	}
	return terminal.SetSize(pio.console, uint16(height), uint16(width))
}

// closeStdin gives the process EOF on stdin (once the client has closed
// its end too).
func (pio *processIO) closeStdin() {
	pio.mu.Lock()
	defer pio.mu.Unlock()
	if pio.stdinKeep != nil {
		pio.stdinKeep.Close()
		pio.stdinKeep = nil
	}
	if pio.stdinW != nil {
		// With a terminal the copy into the master stops; a ^D makes a
		// line discipline in canonical mode deliver EOF.
		pio.stdinW.Close()
		pio.stdinW = nil
		if pio.console != nil {
			_, _ = pio.console.Write([]byte{4})
		}
	}
}

// close releases everything; output still in flight through the terminal
// copy gets a moment to drain.
func (pio *processIO) close() {
	pio.containerFilesHandedOver()
	pio.closeStdin()
	pio.mu.Lock()
	console := pio.console
	pio.console = nil
	pio.mu.Unlock()
	if console != nil {
		done := make(chan struct{})
		go func() { pio.copies.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		console.Close()
	}
	for _, f := range pio.keep {
		f.Close()
	}
	pio.keep = nil
	if pio.logger != nil && pio.logger.Process != nil {
		_ = pio.logger.Process.Signal(unix.SIGTERM)
	}
}

func setBlocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}

// consoleSocket is a private unix socket the runtime sends a pty master to.
type consoleSocket struct {
	dir  string
	path string
	fd   int
}

func newConsoleSocket() (*consoleSocket, error) {
	dir, err := os.MkdirTemp("", "xshim-pty")
	if err != nil {
		return nil, err
	}
	cs := &consoleSocket{dir: dir, path: filepath.Join(dir, "pty.sock"), fd: -1}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cs.fd = fd
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: cs.path}); err != nil {
		cs.close()
		return nil, fmt.Errorf("console socket: %w", err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		cs.close()
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return cs, nil
}

// receive accepts the runtime's connection (it is queued by the time the
// runtime command returned) and takes the master.
func (cs *consoleSocket) receive() (*os.File, error) {
	if err := unix.SetNonblock(cs.fd, true); err != nil {
		return nil, err
	}
	conn, _, err := unix.Accept4(cs.fd, unix.SOCK_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("console socket: no connection from the runtime: %w", err)
	}
	f := os.NewFile(uintptr(conn), "console-conn")
	defer f.Close()
	if err := setBlocking(f); err != nil {
		return nil, err
	}
	master, err := terminal.RecvMaster(f)
	if err != nil {
		return nil, err
	}
	return pollable(master)
}

// pollable returns f as a file the Go runtime polls (non-blocking), so
// that copies through it do not each hold an OS thread.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, err
	}
	return os.NewFile(uintptr(dup), f.Name()), nil
}

func (cs *consoleSocket) close() {
	if cs.fd >= 0 {
		unix.Close(cs.fd)
		cs.fd = -1
	}
	os.RemoveAll(cs.dir)
}
