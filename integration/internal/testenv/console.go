package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ConsoleSocket is the receiving end of --console-socket: a unix socket
// that accepts one connection and receives one pty master over SCM_RIGHTS,
// as runc's recvtty does.
type ConsoleSocket struct {
	Path string
	l    *net.UnixListener
}

// NewConsoleSocket listens on a new unix socket in a short temp dir. It is
// closed at cleanup.
func NewConsoleSocket(t testing.TB) *ConsoleSocket {
	t.Helper()
	dir := TempDir(t, 0o700)
	p := filepath.Join(dir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &ConsoleSocket{Path: p, l: l}
}

// Receive accepts one connection and reads exactly one fd. It returns the
// fd as a file and the message payload (the name runc sends).
func (c *ConsoleSocket) Receive(timeout time.Duration) (*os.File, string, error) {
	if err := c.l.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, "", err
	}
	conn, err := c.l.AcceptUnix()
	if err != nil {
		return nil, "", fmt.Errorf("accept on console socket: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, "", err
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, "", fmt.Errorf("recvmsg on console socket: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, "", fmt.Errorf("parse control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		f, err := unix.ParseUnixRights(&m)
		if err != nil {
			return nil, "", err
		}
		fds = append(fds, f...)
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, "", fmt.Errorf("console socket: got %d fds, want exactly 1", len(fds))
	}
	name := string(bytes.TrimRight(buf[:n], "\x00"))
	return os.NewFile(uintptr(fds[0]), name), name, nil
}

// OpenPTY opens a new pty pair; the slave is opened without becoming a
// controlling terminal.
func OpenPTY() (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	sfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(mfd)
		return nil, nil, err
	}
	return os.NewFile(uintptr(mfd), "/dev/ptmx"), os.NewFile(uintptr(sfd), name), nil
}

// TermReader accumulates what is read from a pty master in the background
// so tests can wait for a string.
type TermReader struct {
	f    *os.File
	mu   chan struct{}
	buf  bytes.Buffer
	done chan struct{}
}

// NewTermReader starts reading f until EOF or error.
func NewTermReader(f *os.File) *TermReader {
	r := &TermReader{f: f, mu: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			if n > 0 {
				r.mu <- struct{}{}
				r.buf.Write(b[:n])
				<-r.mu
			}
			if err != nil {
				return
			}
		}
	}()
	return r
}

// String is everything read so far.
func (r *TermReader) String() string {
	r.mu <- struct{}{}
	defer func() { <-r.mu }()
	return r.buf.String()
}

// WaitFor waits until the output contains s.
func (r *TermReader) WaitFor(s string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		out := r.String()
		if strings.Contains(out, s) {
			return out, nil
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("terminal output %q does not contain %q after %v", out, s, timeout)
		}
		select {
		case <-r.done:
			out = r.String()
			if strings.Contains(out, s) {
				return out, nil
			}
			return out, fmt.Errorf("terminal closed; output %q does not contain %q", out, s)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Done is closed when the reader hit EOF or an error (terminal hung up).
func (r *TermReader) Done() <-chan struct{} { return r.done }
