// Package proc reads the few /proc facts the runtime relies on, and the
// ones xd shows of a container's processes (`xctl top`).
//
// Internal to xstack; no API stability.
package proc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ClockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on
// every architecture Go runs Linux on.
const ClockTicks = 100

// Stat is the part of /proc/PID/stat we use.
type Stat struct {
	Comm      string // the command name, without its parentheses
	State     byte   // R, S, D, Z, X, T, ...
	PPid      int    // parent pid
	UTime     uint64 // clock ticks spent in user mode
	STime     uint64 // clock ticks spent in the kernel
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
	open, i := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || i < open || i+2 > len(s) {
		return Stat{}, errors.New("malformed stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15,
	// start time is field 22.
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
	var ticks [3]uint64
	for n, field := range []int{11, 12, 19} {
		if ticks[n], err = strconv.ParseUint(f[field], 10, 64); err != nil {
			return Stat{}, fmt.Errorf("malformed stat: field %d is %q", field+3, f[field])
		}
	}
	return Stat{Comm: s[open+1 : i], State: f[0][0], PPid: ppid, UTime: ticks[0], STime: ticks[1], StartTime: ticks[2]}, nil
}

// EffectiveUID is the effective uid in /proc/PID/status.
func EffectiveUID(pid int) (uint32, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	return parseEffectiveUID(string(b))
}

func parseEffectiveUID(status string) (uint32, error) {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, "Uid:")
		if !ok {
			continue
		}
		// Real, effective, saved set and filesystem uid.
		ids := strings.Fields(rest)
		if len(ids) < 2 {
			break
		}
		uid, err := strconv.ParseUint(ids[1], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("malformed status: Uid %q", strings.TrimSpace(rest))
		}
		return uint32(uid), nil
	}
	return 0, errors.New("malformed status: no Uid line")
}

// Cmdline is the argument list of /proc/PID/cmdline; none for a zombie
// or a kernel thread.
func Cmdline(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), nil
}

// BootTime is when the host booted (btime of /proc/stat): start times in
// clock ticks count from it.
func BootTime() (time.Time, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "btime "); ok {
			sec, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("malformed /proc/stat: btime %q", strings.TrimSpace(rest))
			}
			return time.Unix(sec, 0), nil
		}
	}
	return time.Time{}, errors.New("malformed /proc/stat: no btime line")
}
