package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Memory of a long-running process (a shim), from /proc.
//
// /proc/PID/smaps_rollup sums the per-mapping figures of smaps over the
// whole address space in one read: Rss counts every resident page the
// process maps, Pss divides each page by the number of processes mapping
// it (so 20 shims of one binary share its text), and Private_Clean +
// Private_Dirty are the pages only this process maps: its unique set size
// (USS), what killing it would give back. Threads is from /proc/PID/status.

// smapsRollup holds the figures of /proc/PID/smaps_rollup, in KiB.
type smapsRollup struct {
	Rss          int64
	Pss          int64
	PrivateClean int64
	PrivateDirty int64
	// PssAnon and PssFile split Pss into anonymous and file-backed pages;
	// -1 when the kernel does not report them (before Linux 5.7).
	PssAnon int64
	PssFile int64
}

// USS is the unique set size: the pages only this process maps.
func (s smapsRollup) USS() int64 { return s.PrivateClean + s.PrivateDirty }

// parseSmapsRollup parses the text of /proc/PID/smaps_rollup: a header line
// (the address range and "[rollup]"), then "Name:   N kB" lines. Rss, Pss,
// Private_Clean and Private_Dirty are required.
func parseSmapsRollup(b []byte) (smapsRollup, error) {
	s := smapsRollup{Rss: -1, Pss: -1, PrivateClean: -1, PrivateDirty: -1, PssAnon: -1, PssFile: -1}
	fields := map[string]*int64{
		"Rss":           &s.Rss,
		"Pss":           &s.Pss,
		"Private_Clean": &s.PrivateClean,
		"Private_Dirty": &s.PrivateDirty,
		"Pss_Anon":      &s.PssAnon,
		"Pss_File":      &s.PssFile,
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.ContainsAny(name, " \t") {
			continue // the header line, or a blank one
		}
		dst := fields[name]
		if dst == nil {
			continue
		}
		v := strings.Fields(rest)
		if len(v) != 2 || v[1] != "kB" {
			return s, fmt.Errorf("smaps_rollup: %q: want \"%s: N kB\"", line, name)
		}
		n, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil || n < 0 {
			return s, fmt.Errorf("smaps_rollup: %q: bad size", line)
		}
		*dst = n
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	var missing []string
	for _, name := range []string{"Rss", "Pss", "Private_Clean", "Private_Dirty"} {
		if *fields[name] < 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return s, fmt.Errorf("smaps_rollup: no %s", strings.Join(missing, ", "))
	}
	return s, nil
}

// parseStatusThreads returns the Threads figure of /proc/PID/status.
func parseStatusThreads(b []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "Threads" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(rest))
		if err != nil || n < 1 {
			return 0, fmt.Errorf("status: Threads:%s: not a thread count", rest)
		}
		return n, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("status: no Threads line")
}

// procMem is what the shim benchmark records for one process.
type procMem struct {
	smapsRollup
	Threads int
}

// readProcMem reads the memory figures and thread count of pid.
func readProcMem(pid int) (procMem, error) {
	var m procMem
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return m, err
	}
	if m.smapsRollup, err = parseSmapsRollup(b); err != nil {
		return m, fmt.Errorf("pid %d: %w", pid, err)
	}
	if b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err != nil {
		return m, err
	}
	if m.Threads, err = parseStatusThreads(b); err != nil {
		return m, fmt.Errorf("pid %d: %w", pid, err)
	}
	return m, nil
}

// procChildren lists the children of pid, from /proc/PID/task/*/children.
func procChildren(pid int) ([]int, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue // the thread exited
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// procPPid returns the parent pid of pid from /proc/PID/stat.
func procPPid(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatPPid(b)
}

// parseStatPPid reads the ppid, the 4th field of /proc/PID/stat. The 2nd,
// the command in parentheses, may hold spaces and parentheses itself, so
// the fields are counted from its last ')'.
func parseStatPPid(b []byte) (int, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, errors.New("stat: too few fields")
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, fmt.Errorf("stat: ppid %q: %w", f[1], err)
	}
	return ppid, nil
}
