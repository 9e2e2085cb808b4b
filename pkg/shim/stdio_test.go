package shim

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/terminal"
)

func mkfifo(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// openClient opens a FIFO end as a client (ctr, xd) does; closed at the
// end of the test.
func openClient(t *testing.T, path string, flag int) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, flag|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatalf("client open %s: %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// readWithin reads from a pollable f until want is complete or d passed.
func readWithin(t *testing.T, f *os.File, want string, d time.Duration) string {
	t.Helper()
	if err := f.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatalf("%s is not pollable: %v", f.Name(), err)
	}
	defer f.SetReadDeadline(time.Time{})
	var got []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(got), want) {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read %q from %s, want %q", got, f.Name(), want)
			}
			if err == io.EOF {
				t.Fatalf("EOF after %q from %s, want %q", got, f.Name(), want)
			}
			// EAGAIN on a FIFO with no writer yet reads as 0, nil.
		}
	}
	return string(got)
}

// readBlocking reads once from a blocking f, with a timeout.
func readBlocking(t *testing.T, f *os.File, d time.Duration) (string, error) {
	t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		buf := make([]byte, 4096)
		n, err := f.Read(buf)
		ch <- res{string(buf[:n]), err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(d):
		t.Fatalf("read from %s blocked for %v", f.Name(), d)
	}
	return "", nil
}

