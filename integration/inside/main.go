package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type verb struct {
	nargs int // exact number of arguments, -1 for "any"
	usage string
	run   func(args []string) error
}

var verbs = map[string]verb{
	"id":           {0, "", cmdID},
	"caps":         {0, "", cmdCaps},
	"cwd":          {0, "", cmdCwd},
	"fds":          {0, "", cmdFds},
	"stat":         {1, "PATH", func(a []string) error { return cmdStat(a[0], true) }},
	"lstat":        {1, "PATH", func(a []string) error { return cmdStat(a[0], false) }},
	"cat":          {1, "PATH", cmdCat},
	"write":        {2, "PATH DATA", cmdWrite},
	"open-wr":      {1, "PATH", cmdOpenWr},
	"open-rd":      {1, "PATH", cmdOpenRd},
	"ls":           {1, "DIR", cmdLs},
	"mkdir":        {1, "PATH", cmdMkdir},
	"mounts":       {0, "", func([]string) error { return catFile("/proc/self/mountinfo") }},
	"hostname":     {0, "", cmdHostname},
	"domainname":   {0, "", cmdDomainname},
	"env":          {0, "", cmdEnv},
	"rlimits":      {0, "", cmdRlimits},
	"umask":        {0, "", cmdUmask},
	"nnp":          {0, "", func([]string) error { return statusField("NoNewPrivs") }},
	"seccomp":      {0, "", func([]string) error { return statusField("Seccomp") }},
	"oomscoreadj":  {0, "", func([]string) error { return catFile("/proc/self/oom_score_adj") }},
	"cgroup":       {0, "", func([]string) error { return catFile("/proc/self/cgroup") }},
	"isatty":       {0, "", cmdIsatty},
	"pid":          {0, "", cmdPid},
	"ns":           {0, "", cmdNs},
	"exit":         {1, "N", cmdExit},
	"sleep":        {1, "SECONDS", cmdSleep},
	"pause":        {0, "", cmdPause},
	"sysctl":       {1, "KEY", cmdSysctl},
	"uidmap":       {0, "", cmdUidmap},
	"chdir-fd":     {1, "N", cmdChdirFd},
	"ptrace-watch": {1, "SECONDS", cmdPtraceWatch},
	"sched":        {0, "", cmdSched},
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	v, ok := verbs[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "xtest: unknown verb %q\n", os.Args[1])
		usage()
	}
	args := os.Args[2:]
	if v.nargs >= 0 && len(args) != v.nargs {
		fmt.Fprintf(os.Stderr, "xtest: usage: %s %s\n", os.Args[1], v.usage)
		os.Exit(2)
	}
	if err := v.run(args); err != nil {
		fmt.Fprintf(os.Stderr, "xtest %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	names := make([]string, 0, len(verbs))
	for k := range verbs {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: xtest VERB [ARGS]; verbs: %s\n", strings.Join(names, " "))
	os.Exit(2)
}

func cmdID([]string) error {
	groups, err := unix.Getgroups()
	if err != nil {
		return err
	}
	sort.Ints(groups)
	gs := make([]string, len(groups))
	for i, g := range groups {
		gs[i] = strconv.Itoa(g)
	}
	fmt.Printf("uid=%d\ngid=%d\ngroups=%s\neuid=%d\negid=%d\n",
		unix.Getuid(), unix.Getgid(), strings.Join(gs, ","), unix.Geteuid(), unix.Getegid())
	return nil
}

// statusLines returns the "Key:\tvalue" pairs of /proc/self/status.
func statusLines() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, nil
}

func statusField(name string) error {
	m, err := statusLines()
	if err != nil {
		return err
	}
	v, ok := m[name]
	if !ok {
		return fmt.Errorf("no %s in /proc/self/status", name)
	}
	fmt.Println(v)
	return nil
}

func cmdCaps([]string) error {
	m, err := statusLines()
	if err != nil {
		return err
	}
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		fmt.Printf("%s=%s\n", k, m[k])
	}
	return nil
}

func cmdCwd([]string) error {
	wd, err := unix.Getwd()
	if err != nil {
		return err
	}
	fmt.Println(wd)
	return nil
}

