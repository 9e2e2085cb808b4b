// Package terminal creates a container's pseudo-terminal and passes its
// master end over a console socket, exactly as runc does: one SCM_RIGHTS fd
// with the pty's name as the payload. It also holds the host side used when
// xrunc itself drives the terminal (foreground run/exec -t).
//
// Internal to xstack; no API stability.
package terminal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

const devptsMagic = 0x1cd1

// Open creates a new pty in the container's devpts (the caller has already
// switched root). The slave comes from TIOCGPTPEER, never from a path the
// image could have swapped.
func Open() (master, slave *os.File, err error) {
	how := unix.OpenHow{Flags: unix.O_RDWR | unix.O_NOCTTY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_IN_ROOT}
	fd, err := unix.Openat2(unix.AT_FDCWD, "/dev/pts/ptmx", &how)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/pts/ptmx (is devpts mounted at /dev/pts?): %w", err)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil || sfs.Type != devptsMagic {
		unix.Close(fd)
		return nil, nil, errors.New("/dev/pts/ptmx is not on a devpts filesystem")
	}
	master = os.NewFile(uintptr(fd), "/dev/pts/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	// TIOCGPTPEER takes the slave's open flags as its argument.
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		master.Close()
		return nil, nil, fmt.Errorf("open pty slave: %w", errno)
	}
	sfd := int(r)
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		unix.Close(sfd)
		return nil, nil, fmt.Errorf("get pty number: %w", err)
	}
	return master, os.NewFile(uintptr(sfd), "/dev/pts/"+strconv.Itoa(int(n))), nil
}

// MakeControlling makes slave the calling process's stdio and controlling
// terminal. The caller must be a session leader (setsid).
func MakeControlling(slave *os.File) error {
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(int(slave.Fd()), fd, 0); err != nil {
			return fmt.Errorf("dup pty slave to fd %d: %w", fd, err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	return nil
}

// SetSize sets the terminal window size.
func SetSize(f *os.File, rows, cols uint16) error {
	ws := &unix.Winsize{Row: rows, Col: cols}
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		return fmt.Errorf("set window size: %w", err)
	}
	return nil
}

// SendMaster sends the master over a connected unix socket.
func SendMaster(sock *os.File, master *os.File) error {
	name := []byte(master.Name())
	if len(name) == 0 {
		name = []byte("/dev/ptmx")
	}
	if err := unix.Sendmsg(int(sock.Fd()), name, unix.UnixRights(int(master.Fd())), nil, 0); err != nil {
		return fmt.Errorf("send pty master over the console socket: %w", err)
	}
	return nil
}

// RecvMaster receives one pty master from a connected unix socket.
func RecvMaster(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receive pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive pty master: expected one control message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive pty master: expected one fd")
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

// State is a saved host terminal mode.
type State struct {
	fd      int
	termios unix.Termios
}

// MakeRaw puts the terminal on fd in raw mode and returns the previous
// state, or nil if fd is not a terminal.
func MakeRaw(fd int) (*State, error) {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, nil
	}
	old := &State{fd: fd, termios: *t}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return nil, fmt.Errorf("set raw mode: %w", err)
	}
	return old, nil
}

// Restore puts the terminal back.
func (s *State) Restore() {
	if s != nil {
		_ = unix.IoctlSetTermios(s.fd, unix.TCSETS, &s.termios)
	}
}

// CopyWinsize copies the window size of the terminal on fd to dst.
func CopyWinsize(fd int, dst *os.File) {
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	_ = unix.IoctlSetWinsize(int(dst.Fd()), unix.TIOCSWINSZ, ws)
}

// Pump copies stdin to the master and the master to stdout until the
// container side hangs up. It returns once output is drained.
func Pump(master *os.File, stdin io.Reader, stdout io.Writer) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(stdout, master)
	}()
	if stdin != nil {
		go func() { _, _ = io.Copy(master, stdin) }()
	}
	return wg.Wait
}
