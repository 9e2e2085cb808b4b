package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Peak RSS of create.
//
// ru_maxrss of a process we fork and exec ourselves is useless here: at
// execve Linux records the high-water RSS of the *old* mm into the process's
// maxrss (exec_mmap → setmax_mm_hiwater_rss), and Go starts children with
// clone(CLONE_VM|CLONE_VFORK), so the old mm is the bench's (or the crun
// worker's) own, and every runtime would read max(our RSS, its RSS). So each
// runtime's create is also run, in separate untimed lifecycles, under GNU
// time, which fork()s: the old mm of create is then a copy of GNU time, about
// 1 MiB, well below any runtime, and time reports the child's ru_maxrss in
// KiB. The timed steps are still launched directly, with nothing in between.

// gnuTime is GNU time, from the Debian package "time".
const gnuTime = "/usr/bin/time"

// rssLauncher is the command that runs a runtime and writes its peak RSS
// (KiB) to out.
func rssLauncher(out string) []string {
	return []string{gnuTime, "-f", "%M", "-o", out}
}

// rssMethod describes how the peak RSS of create is measured.
func rssMethod() string {
	return "ru_maxrss of create launched by " + gnuTime + " -f %M (GNU time; fork, not the bench's vfork) " +
		"in separate untimed lifecycles"
}

// parseGNUTimeMaxRSS reads the %M figure (KiB) from what GNU time wrote with
// -f %M -o FILE: one number on the last line, possibly preceded by
// "Command exited with non-zero status N" or "Command terminated by signal N".
func parseGNUTimeMaxRSS(b []byte) (int64, error) {
	text := strings.TrimSpace(string(b))
	if text == "" {
		return 0, errors.New("GNU time wrote nothing")
	}
	last := text
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		last = strings.TrimSpace(text[i+1:])
	}
	kib, err := strconv.ParseInt(last, 10, 64)
	if err != nil || kib < 0 {
		return 0, fmt.Errorf("GNU time output %q: last line is not a size in KiB", text)
	}
	return kib, nil
}

// readGNUTimeMaxRSS parses the file GNU time wrote and removes it.
func readGNUTimeMaxRSS(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	_ = os.Remove(path)
	kib, err := parseGNUTimeMaxRSS(b)
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	return kib, nil
}

// checkGNUTime makes sure GNU time is there and works, and returns the peak
// RSS (KiB) it reports for /bin/true: the floor of the method, for context.
func checkGNUTime(tmp string) (int64, error) {
	const install = `install the Debian package "time" (apt-get install time, or contrib/deps.sh)`
	if st, err := os.Stat(gnuTime); err != nil || st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return 0, fmt.Errorf("%s is missing; it measures the peak RSS of create: %s", gnuTime, install)
	}
	out, err := exec.Command(gnuTime, "--version").Output()
	if err != nil || !bytes.Contains(out, []byte("GNU")) {
		return 0, fmt.Errorf("%s is not GNU time; it measures the peak RSS of create: %s", gnuTime, install)
	}
	file := filepath.Join(tmp, "floor.maxrss")
	argv := append(rssLauncher(file), "/bin/true")
	res, err := execTimed(argv)
	if err == nil && !exitedZero(res.Status) {
		err = fmt.Errorf("%s: %s", strings.Join(argv, " "), describeStatus(res.Status))
	}
	if err != nil {
		return 0, err
	}
	return readGNUTimeMaxRSS(file)
}