// cmdFds lists the open fds except the one used to read the directory. It
// uses raw syscalls only: the os package would create an epoll instance and
// an eventfd, which would show up in the list.
func cmdFds([]string) error {
	dfd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	var fds []int
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(dfd, buf)
		if err != nil {
			unix.Close(dfd)
			return err
		}
		if n == 0 {
			break
		}
		_, _, names := unix.ParseDirent(buf[:n], -1, nil)
		for _, name := range names {
			fd, err := strconv.Atoi(name)
			if err != nil || fd == dfd {
				continue
			}
			fds = append(fds, fd)
		}
	}
	sort.Ints(fds)
	var out strings.Builder
	lbuf := make([]byte, 4096)
	for _, fd := range fds {
		n, err := unix.Readlink("/proc/self/fd/"+strconv.Itoa(fd), lbuf)
		if err != nil {
			continue
		}
		fmt.Fprintf(&out, "%d %s\n", fd, lbuf[:n])
	}
	unix.Close(dfd)
	_, err = unix.Write(1, []byte(out.String()))
	return err
}

// statResult is the JSON printed by stat and lstat.
type statResult struct {
	Type    string `json:"type"`
	Mode    string `json:"mode"`
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	Rdev    string `json:"rdev,omitempty"`
	Target  string `json:"target,omitempty"`
	FSMagic string `json:"fsmagic,omitempty"`
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
}

func cmdStat(path string, follow bool) error {
	var st unix.Stat_t
	var err error
	if follow {
		err = unix.Stat(path, &st)
	} else {
		err = unix.Lstat(path, &st)
	}
	if err != nil {
		return err
	}
	r := statResult{
		Mode: fmt.Sprintf("%04o", st.Mode&07777),
		UID:  st.Uid, GID: st.Gid, Dev: st.Dev, Ino: st.Ino, Size: st.Size,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		r.Type = "file"
	case unix.S_IFDIR:
		r.Type = "dir"
	case unix.S_IFLNK:
		r.Type = "symlink"
		r.Target, _ = os.Readlink(path)
	case unix.S_IFCHR:
		r.Type = "char"
	case unix.S_IFBLK:
		r.Type = "block"
	case unix.S_IFIFO:
		r.Type = "fifo"
	case unix.S_IFSOCK:
		r.Type = "socket"
	}
	if r.Type == "char" || r.Type == "block" {
		r.Rdev = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if r.Type != "symlink" {
		var sfs unix.Statfs_t
		if unix.Statfs(path, &sfs) == nil {
			r.FSMagic = fmt.Sprintf("0x%x", uint64(sfs.Type))
		}
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

func catFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
}

func cmdCat(a []string) error { return catFile(a[0]) }

func cmdWrite(a []string) error {
	f, err := os.OpenFile(a[0], os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(a[1]); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// errnoName renders an error as its errno symbol (EACCES, EROFS...) when it
// carries one, so tests can match it without depending on libc wording.
func errnoName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
		return fmt.Sprintf("errno=%d", int(errno))
	}
	return err.Error()
}

// tryOpen prints "ok" when the open succeeds and the errno name otherwise.
func tryOpen(path string, flags int) error {
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Println(errnoName(err))
		return nil
	}
	unix.Close(fd)
	fmt.Println("ok")
	return nil
}

func cmdOpenWr(a []string) error { return tryOpen(a[0], unix.O_WRONLY) }
func cmdOpenRd(a []string) error { return tryOpen(a[0], unix.O_RDONLY) }

func cmdLs(a []string) error {
	ents, err := os.ReadDir(a[0])
	if err != nil {
		return err
	}
	for _, e := range ents {
		fmt.Println(e.Name())
	}
	return nil
}

// cmdMkdir prints "ok" or the errno name, like open-wr.
func cmdMkdir(a []string) error {
	if err := unix.Mkdir(a[0], 0o755); err != nil {
		fmt.Println(errnoName(err))
		return nil
	}
	fmt.Println("ok")
	return nil
}

func cmdHostname([]string) error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return err
	}
	fmt.Println(unix.ByteSliceToString(u.Nodename[:]))
	return nil
}

