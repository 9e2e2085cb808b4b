package cgroups

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Unlimited is what Stats reports for a limit that is not set ("max" on v2,
// the page-rounded maximum on v1).
const Unlimited = ^uint64(0)

// v1Unlimited is the smallest value a v1 limit file reports when no limit is
// set: the kernel rounds INT64_MAX down to a page multiple.
const v1Unlimited = 0x7FFFFFFFFFFFF000

// writeFile writes val to dir/name in one write(2): cgroupfs parses each write
// as one request, so values must never be split or buffered.
func writeFile(dir, name, val string) error {
	path := dir + "/" + name
	fd, err := openFile(path, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("write %s=%q: %w", path, val, err)
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Write(fd, []byte(val))
		if err == unix.EINTR {
			continue
		}
		if err == nil && n != len(val) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return fmt.Errorf("write %s=%q: %w", path, val, err)
		}
		return nil
	}
}

// readFile returns the whole content of dir/name without the fstat that
// os.ReadFile spends on sizing: cgroupfs reports a meaningless size anyway.
func readFile(dir, name string) (string, error) {
	return readPath(dir + "/" + name)
}

func readPath(path string) (string, error) {
	fd, err := openFile(path, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read %s: %w", path, err)
		}
		if n == 0 {
			return string(buf), nil
		}
		buf = buf[:len(buf)+n]
	}
}

// readOptional is readFile for files that older kernels or some configurations
// lack (memory.peak, memsw files without swap accounting): absent reads as "".
func readOptional(dir, name string) (string, error) {
	s, err := readFile(dir, name)
	if errors.Is(err, unix.ENOENT) {
		return "", nil
	}
	return s, err
}

func openFile(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// parseLimit parses a single-number cgroup file, mapping both "max" and the
// v1 "no limit" value to Unlimited.
func parseLimit(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return Unlimited, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if v >= v1Unlimited {
		return Unlimited, nil
	}
	return v, nil
}

// readUint reads a single-number file (an absent file reads as 0 when
// optional is set).
func readUint(dir, name string, optional bool) (uint64, error) {
	read := readFile
	if optional {
		read = readOptional
	}
	s, err := read(dir, name)
	if err != nil || s == "" {
		return 0, err
	}
	v, err := parseLimit(s)
	if err != nil {
		return 0, fmt.Errorf("parse %s/%s: %w", dir, name, err)
	}
	return v, nil
}

// forEachKeyValue calls fn for every "key value" line of a flat-keyed file
// such as memory.stat or cpu.stat; lines whose value is not a number are
// skipped.
func forEachKeyValue(content string, fn func(key string, val uint64)) {
	for len(content) > 0 {
		var line string
		line, content, _ = strings.Cut(content, "\n")
		key, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64); err == nil {
			fn(key, v)
		}
	}
}

// keyValue returns the value of one key of a flat-keyed file.
func keyValue(content, key string) uint64 {
	var found uint64
	forEachKeyValue(content, func(k string, v uint64) {
		if k == key {
			found = v
		}
	})
	return found
}

// makeCgroupDir creates dir and any missing parents, calling onCreate for each
// level it created (top-down, so a level's parent is always prepared first).
// Already existing directories cost a single mkdir returning EEXIST. When
// checkFS is set, the topmost created level must be on cgroupfs: that stops a
// vanished mount from turning into directories on the tmpfs below it.
func makeCgroupDir(dir string, checkFS bool, onCreate func(dir string) error) error {
	err := mkdir(dir)
	switch {
	case err == nil:
		if checkFS && !isCgroupFS(dir) {
			_ = unix.Rmdir(dir)
			return fmt.Errorf("mkdir %s: parent is not a cgroup filesystem", dir)
		}
	case err == unix.EEXIST:
		return nil
	case err == unix.ENOENT:
		parent := filepath.Dir(dir)
		if parent == dir {
			return fmt.Errorf("mkdir %s: %w", dir, err)
		}
		if err := makeCgroupDir(parent, checkFS, onCreate); err != nil {
			return err
		}
		if err := mkdir(dir); err != nil {
			if err == unix.EEXIST {
				// Someone else created it concurrently; they prepare it.
				return nil
			}
			return fmt.Errorf("mkdir %s: %w", dir, err)
		}
	default:
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	if onCreate != nil {
		return onCreate(dir)
	}
	return nil
}

func mkdir(dir string) error {
	for {
		err := unix.Mkdir(dir, 0o755)
		if err != unix.EINTR {
			return err
		}
	}
}

// rmdirRetryDelays bounds how long Destroy waits for exiting processes to
// leave a cgroup: about a third of a second in total.
var rmdirRetryDelays = []time.Duration{
	10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond,
	80 * time.Millisecond, 160 * time.Millisecond,
}

// removeCgroupDir removes dir and the cgroups a container may have created
// below it. A missing directory is success, so removal is idempotent. EBUSY
// (processes still leaving) is retried briefly before giving up.
func removeCgroupDir(dir string) error {
	for attempt := 0; ; attempt++ {
		err := rmdirTree(dir)
		if err != unix.EBUSY || attempt == len(rmdirRetryDelays) {
			if err != nil {
				return fmt.Errorf("rmdir %s: %w", dir, err)
			}
			return nil
		}
		time.Sleep(rmdirRetryDelays[attempt])
	}
}

// rmdirTree removes dir depth-first. Cgroup directories are removed with
// rmdir alone: their control files vanish with them. Sub-directories are only
// listed when rmdir says the directory is busy, keeping the common case at one
// system call.
func rmdirTree(dir string) error {
	err := rmdir(dir)
	if err != unix.EBUSY {
		return err
	}
	subdirs, listErr := listSubdirs(dir)
	if listErr != nil || len(subdirs) == 0 {
		return err
	}
	for _, sub := range subdirs {
		if err := rmdirTree(sub); err != nil {
			return err
		}
	}
	return rmdir(dir)
}

func rmdir(dir string) error {
	for {
		err := unix.Rmdir(dir)
		switch err {
		case unix.EINTR:
			continue
		case unix.ENOENT:
			return nil
		}
		return err
	}
}

func listSubdirs(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	var subdirs []string
	for _, e := range entries {
		if e.IsDir() {
			subdirs = append(subdirs, dir+"/"+e.Name())
		}
	}
	return subdirs, nil
}

// collectPids appends the pids of dir/cgroup.procs and of every cgroup below
// it. Sub-cgroups that vanish while walking are skipped.
func collectPids(dir string, pids []int) ([]int, error) {
	content, err := readFile(dir, "cgroup.procs")
	if err != nil {
		return pids, err
	}
	for _, field := range strings.Fields(content) {
		pid, err := strconv.Atoi(field)
		if err != nil {
			return pids, fmt.Errorf("parse %s/cgroup.procs: %w", dir, err)
		}
		pids = append(pids, pid)
	}
	subdirs, err := listSubdirs(dir)
	if err != nil {
		return pids, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, sub := range subdirs {
		pids, err = collectPids(sub, pids)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return pids, err
		}
	}
	return pids, nil
}

// writePid moves pid (a whole thread group) into dir.
func writePid(dir string, pid int) error {
	return writeFile(dir, "cgroup.procs", strconv.Itoa(pid))
}
