package terminal

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty opens a pty pair through /dev/ptmx, independently of Open.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("skipping: cannot open /dev/ptmx: %v", err)
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
		t.Skipf("skipping: cannot open the pty slave %s: %v", name, err)
	}
	master, slave = os.NewFile(uintptr(fd), "/dev/ptmx"), os.NewFile(uintptr(sfd), name)
	t.Cleanup(func() {
		master.Close()
		slave.Close()
	})
	return master, slave
}

func termios(t *testing.T, f *os.File) *unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatalf("TCGETS: %v", err)
	}
	return tio
}

// readWithin reads from f until want bytes arrived or the timeout passed.
func readWithin(t *testing.T, f *os.File, want int, d time.Duration) string {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		var got []byte
		buf := make([]byte, 256)
		for len(got) < want {
			n, err := f.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				ch <- res{got, err}
				return
			}
		}
		ch <- res{got, nil}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read: %v (got %q)", r.err, r.b)
		}
		return string(r.b)
	case <-time.After(d):
		t.Fatalf("timed out reading %d bytes", want)
		return ""
	}
}

func TestMakeRawRestore(t *testing.T) {
	_, slave := openPty(t)
	orig := termios(t, slave)
	if orig.Lflag&unix.ICANON == 0 || orig.Lflag&unix.ECHO == 0 {
		t.Fatalf("a new pty is expected to start cooked: lflag %#x", orig.Lflag)
	}
	st, err := MakeRaw(int(slave.Fd()))
	if err != nil || st == nil {
		t.Fatalf("MakeRaw = %v, %v", st, err)
	}
	raw := termios(t, slave)
	checks := []struct {
		name string
		ok   bool
	}{
		{"ICANON off", raw.Lflag&unix.ICANON == 0},
		{"ECHO off", raw.Lflag&unix.ECHO == 0},
		{"ECHONL off", raw.Lflag&unix.ECHONL == 0},
		{"ISIG off", raw.Lflag&unix.ISIG == 0},
		{"IEXTEN off", raw.Lflag&unix.IEXTEN == 0},
		{"ICRNL off", raw.Iflag&unix.ICRNL == 0},
		{"IXON off", raw.Iflag&unix.IXON == 0},
		{"BRKINT off", raw.Iflag&unix.BRKINT == 0},
		{"ISTRIP off", raw.Iflag&unix.ISTRIP == 0},
		{"OPOST off", raw.Oflag&unix.OPOST == 0},
		{"CS8", raw.Cflag&unix.CSIZE == unix.CS8},
		{"PARENB off", raw.Cflag&unix.PARENB == 0},
		{"VMIN 1", raw.Cc[unix.VMIN] == 1},
		{"VTIME 0", raw.Cc[unix.VTIME] == 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("raw mode: %s failed (iflag %#x oflag %#x cflag %#x lflag %#x)", c.name, raw.Iflag, raw.Oflag, raw.Cflag, raw.Lflag)
		}
	}
	st.Restore()
	back := termios(t, slave)
	if back.Iflag != orig.Iflag || back.Oflag != orig.Oflag || back.Cflag != orig.Cflag || back.Lflag != orig.Lflag || back.Cc != orig.Cc {
		t.Errorf("Restore: termios %+v, want %+v", back, orig)
	}
}