func TestOpenIOFifos(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in, out, errp := mkfifo(t, dir, "stdin"), mkfifo(t, dir, "stdout"), mkfifo(t, dir, "stderr")
	// The client has its readers open before Create.
	clientOut := openClient(t, out, os.O_RDONLY)
	clientErr := openClient(t, errp, os.O_RDONLY)

	done := make(chan struct{})
	var pio *processIO
	var err error
	go func() {
		pio, err = openIO(stdioPaths{Stdin: in, Stdout: out, Stderr: errp}, "ns", "c1", nil)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("openIO blocked")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer pio.close()
	c := pio.container
	if c.Stdin == nil || c.Stdout == nil || c.Stderr == nil {
		t.Fatalf("container stdio %+v: want all three", c)
	}

	// stdout and stderr reach the client.
	if _, err := c.Stdout.Write([]byte("to stdout\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stderr.Write([]byte("to stderr\n")); err != nil {
		t.Fatal(err)
	}
	readWithin(t, clientOut, "to stdout\n", 20*time.Second)
	readWithin(t, clientErr, "to stderr\n", 20*time.Second)

	// The client goes away: the container's writes still succeed (no
	// EPIPE), and wait in the FIFO for the client's return.
	clientOut.Close()
	if _, err := c.Stdout.Write([]byte("while away\n")); err != nil {
		t.Fatalf("write with the client away: %v", err)
	}
	back := openClient(t, out, os.O_RDONLY)
	readWithin(t, back, "while away\n", 20*time.Second)

	// stdin: the client writes, the container reads.
	clientIn := openClient(t, in, os.O_WRONLY)
	if _, err := clientIn.Write([]byte("input\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := readBlocking(t, c.Stdin, 20*time.Second); err != nil || got != "input\n" {
		t.Fatalf("container read %q, %v", got, err)
	}
	// The client closing its end is no EOF while the shim keeps its
	// writer: the container must not see EOF between client connections.
	clientIn.Close()
	eof := make(chan error, 1)
	go func() {
		buf := make([]byte, 16)
		_, err := c.Stdin.Read(buf)
		eof <- err
	}()
	select {
	case err := <-eof:
		t.Fatalf("the container's stdin ended (%v) when the client closed its end", err)
	case <-time.After(100 * time.Millisecond):
	}
	// CloseIO: now EOF.
	pio.closeStdin()
	select {
	case err := <-eof:
		if err != io.EOF {
			t.Fatalf("stdin read after closeStdin: %v, want EOF", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no EOF on stdin after closeStdin")
	}
	pio.closeStdin() // twice is fine

	// Once the runtime has them, the shim's copies go.
	pio.containerFilesHandedOver()
	if pio.container.Stdin != nil || pio.container.Stdout != nil || pio.container.Stderr != nil {
		t.Error("container files still held after the hand-over")
	}
}

func TestOpenIOFifoWithoutClient(t *testing.T) {
	t.Parallel()
	// Nobody reads stdout yet: openIO must not block (its own reader keeps
	// the FIFO open), and output waits for the client.
	dir := t.TempDir()
	out := mkfifo(t, dir, "stdout")
	pio, err := openIO(stdioPaths{Stdout: out}, "ns", "c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pio.close()
	if pio.container.Stdin != nil || pio.container.Stderr != nil {
		t.Errorf("stdio %+v: want only stdout", pio.container)
	}
	if _, err := pio.container.Stdout.Write([]byte("early\n")); err != nil {
		t.Fatal(err)
	}
	client := openClient(t, out, os.O_RDONLY)
	readWithin(t, client, "early\n", 20*time.Second)
}

func TestOpenIOEmpty(t *testing.T) {
	t.Parallel()
	for _, p := range []stdioPaths{{}, {Terminal: true}, {Terminal: true, Stdin: "/nonexistent/in", Stdout: "/nonexistent/out"}} {
		pio, err := openIO(p, "ns", "c1", nil)
		if err != nil {
			t.Fatalf("openIO(%+v): %v", p, err)
		}
		if pio.container.Stdin != nil || pio.container.Stdout != nil || pio.container.Stderr != nil {
			t.Errorf("openIO(%+v) gave the container %+v", p, pio.container)
		}
		pio.close()
	}
}

func TestOpenIOFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "deep", "c1.log")
	for _, uri := range []string{"file://" + path, "file://" + path} { // twice: appends
		pio, err := openIO(stdioPaths{Stdout: uri, Stderr: "ignored"}, "ns", "c1", nil)
		if err != nil {
			t.Fatal(err)
		}
		c := pio.container
		if c.Stdout == nil || c.Stdout != c.Stderr {
			t.Fatalf("stdout %v and stderr %v: want the same file", c.Stdout, c.Stderr)
		}
		if _, err := c.Stdout.Write([]byte("out\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Stderr.Write([]byte("err\n")); err != nil {
			t.Fatal(err)
		}
		pio.containerFilesHandedOver()
		pio.close()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "out\nerr\nout\nerr\n" {
		t.Errorf("log file %q", b)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm()&0o007 != 0 {
		t.Errorf("log file mode %v is open to others", st.Mode().Perm())
	}
}

func TestOpenIOFileWithStdin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := mkfifo(t, dir, "stdin")
	pio, err := openIO(stdioPaths{Stdin: in, Stdout: "file://" + filepath.Join(dir, "log")}, "ns", "c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pio.close()
	if pio.container.Stdin == nil || pio.container.Stdout == nil {
		t.Errorf("stdio %+v: want stdin and the log file", pio.container)
	}
}

func TestOpenIOErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stdout string
		want   string // in the error
	}{
		{"unsupported scheme", "tcp://127.0.0.1:1/x", "unsupported scheme"},
		{"http", "http://example.com/log", "unsupported scheme"},
		{"unparsable URI", "fifo://%zz", ""},
		{"missing FIFO", "/nonexistent/dir/stdout", "/nonexistent/dir/stdout"},
		{"file under a file", "file:///dev/null/x/log", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			in := mkfifo(t, dir, "stdin")
			pio, err := openIO(stdioPaths{Stdin: in, Stdout: tt.stdout}, "ns", "c1", nil)
			if err == nil {
				pio.close()
				t.Fatalf("openIO(%q) succeeded", tt.stdout)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			// What was opened before the failure is closed again: with no
			// reader left on the stdin FIFO a writer cannot open it.
			if f, err := os.OpenFile(in, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
				f.Close()
				t.Error("the stdin FIFO is still open for reading after a failed openIO")
			} else if !errors.Is(err, unix.ENXIO) {
				t.Errorf("opening stdin for writing: %v, want ENXIO", err)
			}
		})
	}
}

func TestOpenIOMissingStdin(t *testing.T) {
	t.Parallel()
	if _, err := openIO(stdioPaths{Stdin: "/nonexistent/stdin"}, "ns", "c1", nil); err == nil {
		t.Fatal("openIO with a missing stdin FIFO succeeded")
	}
}

// openPty opens a pty pair through /dev/ptmx. The master gets the slave's
// name, as runc's does (the payload of the console socket message).
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("skipped: cannot open /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(fd)
		t.Fatalf("ptsname: %v", err)
	}
	name := "/dev/pts/" + strconv.Itoa(int(n))
	sfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		t.Skipf("skipped: cannot open the pty slave %s: %v", name, err)
	}
	master, slave = os.NewFile(uintptr(fd), name), os.NewFile(uintptr(sfd), name)
	t.Cleanup(func() {
		master.Close()
		slave.Close()
	})
	return master, slave
}

func fileFlags(t *testing.T, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil {
		t.Fatal(err)
	}
	if ferr != nil {
		t.Fatal(ferr)
	}
	return flags
}

// sendMaster connects to the console socket as the runtime does and sends
// master over it.
func sendMaster(t *testing.T, path string, master *os.File) {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := terminal.SendMaster(f, master); err != nil {
		t.Fatal(err)
	}
}

func TestConsoleSocket(t *testing.T) {
	t.Parallel()
	master, slave := openPty(t)
	cs, err := newConsoleSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.close()
	st, err := os.Stat(cs.path)
	if err != nil || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("console socket %s: %v, %v", cs.path, st, err)
	}
	if dst, err := os.Stat(cs.dir); err != nil || dst.Mode().Perm()&0o077 != 0 {
		t.Errorf("console socket dir %s: %v, %v: want private", cs.dir, dst, err)
	}
	// The runtime sends its master and exits before the shim accepts.
	sendMaster(t, cs.path, master)
	got, err := cs.receive()
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Name() != master.Name() {
		t.Errorf("received master named %q, want the pty's name %q", got.Name(), master.Name())
	}
	if fileFlags(t, got)&unix.O_NONBLOCK == 0 {
		t.Error("the received master is blocking")
	}
	// It is polled: a deadline works on it.
	if err := got.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatalf("SetReadDeadline on the master: %v", err)
	}
	if _, err := got.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read of an idle master: %v, want a deadline error", err)
	}
	// And it is the same terminal: what the slave writes, it reads.
	if _, err := slave.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	readWithin(t, got, "ping", 20*time.Second)

	dir := cs.dir
	cs.close()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("console socket dir %s left after close: %v", dir, err)
	}
	cs.close() // twice is fine
}

