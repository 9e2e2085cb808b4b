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

// ReadStat parses /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(string(b))
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