func TestRawModeBehaviour(t *testing.T) {
	tests := []struct {
		name  string
		raw   bool
		input string
		want  string // what the slave reads
	}{
		{"cooked translates CR and waits for a line", false, "ab\r", "ab\n"},
		{"raw passes CR through at once", true, "ab\r", "ab\r"},
		{"raw passes control characters", true, "\x03\x04", "\x03\x04"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			master, slave := openPty(t)
			if tt.raw {
				st, err := MakeRaw(int(slave.Fd()))
				if err != nil || st == nil {
					t.Fatalf("MakeRaw = %v, %v", st, err)
				}
			}
			if _, err := master.Write([]byte(tt.input)); err != nil {
				t.Fatal(err)
			}
			if got := readWithin(t, slave, len(tt.want), 5*time.Second); got != tt.want {
				t.Errorf("slave read %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMakeRawNotATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	st, err := MakeRaw(int(r.Fd()))
	if st != nil || err != nil {
		t.Fatalf("MakeRaw(pipe) = %v, %v; want nil, nil", st, err)
	}
	st.Restore() // a nil state is a no-op
}

func winsize(t *testing.T, f *os.File) (rows, cols uint16) {
	t.Helper()
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		t.Fatalf("TIOCGWINSZ: %v", err)
	}
	return ws.Row, ws.Col
}

func TestSetSize(t *testing.T) {
	tests := []struct {
		rows, cols uint16
		onSlave    bool
	}{
		{24, 80, false},
		{40, 120, false},
		{1, 1, true},
		{0, 0, false},
		{65535, 65535, true},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(int(tt.rows))+"x"+strconv.Itoa(int(tt.cols)), func(t *testing.T) {
			master, slave := openPty(t)
			target := master
			if tt.onSlave {
				target = slave
			}
			if err := SetSize(target, tt.rows, tt.cols); err != nil {
				t.Fatal(err)
			}
			// Both ends share one window size.
			for _, f := range []*os.File{master, slave} {
				if r, c := winsize(t, f); r != tt.rows || c != tt.cols {
					t.Errorf("%s: %dx%d, want %dx%d", f.Name(), r, c, tt.rows, tt.cols)
				}
			}
		})
	}
	t.Run("not a terminal", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		err = SetSize(r, 1, 1)
		if err == nil || !strings.HasPrefix(err.Error(), "set window size:") || !errors.Is(err, unix.ENOTTY) {
			t.Fatalf("SetSize(pipe) = %v", err)
		}
	})
}

func TestCopyWinsize(t *testing.T) {
	srcMaster, _ := openPty(t)
	dstMaster, dstSlave := openPty(t)
	if err := SetSize(srcMaster, 33, 99); err != nil {
		t.Fatal(err)
	}
	if err := SetSize(dstMaster, 5, 6); err != nil {
		t.Fatal(err)
	}
	CopyWinsize(int(srcMaster.Fd()), dstMaster)
	if r, c := winsize(t, dstSlave); r != 33 || c != 99 {
		t.Errorf("after CopyWinsize: %dx%d, want 33x99", r, c)
	}

	// A source that is not a terminal leaves dst alone.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	CopyWinsize(int(pr.Fd()), dstMaster)
	if r, c := winsize(t, dstSlave); r != 33 || c != 99 {
		t.Errorf("after CopyWinsize from a pipe: %dx%d, want 33x99 unchanged", r, c)
	}
}

// socketPair returns a connected unix stream pair: the container side
// (sender) and the console socket reader.
func socketPair(t *testing.T) (send, recv *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	send = os.NewFile(uintptr(fds[0]), "send")
	recv = os.NewFile(uintptr(fds[1]), "recv")
	t.Cleanup(func() {
		send.Close()
		recv.Close()
	})
	return send, recv
}

func TestSendRecvMaster(t *testing.T) {
	tests := []struct {
		name     string
		fileName string
		wantName string
	}{
		{"named", "/dev/pts/ptmx", "/dev/pts/ptmx"},
		{"other name", "/dev/ptmx", "/dev/ptmx"},
		{"unnamed falls back", "", "/dev/ptmx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			master0, slave := openPty(t)
			// A file with the wanted name over a dup of the master.
			dup, err := unix.FcntlInt(master0.Fd(), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			master := os.NewFile(uintptr(dup), tt.fileName)
			defer master.Close()
			send, recv := socketPair(t)
			if err := SendMaster(send, master); err != nil {
				t.Fatal(err)
			}
			got, err := RecvMaster(recv)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			if got.Name() != tt.wantName {
				t.Errorf("name = %q, want %q", got.Name(), tt.wantName)
			}
			flags, err := unix.FcntlInt(got.Fd(), unix.F_GETFD, 0)
			if err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Errorf("received fd flags %#x, %v: want close-on-exec", flags, err)
			}
			var a, b unix.Stat_t
			if err := unix.Fstat(int(master.Fd()), &a); err != nil {
				t.Fatal(err)
			}
			if err := unix.Fstat(int(got.Fd()), &b); err != nil {
				t.Fatal(err)
			}
			if a.Dev != b.Dev || a.Ino != b.Ino || a.Rdev != b.Rdev {
				t.Errorf("received fd is not the master")
			}
			// It works: what is written to it reaches the slave.
			if _, err := MakeRaw(int(slave.Fd())); err != nil {
				t.Fatal(err)
			}
			if _, err := got.Write([]byte("hi\r")); err != nil {
				t.Fatal(err)
			}
			if s := readWithin(t, slave, 3, 5*time.Second); s != "hi\r" {
				t.Errorf("slave read %q", s)
			}
			// And the window size is shared with the original.
			if err := SetSize(got, 12, 34); err != nil {
				t.Fatal(err)
			}
			if r, c := winsize(t, slave); r != 12 || c != 34 {
				t.Errorf("size via received master %dx%d", r, c)
			}
		})
	}
}

