// Package proc reads the few /proc/PID facts the runtime relies on.
//
// Internal to xstack; no API stability.
package proc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Stat is the part of /proc/PID/stat we use.
type Stat struct {
	State     byte   // R, S, D, Z, X, T, ...
	PPid      int    // parent pid
	StartTime uint64 // clock ticks after boot when the process started
}

// Exited reports a process that is dead but not yet reaped (zombie) or
// being reaped.
func (s Stat) Exited() bool { return s.State == 'Z' || s.State == 'X' }

// ReadStat parses /proc/PID/stat. The line is read in one read(2) into a
// buffer on the stack: a daemon checking a hundred containers after a
// restart pays half the system calls of os.ReadFile.
func ReadStat(pid int) (Stat, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Stat{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var buf [2048]byte
	n, err := readRetry(fd, buf[:])
	if err != nil {
		return Stat{}, &os.PathError{Op: "read", Path: path, Err: err}
	}
	if n == len(buf) {
		// Longer than any stat line the kernel writes today.
		b, err := os.ReadFile(path)
		if err != nil {
			return Stat{}, err
		}
		return ParseStat(string(b))
	}
	return ParseStat(string(buf[:n]))
}

func readRetry(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// ParseStat parses the content of a stat file. The command name (field 2)
// may contain spaces and parentheses, so fields are counted from the last
// ')'.
func ParseStat(s string) (Stat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return Stat{}, errors.New("malformed stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); start time is field 22.
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("malformed stat: %d fields after the command name", len(f))
	}
	if len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("malformed stat: state %q", f[0])
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("malformed stat: ppid %q", f[1])
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("malformed stat: start time %q", f[19])
	}
	return Stat{State: f[0][0], PPid: ppid, StartTime: start}, nil
}