func cmdDomainname([]string) error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return err
	}
	fmt.Println(unix.ByteSliceToString(u.Domainname[:]))
	return nil
}

func cmdEnv([]string) error {
	for _, e := range os.Environ() {
		fmt.Println(e)
	}
	return nil
}

var rlimitNames = []struct {
	name string
	res  int
}{
	{"RLIMIT_AS", unix.RLIMIT_AS},
	{"RLIMIT_CORE", unix.RLIMIT_CORE},
	{"RLIMIT_CPU", unix.RLIMIT_CPU},
	{"RLIMIT_DATA", unix.RLIMIT_DATA},
	{"RLIMIT_FSIZE", unix.RLIMIT_FSIZE},
	{"RLIMIT_LOCKS", unix.RLIMIT_LOCKS},
	{"RLIMIT_MEMLOCK", unix.RLIMIT_MEMLOCK},
	{"RLIMIT_MSGQUEUE", unix.RLIMIT_MSGQUEUE},
	{"RLIMIT_NICE", unix.RLIMIT_NICE},
	{"RLIMIT_NOFILE", unix.RLIMIT_NOFILE},
	{"RLIMIT_NPROC", unix.RLIMIT_NPROC},
	{"RLIMIT_RSS", unix.RLIMIT_RSS},
	{"RLIMIT_RTPRIO", unix.RLIMIT_RTPRIO},
	{"RLIMIT_RTTIME", unix.RLIMIT_RTTIME},
	{"RLIMIT_SIGPENDING", unix.RLIMIT_SIGPENDING},
	{"RLIMIT_STACK", unix.RLIMIT_STACK},
}

// Rlimit is one entry of the rlimits verb's JSON object. RLIM_INFINITY is
// printed as 18446744073709551615.
type Rlimit struct {
	Soft uint64 `json:"soft"`
	Hard uint64 `json:"hard"`
}

// cmdRlimits prints every resource limit as JSON. Note that the Go runtime
// raises its own RLIMIT_NOFILE soft limit at start-up, so the NOFILE soft
// value is this process's, not what the container runtime set: tests read
// /proc/self/limits through a non-Go process for that.
func cmdRlimits([]string) error {
	out := map[string]Rlimit{}
	for _, r := range rlimitNames {
		var l unix.Rlimit
		if err := unix.Prlimit(0, r.res, nil, &l); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		out[r.name] = Rlimit{Soft: l.Cur, Hard: l.Max}
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func cmdUmask([]string) error {
	// /proc/self/status has the umask without changing it.
	return statusField("Umask")
}

func cmdIsatty([]string) error {
	for fd := 0; fd <= 2; fd++ {
		v := 0
		if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			v = 1
		}
		fmt.Printf("%d=%d\n", fd, v)
	}
	return nil
}

func cmdPid([]string) error {
	fmt.Printf("pid=%d\nppid=%d\n", os.Getpid(), os.Getppid())
	return nil
}

func cmdNs([]string) error {
	ents, err := os.ReadDir("/proc/self/ns")
	if err != nil {
		return err
	}
	for _, e := range ents {
		t, err := os.Readlink(filepath.Join("/proc/self/ns", e.Name()))
		if err != nil {
			return err
		}
		fmt.Printf("%s=%s\n", e.Name(), t)
	}
	return nil
}

func cmdUidmap([]string) error {
	for _, f := range []string{"uid_map", "gid_map"} {
		b, err := os.ReadFile("/proc/self/" + f)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			fmt.Printf("%s %s\n", f, strings.Join(strings.Fields(sc.Text()), " "))
		}
	}
	return nil
}

func cmdExit(a []string) error {
	n, err := strconv.Atoi(a[0])
	if err != nil {
		return err
	}
	os.Exit(n)
	return nil
}

func cmdSleep(a []string) error {
	f, err := strconv.ParseFloat(a[0], 64)
	if err != nil {
		return err
	}
	time.Sleep(time.Duration(f * float64(time.Second)))
	return nil
}