func TestConsoleSocketNoConnection(t *testing.T) {
	t.Parallel()
	cs, err := newConsoleSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.close()
	done := make(chan error, 1)
	go func() {
		m, err := cs.receive()
		if m != nil {
			m.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("receive without a connection succeeded")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("receive blocked with no runtime connection")
	}
}

func TestConsoleSocketNoFd(t *testing.T) {
	t.Parallel()
	cs, err := newConsoleSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.close()
	conn, err := net.Dial("unix", cs.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("/dev/pts/0")); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if m, err := cs.receive(); err == nil {
		m.Close()
		t.Fatal("receive of a message without an fd succeeded")
	}
}

// TestAttachConsole: with a terminal, the shim copies the stdin FIFO into
// the master and the master into the stdout FIFO; resize reaches the pty;
// closeStdin sends EOF (^D) to the terminal.
func TestAttachConsole(t *testing.T) {
	t.Parallel()
	rawMaster, slave := openPty(t)
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Lflag &^= unix.ECHO // keep stdin out of stdout
	if err := unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	dup, err := unix.FcntlInt(rawMaster.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	master, err := pollable(os.NewFile(uintptr(dup), rawMaster.Name()))
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	in, out := mkfifo(t, dir, "stdin"), mkfifo(t, dir, "stdout")
	clientOut := openClient(t, out, os.O_RDONLY)
	p := stdioPaths{Stdin: in, Stdout: out, Terminal: true}
	pio, err := openIO(p, "ns", "c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pio.resize(80, 24); err == nil {
		t.Error("resize without a terminal succeeded")
	}
	if err := pio.attachConsole(master, p); err != nil {
		t.Fatal(err)
	}
	clientIn := openClient(t, in, os.O_WRONLY)

	// Output.
	if _, err := slave.Write([]byte("from the container\n")); err != nil {
		t.Fatal(err)
	}
	readWithin(t, clientOut, "from the container", 20*time.Second)

	// Input.
	if _, err := clientIn.Write([]byte("typed\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := readBlocking(t, slave, 20*time.Second); err != nil || got != "typed\n" {
		t.Fatalf("the container read %q, %v", got, err)
	}

	// Resize.
	if err := pio.resize(132, 43); err != nil {
		t.Fatal(err)
	}
	ws, err := unix.IoctlGetWinsize(int(slave.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		t.Fatal(err)
	}
	if ws.Col != 132 || ws.Row != 43 {
		t.Errorf("window %dx%d, want 132x43", ws.Col, ws.Row)
	}

	// CloseIO: the terminal reads EOF.
	clientIn.Close()
	pio.closeStdin()
	if got, err := readBlocking(t, slave, 20*time.Second); got != "" || (err != nil && err != io.EOF) {
		t.Errorf("after closeStdin the container read %q, %v; want EOF (0 bytes)", got, err)
	}

	// The container side hangs up; close is prompt.
	slave.Close()
	start := time.Now()
	pio.close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("close took %v", d)
	}
	if err := pio.resize(80, 24); err == nil {
		t.Error("resize after close succeeded")
	}
}