func TestRecvMasterErrors(t *testing.T) {
	tests := []struct {
		name string
		send func(t *testing.T, f *os.File)
		want string
	}{
		{"no fd", func(t *testing.T, f *os.File) {
			if _, err := f.Write([]byte("/dev/pts/0")); err != nil {
				t.Fatal(err)
			}
		}, "receive pty master: expected one control message"},
		{"peer closed", func(t *testing.T, f *os.File) { f.Close() }, "receive pty master"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			send, recv := socketPair(t)
			tt.send(t, send)
			got, err := RecvMaster(recv)
			if err == nil {
				got.Close()
				t.Fatal("RecvMaster succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("RecvMaster = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSendMasterClosedSocket(t *testing.T) {
	master, _ := openPty(t)
	send, recv := socketPair(t)
	recv.Close()
	err := SendMaster(send, master)
	if err == nil || !strings.HasPrefix(err.Error(), "send pty master over the console socket:") {
		t.Fatalf("SendMaster = %v", err)
	}
}

func TestPump(t *testing.T) {
	master, slave := openPty(t)
	if _, err := MakeRaw(int(slave.Fd())); err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	wait := Pump(master, inR, outW)

	// stdin -> master -> slave
	go inW.Write([]byte("to-container"))
	if got := readWithin(t, slave, len("to-container"), 5*time.Second); got != "to-container" {
		t.Errorf("slave read %q", got)
	}

	// slave -> master -> stdout
	if _, err := slave.Write([]byte("from-container")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("from-container"))
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(outR, got)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil || string(got) != "from-container" {
			t.Errorf("stdout read %q, %v", got, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for output")
	}

	// Hanging up the container side ends the output copy and wait returns.
	go io.Copy(io.Discard, outR)
	slave.Close()
	waited := make(chan struct{})
	go func() {
		wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return after the slave closed")
	}
	inW.Close()
	outW.Close()
}

func TestPumpNilStdin(t *testing.T) {
	master, slave := openPty(t)
	if _, err := MakeRaw(int(slave.Fd())); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	wait := Pump(master, nil, &out)
	if _, err := slave.Write([]byte("only output")); err != nil {
		t.Fatal(err)
	}
	// Give the copy a moment to read before the hangup.
	time.Sleep(100 * time.Millisecond)
	slave.Close()
	waited := make(chan struct{})
	go func() {
		wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return")
	}
	if out.String() != "only output" {
		t.Errorf("output %q", out.String())
	}
}

func TestOpen(t *testing.T) {
	// Open resolves /dev/pts/ptmx with RESOLVE_IN_ROOT from the current
	// directory, which in the container is "/" after the root switch.
	t.Chdir("/")
	master, slave, err := Open()
	if err != nil {
		t.Skipf("skipping: Open on this host: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	if !strings.HasPrefix(slave.Name(), "/dev/pts/") {
		t.Errorf("slave name %q", slave.Name())
	}
	for _, f := range []*os.File{master, slave} {
		flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s: flags %#x, %v; want close-on-exec", f.Name(), flags, err)
		}
	}
	// The slave is the peer of the master and is the pts its name says.
	n, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if want := "/dev/pts/" + strconv.Itoa(int(n)); slave.Name() != want {
		t.Errorf("slave name %q, want %q", slave.Name(), want)
	}
	var a, b unix.Stat_t
	if err := unix.Fstat(int(slave.Fd()), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(slave.Name(), &b); err != nil {
		t.Fatal(err)
	}
	if a.Rdev != b.Rdev {
		t.Errorf("slave rdev %#x, %s has %#x", a.Rdev, slave.Name(), b.Rdev)
	}
	if _, err := MakeRaw(int(slave.Fd())); err != nil {
		t.Fatal(err)
	}
	if _, err := master.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got := readWithin(t, slave, 4, 5*time.Second); got != "ping" {
		t.Errorf("slave read %q", got)
	}
}
