package pollread

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// chunkSize is the most one Next returns: a pipe's default capacity.
const chunkSize = 64 << 10

var buffers = sync.Pool{New: func() any {
	b := make([]byte, chunkSize)
	return &b
}}

// Reader reads a pollable file (a non-blocking pipe, FIFO or socket).
type Reader struct {
	rc syscall.RawConn
}

// New returns a Reader of f, which must be in the runtime's poller: opened
// with O_NONBLOCK (os.OpenFile registers FIFOs then) or made by os.Pipe.
func New(f *os.File) (*Reader, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("pollread %s: %w", f.Name(), err)
	}
	return &Reader{rc: rc}, nil
}

// Next waits until the file is readable and returns what one read(2) gave,
// in a slice of its own. It returns io.EOF once every writer has closed, and
// the poller's error ("use of closed file") when the file is closed
// meanwhile.
func (r *Reader) Next() ([]byte, error) {
	var chunk []byte
	var readErr error
	err := r.rc.Read(func(fd uintptr) bool {
		buf := buffers.Get().(*[]byte)
		defer buffers.Put(buf)
		for {
			n, err := unix.Read(int(fd), *buf)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return false // wait in the poller
			case err != nil:
				readErr = err
			case n == 0:
				readErr = io.EOF
			default:
				chunk = append([]byte(nil), (*buf)[:n]...)
			}
			return true
		}
	})
	if err != nil {
		return nil, err
	}
	if readErr != nil && !errors.Is(readErr, io.EOF) {
		readErr = fmt.Errorf("read: %w", readErr)
	}
	return chunk, readErr
}