// cmdPause prints "ready", then waits for one catchable signal and prints
// its name (SIGTERM, SIGUSR1...), then exits 0. As PID 1 of a pid namespace
// the process only sees signals it has a handler for, which this installs.
func cmdPause([]string) error {
	ch := make(chan os.Signal, 1)
	var sigs []os.Signal
	for s := 1; s < 32; s++ {
		switch syscall.Signal(s) {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGCHLD, syscall.SIGURG,
			syscall.SIGWINCH, syscall.SIGPIPE:
			continue
		}
		sigs = append(sigs, syscall.Signal(s))
	}
	signal.Notify(ch, sigs...)
	fmt.Println("ready")
	s := <-ch
	fmt.Println(unix.SignalName(s.(syscall.Signal)))
	return nil
}

func cmdSysctl(a []string) error {
	return catFile("/proc/sys/" + strings.ReplaceAll(a[0], ".", "/"))
}

// cmdChdirFd tries fchdir-like behaviour through chdir("/proc/self/fd/N")
// and reports the resulting cwd, or the errno.
func cmdChdirFd(a []string) error {
	if err := os.Chdir("/proc/self/fd/" + a[0]); err != nil {
		fmt.Println(errnoName(err))
		return nil
	}
	return cmdCwd(nil)
}

// cmdPtraceWatch watches /proc for SECONDS and tries, on every process
// that appears, what CVE-2016-9962's exploit did: PTRACE_ATTACH and reading
// its fds. It prints "ready", then for each new process "new PID" and one
// "attach PID EXE" or "fd PID EXE N TARGET" line per success; the caller judges by EXE whether the process was still
// the runtime. The tracer is one locked thread: ptrace is per thread.
func cmdPtraceWatch(a []string) error {
	secs, err := strconv.Atoi(a[0])
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	seen := map[int]bool{os.Getpid(): true, 1: true}
	fmt.Println("ready")
	for end := time.Now().Add(time.Duration(secs) * time.Second); time.Now().Before(end); {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return err
		}
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || seen[pid] {
				continue
			}
			seen[pid] = true
			fmt.Printf("new %d\n", pid)
			probeProcess(pid)
		}
	}
	fmt.Println("done")
	return nil
}

func probeProcess(pid int) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	exeLink := fmt.Sprintf("/proc/%d/exe", pid)
	before, _ := os.Readlink(exeLink)
	if ents, err := os.ReadDir(dir); err == nil {
		var lines []string
		for _, e := range ents {
			if target, err := os.Readlink(dir + "/" + e.Name()); err == nil {
				lines = append(lines, e.Name()+" "+target)
			}
		}
		// What the process was when its fds were read: its exe after the
		// reads if it is still there, else before them (it exited in
		// between: the user's program can be that quick). An exe readable
		// neither time was hidden before the reads (non-dumpable) and the
		// fds readable after: the process had exec'd its program by then.
		exe, _ := os.Readlink(exeLink)
		if exe == "" {
			exe = before
		}
		for _, l := range lines {
			if exe != "" {
				fmt.Printf("fd %d %s %s\n", pid, exe, l)
			}
		}
	}
	if err := unix.PtraceAttach(pid); err != nil {
		return
	}
	var ws unix.WaitStatus
	unix.Wait4(pid, &ws, unix.WALL, nil)
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	fmt.Printf("attach %d %s\n", pid, exe)
	unix.PtraceDetach(pid)
	// The attach's SIGSTOP put every thread of the process in a group
	// stop; detaching resumes only the traced one.
	unix.Kill(pid, unix.SIGCONT)
}

// cmdSched prints the process's scheduling policy, nice value, static
// priority, I/O priority class and level, and personality.
func cmdSched([]string) error {
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return err
	}
	const whoProcess = 1
	io, _, errno := unix.RawSyscall(unix.SYS_IOPRIO_GET, whoProcess, 0, 0)
	if errno != 0 {
		return errno
	}
	pers, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
	if errno != 0 {
		return errno
	}
	fmt.Printf("policy=%d\nnice=%d\npriority=%d\nioclass=%d\niolevel=%d\npersonality=%#x\n",
		attr.Policy, attr.Nice, attr.Priority, io>>13, io&0x1fff, pers)
	return nil
}
