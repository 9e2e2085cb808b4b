package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The daemon benchmark: a private containerd 1.6 driven by ctr and a
// private xd driven by xctl, side by side in one private mount namespace,
// with the same image imported into both. See doc.go.

const (
	// daemonPoll is the pause between two listings while a daemon comes up.
	daemonPoll = 10 * time.Millisecond
	// daemonStopTimeout bounds a daemon's exit after SIGTERM.
	daemonStopTimeout = 15 * time.Second
	// daemonUpTimeout bounds a daemon's start until its list is complete.
	daemonUpTimeout = 60 * time.Second
	// daemonSettleTimeout bounds the wait for a complete list once the
	// daemon answers at all.
	daemonSettleTimeout = 10 * time.Second
	// daemonClientTimeout bounds an untimed client call (teardown can
	// remove a hundred containers in one call).
	daemonClientTimeout = 3 * time.Minute
	// imageNameAnnotation names an image in an OCI layout's index.json.
	imageNameAnnotation = "io.containerd.image.name"
)

// daemonSleepArgs is the process of the running containers.
var daemonSleepArgs = []string{"/bin/sleep", "3600"}

// daemonSide is one daemon and its client, and their samples.
type daemonSide struct {
	name       string // "xd" or "containerd"
	ref        bool
	path       string
	version    string
	client     string // "xctl" or "ctr"
	clientPath string
	clientVer  string
	runtime    string // what runs its containers, for the report
	dir        string
	sock       string
	args       []string // the daemon's argv, run in the private namespace
	logPath    string
	// clientLog collects the timed clients' stderr; errors quote it.
	clientLogPath string
	clientLog     *os.File

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	started bool

	// sleeping are the ids of the running containers; pids maps them to
	// their init pids, read before the first restart.
	sleeping []string
	pids     map[string]int
	lost     int
	// restartRunning is how many ran at the restarts (the scale figures
	// start more afterwards).
	restartRunning int

	run, detached, list, restart, stop []time.Duration
	scale                              scaleSamples
	err                                error
	notes                              []string
}

// daemonBench is the whole daemon benchmark.
type daemonBench struct {
	o          options
	dir        string
	ns         string
	nsenter    string
	unshare    string
	image      string // the archive
	imageRef   string
	sides      []*daemonSide
	skipped    []skipped
	missingRef bool
	// setupErr is a failure before any daemon could be measured.
	setupErr error

	anchor    *exec.Cmd
	anchorPid int
	// anchorNS is the anchor's /proc/PID/ns/mnt link.
	anchorNS string
	// xdCgroupTops are the /xd cgroup directories that did not exist
	// before the benchmark: removed at the end if empty.
	xdCgroupTops []string

	elapsed time.Duration
	stopped bool
}

// newDaemonBench prepares the two sides: containerd with ctr (the
// reference; missing is a failure) and xd with xctl (missing is reported).
func newDaemonBench(o options, tmp string) (*daemonBench, error) {
	db := &daemonBench{o: o, dir: filepath.Join(tmp, "daemons"), ns: fmt.Sprintf("xstack-bench-d%d", os.Getpid())}
	if err := os.Mkdir(db.dir, 0o711); err != nil {
		return nil, err
	}
	for _, tool := range []struct {
		name string
		dst  *string
	}{{"nsenter", &db.nsenter}, {"unshare", &db.unshare}} {
		p, err := exec.LookPath(tool.name)
		if err != nil {
			return nil, fmt.Errorf("%s (util-linux) not found: %w", tool.name, err)
		}
		*tool.dst = p
	}
	type want struct{ name, path, client, clientPath, runtime string }
	wants := []want{
		{"xd", o.xd, "xctl", o.xctl, "io.xstack.xshim.v1: xshim + xrunc beside xd"},
		{"containerd", o.containerd, "ctr", o.ctr, "io.containerd.runc.v2: containerd-shim-runc-v2 + runc from PATH"},
	}
	for _, w := range wants {
		ref := w.name == "containerd"
		reason := ""
		for _, bin := range [][2]string{{w.name, w.path}, {w.client, w.clientPath}} {
			if bin[1] == "" {
				reason = bin[0] + ": XSTACK_BINDIR is not set and -" + bin[0] + " was not given"
			} else if r := checkBinary(bin[0], bin[1]); r != "" {
				reason = bin[0] + ": " + r
			}
			if reason != "" {
				break
			}
		}
		if reason != "" {
			db.skipped = append(db.skipped, skipped{Name: w.name, Reason: reason})
			db.missingRef = db.missingRef || ref
			continue
		}
		d := &daemonSide{
			name: w.name, ref: ref, path: w.path, version: version(w.path),
			client: w.client, clientPath: w.clientPath, clientVer: version(w.clientPath),
			runtime: w.runtime, dir: filepath.Join(db.dir, w.name),
		}
		d.sock = filepath.Join(d.dir, w.name+".sock")
		d.logPath = filepath.Join(d.dir, w.name+".log")
		d.clientLogPath = filepath.Join(d.dir, w.client+".log")
		if err := os.Mkdir(d.dir, 0o700); err != nil {
			return nil, err
		}
		root, state := filepath.Join(d.dir, "root"), filepath.Join(d.dir, "state")
		if ref {
			cfg := filepath.Join(d.dir, "config.toml")
			text := containerdConfig(root, state, d.sock, filepath.Join(d.dir, "opt"))
			if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
				return nil, err
			}
			d.args = []string{d.path, "--config", cfg}
		} else {
			d.args = []string{d.path, "--root", root, "--state", state, "--address", d.sock}
		}
		db.sides = append(db.sides, d)
	}
	return db, nil
}

// containerdConfig is a private containerd's configuration: its own root,
// state and sockets, no CRI, and the opt plugin kept out of /opt.
func containerdConfig(root, state, sock, opt string) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, root, state, sock, sock+".ttrpc", opt)
}

func (d *daemonSide) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// note records something odd about d once.
func (d *daemonSide) note(s string) {
	if !slices.Contains(d.notes, s) {
		d.notes = append(d.notes, s)
	}
}

func (db *daemonBench) live() []*daemonSide {
	var out []*daemonSide
	for _, d := range db.sides {
		if d.err == nil {
			out = append(out, d)
		}
	}
	return out
}

// run sets up the namespace, the image and the daemons, measures, and
// tears everything down. It reports whether anything failed.
func (db *daemonBench) run(b *bench) bool {
	for _, s := range db.skipped {
		fmt.Fprintf(b.stderr, "bench: daemons: %s: %s: not benchmarked\n", s.Name, s.Reason)
	}
	if len(db.sides) == 0 {
		return true
	}
	start := time.Now()
	var names []string
	for _, d := range db.sides {
		names = append(names, d.name)
	}
	fmt.Fprintf(b.stderr, "bench: daemons %s: run --rm n=%d, list with %d running, restart with %d running ×%d\n",
		strings.Join(names, ", "), db.o.daemonN, db.o.daemonList, db.o.daemonRestart, db.o.daemonRestarts)
	if err := db.setup(b); err != nil {
		db.setupErr = err
		fmt.Fprintf(b.stderr, "bench: daemons FAILED: %v\n", err)
	} else {
		db.measure(b)
	}
	db.stopped = b.stop.Load()
	db.teardown(b)
	db.elapsed = time.Since(start)
	what := "measured and torn down"
	if db.stopped {
		what = "interrupted; torn down"
	}
	fmt.Fprintf(b.stderr, "bench: daemons %s in %.1fs\n", what, db.elapsed.Seconds())

	failed := db.missingRef || db.stopped || db.setupErr != nil
	for _, d := range db.sides {
		if d.err != nil {
			failed = true
		}
	}
	return failed
}

// setup builds or reads the image, starts the anchor of the private mount
// namespace, starts both daemons and imports the image into each.
func (db *daemonBench) setup(b *bench) error {
	if err := db.prepareImage(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := db.rememberXdCgroups(); err != nil {
		return err
	}
	if err := db.startAnchor(); err != nil {
		return fmt.Errorf("private mount namespace: %w", err)
	}
	for _, d := range db.sides {
		f, err := os.OpenFile(d.clientLogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		d.clientLog = f
		if err := db.startDaemon(d); err != nil {
			d.fail(err)
			continue
		}
		if err := db.waitUp(d, -1); err != nil {
			d.fail(fmt.Errorf("start: %w", err))
			continue
		}
		if _, err := db.clientOutput(d, "images", "import", db.image); err != nil {
			d.fail(fmt.Errorf("import %s: %w", db.image, err))
			continue
		}
		out, err := db.clientOutput(d, "images", "ls")
		if err == nil && !strings.Contains(string(out), db.imageRef) {
			err = fmt.Errorf("%s is not listed after the import", db.imageRef)
		}
		if err != nil {
			d.fail(fmt.Errorf("images ls: %w", err))
		}
	}
	if len(db.live()) == 0 {
		return errors.New("no daemon could be started")
	}
	return nil
}

// prepareImage builds the busybox image with contrib/busybox-image unless
// -daemon-image names an archive, and reads the image's name from it.
func (db *daemonBench) prepareImage() error {
	if db.o.daemonImage != "" {
		p, err := filepath.Abs(db.o.daemonImage)
		if err != nil {
			return err
		}
		db.image = p
	} else {
		src, err := findContrib("busybox-image")
		if err != nil {
			return fmt.Errorf("%w (or give -daemon-image)", err)
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			return fmt.Errorf("go not found to build the image: %w (or give -daemon-image)", err)
		}
		db.image = filepath.Join(db.dir, "busybox.tar")
		cmd := exec.Command(goBin, "run", ".", "-o", db.image, "-busybox", db.o.busybox)
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go run %s: %w: %s", src, err, strings.TrimSpace(string(out)))
		}
	}
	f, err := os.Open(db.image)
	if err != nil {
		return err
	}
	defer f.Close()
	db.imageRef, err = imageRefFromLayout(f)
	if err != nil {
		return fmt.Errorf("%s: %w", db.image, err)
	}
	return nil
}

// findContrib finds contrib/NAME in the working directory or a parent: the
// bench runs from the module (make bench, go run ./bench).
func findContrib(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "contrib", name)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("contrib/%s not found in the working directory or above", name)
		}
		dir = parent
	}
}

// imageRefFromLayout reads the name of the first image of an OCI
// image-layout tar: the io.containerd.image.name annotation of index.json,
// which both ctr and xd import it under.
func imageRefFromLayout(r io.Reader) (string, error) {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", errors.New("no index.json: not an OCI image-layout tar")
		}
		if err != nil {
			return "", err
		}
		if strings.TrimPrefix(h.Name, "./") != "index.json" {
			continue
		}
		var idx struct {
			Manifests []struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		if err := json.NewDecoder(tr).Decode(&idx); err != nil {
			return "", fmt.Errorf("index.json: %w", err)
		}
		for _, m := range idx.Manifests {
			if n := m.Annotations[imageNameAnnotation]; n != "" {
				return n, nil
			}
		}
		return "", fmt.Errorf("index.json names no image (%s annotation)", imageNameAnnotation)
	}
}

// startAnchor starts the process that holds the private mount namespace:
// a copy of ours, private propagation, a tmpfs on /run (containerd 1.6
// hard-codes /run/containerd/s for shim sockets, xshim /run/xstack/s).
// Daemons and clients enter it with nsenter.
func (db *daemonBench) startAnchor() error {
	cmd := exec.Command(db.unshare, "--mount", "--propagation", "private",
		"sh", "-c", "mount -t tmpfs -o mode=0755 tmpfs /run && echo ready && exec sleep infinity")
	cmd.Env = childEnv
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	db.anchor, db.anchorPid = cmd, cmd.Process.Pid
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		return fmt.Errorf("anchor %d did not get ready: %q %v", db.anchorPid, line, err)
	}
	if db.anchorNS, err = os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", db.anchorPid)); err != nil {
		return err
	}
	if self, err := os.Readlink("/proc/self/ns/mnt"); err != nil || self == db.anchorNS {
		return fmt.Errorf("anchor %d is not in a mount namespace of its own (%v)", db.anchorPid, err)
	}
	return nil
}

// nsArgv runs argv in the private mount namespace.
func (db *daemonBench) nsArgv(argv ...string) []string {
	return append([]string{db.nsenter, "-t", strconv.Itoa(db.anchorPid), "-m", "--"}, argv...)
}

// clientArgv is `CLIENT -a SOCK -n NS ARGS...` in the private namespace;
// xctl and ctr take the same global flags.
func (db *daemonBench) clientArgv(d *daemonSide, args ...string) []string {
	return db.nsArgv(append([]string{d.clientPath, "-a", d.sock, "-n", db.ns}, args...)...)
}

// clientTimed runs one timed client command (stdout on /dev/null, stderr
// to the client log) and fails unless it exits 0.
func (db *daemonBench) clientTimed(d *daemonSide, args ...string) (time.Duration, error) {
	off := fileSize(d.clientLogPath)
	res, err := execTimedStderr(db.clientArgv(d, args...), d.clientLog)
	if err == nil && !exitedZero(res.Status) {
		err = fmt.Errorf("%s %s: %s%s", d.client, strings.Join(args, " "), describeStatus(res.Status), logSince(d.clientLogPath, off))
	}
	return res.Wall, err
}

// logSince is what a log file got from offset off on, for an error.
func logSince(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.NewSectionReader(f, off, 4096))
	if s := strings.TrimSpace(string(b)); s != "" {
		return ": " + strings.ReplaceAll(s, "\n", "; ")
	}
	return ""
}

// fileTail is the end of a log file, for an error.
func fileTail(path string) string {
	size := fileSize(path)
	return logSince(path, max(size-1024, 0))
}

// clientOutput runs an untimed client command and returns its stdout.
func (db *daemonBench) clientOutput(d *daemonSide, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), daemonClientTimeout)
	defer cancel()
	argv := db.clientArgv(d, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = childEnv
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", d.client, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// runRmArgs, runDetachedArgs and listArgs are the client commands that
// are timed; countArgs is the listing polled while a daemon restarts.
func (d *daemonSide) runRmArgs(ref, id string) []string {
	if d.ref {
		return []string{"run", "--rm", ref, id, "/bin/true"}
	}
	return []string{"run", "--rm", "--name", id, ref, "/bin/true"}
}

func (d *daemonSide) runDetachedArgs(ref, id string) []string {
	if d.ref {
		return append([]string{"run", "-d", ref, id}, daemonSleepArgs...)
	}
	return append([]string{"run", "-d", "--name", id, ref}, daemonSleepArgs...)
}

func (d *daemonSide) listArgs() []string {
	if d.ref {
		return []string{"task", "ls"}
	}
	return []string{"ps"}
}

func (d *daemonSide) countArgs() []string {
	if d.ref {
		return []string{"task", "ls"}
	}
	return []string{"ps", "-q"}
}

// countRunning is the number of running containers the daemon lists: the
// lines of `xctl ps -q` (running and paused only), the RUNNING rows of
// `ctr task ls`.
func (db *daemonBench) countRunning(d *daemonSide) (int, error) {
	out, err := db.clientOutput(d, d.countArgs()...)
	if err != nil {
		return 0, err
	}
	if d.ref {
		return len(parseCtrTasks(out)), nil
	}
	return len(strings.Fields(string(out))), nil
}

// runningPids maps each running container to its init pid: `xctl ps
// --format json`, `ctr task ls`.
func (db *daemonBench) runningPids(d *daemonSide) (map[string]int, error) {
	if d.ref {
		out, err := db.clientOutput(d, "task", "ls")
		if err != nil {
			return nil, err
		}
		return parseCtrTasks(out), nil
	}
	out, err := db.clientOutput(d, "ps", "--format", "json")
	if err != nil {
		return nil, err
	}
	return parseXctlPs(out)
}

// parseCtrTasks reads `ctr task ls` ("TASK PID STATUS" rows) into the
// running tasks and their pids.
func parseCtrTasks(out []byte) map[string]int {
	m := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "RUNNING" {
			continue
		}
		if pid, err := strconv.Atoi(f[1]); err == nil && pid > 0 {
			m[f[0]] = pid
		}
	}
	return m
}

// parseXctlPs reads `xctl ps --format json` into the running containers
// and their pids.
func parseXctlPs(out []byte) (map[string]int, error) {
	var rows []struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Pid   int    `json:"pid"`
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("xctl ps --format json: %w", err)
	}
	m := map[string]int{}
	for _, r := range rows {
		if r.State == "running" && r.Pid > 0 {
			m[r.ID] = r.Pid
		}
	}
	return m, nil
}

// startDaemon starts d's daemon in the private namespace, its output
// appended to its log. It is our child: stopped by its pid only.
func (db *daemonBench) startDaemon(d *daemonSide) error {
	logf, err := os.OpenFile(d.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	argv := db.nsArgv(d.args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = childEnv
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a ^C on the terminal stops the benchmark
	// between steps, not the daemon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d.name, err)
	}
	d.cmd, d.done, d.started = cmd, make(chan struct{}), true
	go func() {
		d.waitErr = cmd.Wait()
		close(d.done)
	}()
	return nil
}

// waitUp polls the daemon's list (pausing daemonPoll between polls) until
// it shows want running containers, or just answers for want < 0.
func (db *daemonBench) waitUp(d *daemonSide, want int) error {
	deadline := time.Now().Add(daemonUpTimeout)
	answered := false
	var last error
	for {
		n, err := db.countRunning(d)
		switch {
		case err != nil:
			last = err
		case want < 0 || n == want:
			return nil
		case n > want:
			return fmt.Errorf("%s lists %d running containers, want %d", d.name, n, want)
		default:
			last = fmt.Errorf("%s lists %d of %d running containers", d.name, n, want)
			if !answered {
				answered = true
				if settle := time.Now().Add(daemonSettleTimeout); settle.Before(deadline) {
					deadline = settle
				}
			}
		}
		select {
		case <-d.done:
			return fmt.Errorf("%s exited (%v): %v; its log%s", d.name, d.waitErr, last, fileTail(d.logPath))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not up after %v: %w", daemonUpTimeout, last)
		}
		time.Sleep(daemonPoll)
	}
}

// stopDaemon sends SIGTERM to d's daemon (by its pid: our child) and waits
// for it to exit; one still running after daemonStopTimeout is killed. It
// returns the time from the signal to the exit.
func (db *daemonBench) stopDaemon(d *daemonSide) (time.Duration, error) {
	if d.cmd == nil {
		return 0, nil
	}
	defer func() { d.cmd = nil }()
	select {
	case <-d.done:
		return 0, fmt.Errorf("%s had exited (%v); its log%s", d.name, d.waitErr, fileTail(d.logPath))
	default:
	}
	start := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, fmt.Errorf("SIGTERM %s (%d): %w", d.name, d.cmd.Process.Pid, err)
	}
	select {
	case <-d.done:
	case <-time.After(daemonStopTimeout):
		_ = d.cmd.Process.Kill()
		<-d.done
		return time.Since(start), fmt.Errorf("%s (%d) still running %v after SIGTERM; killed", d.name, d.cmd.Process.Pid, daemonStopTimeout)
	}
	el := time.Since(start)
	if d.waitErr != nil {
		d.note(fmt.Sprintf("exit after SIGTERM: %v", d.waitErr))
	}
	return el, nil
}

// measure runs the three measurements, the daemons taking turns in a
// rotating order as the runtimes do.
func (db *daemonBench) measure(b *bench) {
	stop := b.stop.Load
	// 1. End-to-end run --rm of /bin/true.
	for i := 0; i < b.o.warmup+db.o.daemonN && !stop(); i++ {
		for _, d := range rotate(db.live(), i) {
			if stop() {
				break
			}
			id := fmt.Sprintf("xb-run-%d", i)
			dur, err := db.clientTimed(d, d.runRmArgs(db.imageRef, id)...)
			if err != nil {
				d.fail(fmt.Errorf("run --rm %s: %w", id, err))
				continue
			}
			if i >= b.o.warmup {
				d.run = append(d.run, dur)
			}
		}
	}
	// 2. Listing with -daemon-list running, then 3. restart with
	// -daemon-restart running: the running containers are started once.
	db.startSleeping(b, db.o.daemonList)
	for _, d := range db.live() {
		if n, err := db.countRunning(d); err != nil || n != len(d.sleeping) {
			d.fail(fmt.Errorf("before the listing: %d running, want %d (%v)", n, len(d.sleeping), err))
		}
	}
	for i := 0; i < b.o.warmup+db.o.daemonN && !stop(); i++ {
		for _, d := range rotate(db.live(), i) {
			if stop() {
				break
			}
			dur, err := db.clientTimed(d, d.listArgs()...)
			if err != nil {
				d.fail(fmt.Errorf("list: %w", err))
				continue
			}
			if i >= b.o.warmup {
				d.list = append(d.list, dur)
			}
		}
	}
	db.startSleeping(b, db.o.daemonRestart)
	for _, d := range db.live() {
		if stop() {
			break
		}
		pids, err := db.runningPids(d)
		if err == nil {
			if missing := comparePids(d.sleeping, nil, pids); len(missing) > 0 || len(pids) != len(d.sleeping) {
				err = fmt.Errorf("%d running, want %d (not running: %s)", len(pids), len(d.sleeping), strings.Join(missing, " "))
			}
		}
		if err != nil {
			d.fail(fmt.Errorf("before the restarts: %w", err))
			continue
		}
		d.pids, d.restartRunning = pids, len(pids)
	}
	for r := 0; r < db.o.daemonRestarts && !stop(); r++ {
		for _, d := range rotate(db.live(), r) {
			if stop() {
				break
			}
			down, up, err := db.restartOnce(d)
			if down > 0 {
				d.stop = append(d.stop, down)
			}
			if err != nil {
				d.fail(fmt.Errorf("restart %d: %w", r, err))
				continue
			}
			d.restart = append(d.restart, up)
		}
	}
	if db.o.daemonScale > 0 && !stop() {
		db.measureScale(b)
	}
}

// startSleeping starts running containers, the daemons taking turns, until
// each has n; each `run -d` is timed.
func (db *daemonBench) startSleeping(b *bench, n int) {
	for i := 0; i < n && !b.stop.Load(); i++ {
		for _, d := range rotate(db.live(), i) {
			if len(d.sleeping) > i || b.stop.Load() {
				continue
			}
			id := fmt.Sprintf("xb-sleep-%d", i)
			dur, err := db.clientTimed(d, d.runDetachedArgs(db.imageRef, id)...)
			if err != nil {
				d.fail(fmt.Errorf("run -d %s: %w", id, err))
				continue
			}
			d.sleeping = append(d.sleeping, id)
			d.detached = append(d.detached, dur)
		}
	}
}

// restartOnce stops d's daemon, checks that every container survived the
// outage, starts the daemon again and times its start until its list
// shows every container running, then checks that they kept their pids.
// It returns the time the daemon took to stop and to come back up.
func (db *daemonBench) restartOnce(d *daemonSide) (down, up time.Duration, err error) {
	if down, err = db.stopDaemon(d); err != nil {
		return 0, 0, err
	}
	var dead []string
	for id, pid := range d.pids {
		if !procAlive(pid) {
			dead = append(dead, fmt.Sprintf("%s (init %d)", id, pid))
		}
	}
	if len(dead) > 0 {
		slices.Sort(dead)
		d.lost += len(dead)
		return down, 0, fmt.Errorf("containers died while %s was down: %s", d.name, strings.Join(dead, " "))
	}
	start := time.Now()
	if err := db.startDaemon(d); err != nil {
		return down, 0, err
	}
	if err := db.waitUp(d, len(d.pids)); err != nil {
		return down, 0, err
	}
	up = time.Since(start)
	now, err := db.runningPids(d)
	if err != nil {
		return down, up, fmt.Errorf("after the restart: %w", err)
	}
	if lost := comparePids(d.sleeping, d.pids, now); len(lost) > 0 {
		d.lost += len(lost)
		return down, up, fmt.Errorf("lost across the restart (missing or another pid): %s", strings.Join(lost, " "))
	}
	return down, up, nil
}

// comparePids returns the ids that are not in now, or (with before) have
// another pid in now than before.
func comparePids(ids []string, before, now map[string]int) []string {
	var bad []string
	for _, id := range ids {
		pid, ok := now[id]
		if !ok || (before != nil && before[id] != pid) {
			bad = append(bad, id)
		}
	}
	return bad
}

// procAlive reports whether pid is a process that has not exited (a
// zombie has).
func procAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// teardown removes every container through its daemon, stops the daemons,
// checks the private namespace for leftovers, ends it and removes the
// cgroups of the benchmark's namespace.
func (db *daemonBench) teardown(b *bench) {
	for _, d := range db.sides {
		if !d.started {
			continue
		}
		if err := db.removeContainers(d); err != nil {
			d.fail(fmt.Errorf("teardown: %w", err))
			fmt.Fprintf(b.stderr, "bench: daemons: %s teardown FAILED: %v\n", d.name, err)
		}
		if _, err := db.stopDaemon(d); err != nil {
			d.fail(fmt.Errorf("teardown: %w", err))
		}
	}
	if err := db.endNamespace(); err != nil && db.setupErr == nil {
		db.setupErr = fmt.Errorf("teardown: %w", err)
		fmt.Fprintf(b.stderr, "bench: daemons teardown FAILED: %v\n", err)
	}
	for _, d := range db.sides {
		if d.clientLog != nil {
			d.clientLog.Close()
		}
	}
	db.removeCgroups()
}

// removeContainers deletes every container of the benchmark's namespace
// through d's daemon (started again if it is down) and checks that none
// is left: `xctl rm -f`; `ctr task rm -f` then `ctr container rm`.
func (db *daemonBench) removeContainers(d *daemonSide) error {
	if d.cmd == nil {
		if err := db.startDaemon(d); err != nil {
			return err
		}
	}
	if err := db.waitUp(d, -1); err != nil {
		return err
	}
	type step struct{ list, rm []string }
	steps := []step{{[]string{"ps", "-a", "-q"}, []string{"rm", "-f"}}}
	if d.ref {
		steps = []step{
			{[]string{"task", "ls", "-q"}, []string{"task", "rm", "-f"}},
			{[]string{"container", "ls", "-q"}, []string{"container", "rm"}},
		}
	}
	var errs []error
	for _, s := range steps {
		out, err := db.clientOutput(d, s.list...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			if _, err := db.clientOutput(d, append(slices.Clone(s.rm), ids...)...); err != nil {
				errs = append(errs, err)
			}
		}
		out, err = db.clientOutput(d, s.list...)
		if err == nil && len(strings.Fields(string(out))) > 0 {
			err = fmt.Errorf("left after %s: %s", strings.Join(s.rm, " "), strings.Join(strings.Fields(string(out)), " "))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// endNamespace checks the private mount namespace once the daemons are
// stopped: no process left in it but the anchor (a leftover is reported
// and killed by its pidfd; all descend from processes the bench started),
// and no shim socket or mount of ours left in it. Then it kills the
// anchor, which ends the namespace and its /run tmpfs.
func (db *daemonBench) endNamespace() error {
	if db.anchor == nil {
		return nil
	}
	var errs []error
	if db.anchorNS != "" {
		// Shims exit shortly after their container is deleted.
		var left []int
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			left = nsProcs(db.anchorNS, db.anchorPid)
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
		}
		for _, pid := range left {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			errs = append(errs, fmt.Errorf("process %d (%s) left in the private namespace; killed", pid, strings.TrimSpace(string(comm))))
			if fd, err := unix.PidfdOpen(pid, 0); err == nil {
				_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
				unix.Close(fd)
			}
		}
		root := fmt.Sprintf("/proc/%d/root", db.anchorPid)
		for _, d := range db.sides {
			dir := "/run/xstack/s"
			if d.ref {
				dir = "/run/containerd/s"
			}
			if ents, err := os.ReadDir(root + dir); err == nil && len(ents) > 0 {
				d.note(fmt.Sprintf("%d shim socket(s) left in %s (removed with the namespace)", len(ents), dir))
			}
		}
		if mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", db.anchorPid)); err == nil {
			for _, line := range strings.Split(string(mi), "\n") {
				if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(unescapeMountinfo(f[4]), db.dir+"/") {
					errs = append(errs, fmt.Errorf("mount %s left in the private namespace", unescapeMountinfo(f[4])))
				}
			}
		}
	}
	if err := db.anchor.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		errs = append(errs, fmt.Errorf("kill the anchor %d: %w", db.anchorPid, err))
	}
	_ = db.anchor.Wait() // killed: a non-nil error is expected
	db.anchor = nil
	// Mounts made in the namespace must not have reached ours.
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(unescapeMountinfo(f[4]), db.dir+"/") {
				errs = append(errs, fmt.Errorf("mount %s left in the host namespace", unescapeMountinfo(f[4])))
			}
		}
	}
	return errors.Join(errs...)
}

// nsProcs lists the live processes in the mount namespace ns but skip.
func nsProcs(ns string, skip int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == skip {
			continue
		}
		// A zombie has no namespaces: the readlink fails.
		if link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil && link == ns {
			pids = append(pids, pid)
		}
	}
	return pids
}

// rememberXdCgroups notes the hierarchies without an /xd directory: xd
// creates it, and the benchmark removes it again if it is empty.
func (db *daemonBench) rememberXdCgroups() error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		top := filepath.Join(m, "xd")
		if _, err := os.Stat(top); errors.Is(err, fs.ErrNotExist) {
			db.xdCgroupTops = append(db.xdCgroupTops, top)
		}
	}
	return nil
}

// removeCgroups removes the cgroups of the benchmark's namespace:
// /<ns>/<id> (containerd) and /xd/<ns>/<id> (xd) in every hierarchy. The
// runtimes remove each container's own cgroup when it is deleted; one
// still there is noted. /xd goes too if the benchmark created it and it is
// empty.
func (db *daemonBench) removeCgroups() {
	mounts, _ := cgroupMounts()
	for _, d := range db.sides {
		parent := db.ns
		if !d.ref {
			parent = filepath.Join("xd", db.ns)
		}
		left := map[string]bool{}
		for _, m := range mounts {
			ents, _ := os.ReadDir(filepath.Join(m, parent))
			for _, e := range ents {
				if e.IsDir() {
					left[e.Name()] = true
				}
			}
		}
		if len(left) > 0 {
			d.note(fmt.Sprintf("cgroups of %d deleted container(s) left under /%s (removed)", len(left), parent))
		}
		if err := removeCgroupParent(parent); err != nil {
			d.fail(fmt.Errorf("teardown: %w", err))
		}
	}
	for _, top := range db.xdCgroupTops {
		// Not empty: another xd uses it now.
		_ = os.Remove(top)
	}
}

// daemonFigures are the summaries of one daemon, in ms.
type daemonFigures struct {
	RunRm       Summary `json:"run_rm_ms"`
	RunDetached Summary `json:"run_detached_ms"`
	List        Summary `json:"list_ms"`
	Restart     Summary `json:"restart_ms"`
	Stop        Summary `json:"stop_ms"`
}

func summarizeDaemon(d *daemonSide) daemonFigures {
	return daemonFigures{
		RunRm:       Summarize(Millis(d.run)),
		RunDetached: Summarize(Millis(d.detached)),
		List:        Summarize(Millis(d.list)),
		Restart:     Summarize(Millis(d.restart)),
		Stop:        Summarize(Millis(d.stop)),
	}
}

// daemonMetric is one row of the daemon table and one key of its ratios.
// label is a format given the report's n, list, restart containers and
// restarts.
type daemonMetric struct {
	key    string
	label  string
	get    func(*daemonFigures) Summary
	stat   string // "median", "p90" or "max"
	target float64
}

var daemonMetrics = []daemonMetric{
	{"run_rm_median", "run --rm /bin/true, n=%[1]d, median", func(f *daemonFigures) Summary { return f.RunRm }, "median", 0.33},
	{"run_rm_p90", "run --rm /bin/true, p90", func(f *daemonFigures) Summary { return f.RunRm }, "p90", 0},
	{"run_detached_median", "run -d /bin/sleep, n=%[3]d, median", func(f *daemonFigures) Summary { return f.RunDetached }, "median", 0},
	{"list_median", "list %[2]d running, n=%[1]d, median", func(f *daemonFigures) Summary { return f.List }, "median", 0.5},
	{"list_p90", "list %[2]d running, p90", func(f *daemonFigures) Summary { return f.List }, "p90", 0},
	{"restart_median", "restart with %[3]d running, n=%[4]d, median", func(f *daemonFigures) Summary { return f.Restart }, "median", 0.25},
	{"restart_max", "restart with %[3]d running, max", func(f *daemonFigures) Summary { return f.Restart }, "max", 0},
	{"stop_median", "stop: SIGTERM until exit, median", func(f *daemonFigures) Summary { return f.Stop }, "median", 0},
}

func (m daemonMetric) value(f *daemonFigures) float64 {
	s := m.get(f)
	switch m.stat {
	case "p90":
		return s.P90
	case "max":
		return s.Max
	}
	return s.Median
}

type daemonSideReport struct {
	Name          string            `json:"name"`
	Path          string            `json:"path"`
	Version       string            `json:"version"`
	Client        string            `json:"client"`
	ClientPath    string            `json:"client_path"`
	ClientVersion string            `json:"client_version"`
	Runtime       string            `json:"runtime"`
	Commands      map[string]string `json:"commands"`
	Running       int               `json:"running"`
	Lost          int               `json:"lost"`
	Error         string            `json:"error,omitempty"`
	Notes         []string          `json:"notes,omitempty"`
	Figures       daemonFigures     `json:"figures"`
	RestartMs     []jnum            `json:"restart_samples_ms"`
	Scale         *scaleFigures     `json:"scale,omitempty"`
}

type daemonReport struct {
	N                 int                `json:"n"`
	ListContainers    int                `json:"list_containers"`
	RestartContainers int                `json:"restart_containers"`
	Restarts          int                `json:"restarts"`
	Image             string             `json:"image"`
	Namespace         string             `json:"namespace"`
	Method            string             `json:"method"`
	Daemons           []daemonSideReport `json:"daemons"`
	Skipped           []skipped          `json:"skipped,omitempty"`
	Ratios            []ratioReport      `json:"ratios"`
	// Targets are reference.md's ceilings on the ratios; TargetMet says
	// whether each was met.
	Targets   map[string]jnum `json:"targets"`
	TargetMet map[string]bool `json:"target_met,omitempty"`
	Error     string          `json:"error,omitempty"`
	Seconds   jnum            `json:"seconds"`
	// Interrupted: stopped by a signal.
	Interrupted bool `json:"interrupted,omitempty"`
	OK          bool `json:"ok"`
}

const daemonMethod = "both daemons and their clients run in one private mount namespace with a tmpfs on /run (entered with nsenter, " +
	"so each client call pays the same nsenter exec); each client call is timed as fork+exec+wait, the daemons taking turns in a rotating order; " +
	"restart: SIGTERM, wait for the exit, check every container init is alive, then from the start of the new daemon process until a " +
	"listing polled every 10 ms (xctl ps -q lines, ctr task ls RUNNING rows) shows all of them, then check they kept their pids"

func (db *daemonBench) report() *daemonReport {
	r := &daemonReport{
		N: db.o.daemonN, ListContainers: db.o.daemonList, RestartContainers: db.o.daemonRestart, Restarts: db.o.daemonRestarts,
		Image: db.imageRef, Namespace: db.ns, Method: daemonMethod, Skipped: db.skipped,
		Targets:     map[string]jnum{},
		Seconds:     jnum(db.elapsed.Seconds()),
		Interrupted: db.stopped,
		OK:          !db.missingRef && !db.stopped && db.setupErr == nil,
	}
	if db.setupErr != nil {
		r.Error = db.setupErr.Error()
	}
	figs := map[string]*daemonFigures{}
	for _, d := range db.sides {
		f := summarizeDaemon(d)
		figs[d.name] = &f
		dr := daemonSideReport{
			Name: d.name, Path: d.path, Version: d.version,
			Client: d.client, ClientPath: d.clientPath, ClientVersion: d.clientVer, Runtime: d.runtime,
			Commands: map[string]string{
				"run_rm":       strings.Join(append([]string{d.client}, d.runRmArgs(db.imageRef, "ID")...), " "),
				"run_detached": strings.Join(append([]string{d.client}, d.runDetachedArgs(db.imageRef, "ID")...), " "),
				"list":         strings.Join(append([]string{d.client}, d.listArgs()...), " "),
				"poll":         strings.Join(append([]string{d.client}, d.countArgs()...), " "),
			},
			Running: d.restartRunning, Lost: d.lost, Notes: d.notes, Figures: f,
			RestartMs: []jnum{}, Scale: summarizeScale(d),
		}
		for _, ms := range Millis(d.restart) {
			dr.RestartMs = append(dr.RestartMs, jnum(ms))
		}
		if d.err != nil {
			dr.Error = d.err.Error()
			r.OK = false
		}
		r.Daemons = append(r.Daemons, dr)
	}
	for _, m := range daemonMetrics {
		if m.target > 0 {
			r.Targets[m.key] = jnum(m.target)
		}
	}
	if figs["xd"] != nil && figs["containerd"] != nil {
		rr := ratioReport{Ratio: "xd/containerd", Num: "xd", Den: "containerd", Values: map[string]jnum{}}
		r.TargetMet = map[string]bool{}
		for _, m := range daemonMetrics {
			v := Ratio(m.value(figs["xd"]), m.value(figs["containerd"]))
			rr.Values[m.key] = jnum(v)
			if m.target > 0 && !math.IsNaN(v) {
				r.TargetMet[m.key] = v <= m.target
			}
		}
		r.Ratios = append(r.Ratios, rr)
	}
	return r
}

// printDaemonTable writes the daemon section of the human-readable report.
func printDaemonTable(buf *bytes.Buffer, r *daemonReport) {
	fmt.Fprintf(buf, "\ndaemons: private xd and containerd in one private mount namespace (tmpfs on /run), image %s, namespace %s\n",
		r.Image, r.Namespace)
	for _, s := range r.Skipped {
		fmt.Fprintf(buf, "  %s: %s: not benchmarked\n", s.Name, s.Reason)
	}
	for _, d := range r.Daemons {
		fmt.Fprintf(buf, "  %-11s %s (%s); client %s (%s); %s\n", d.Name, d.Path, d.Version, d.ClientPath, d.ClientVersion, d.Runtime)
	}
	for _, d := range r.Daemons {
		fmt.Fprintf(buf, "  %-11s timed: %s | %s | %s\n", d.Name, d.Commands["run_rm"], d.Commands["run_detached"], d.Commands["list"])
	}
	const labelW, colW = 44, 13
	fmt.Fprintf(buf, "\n%-*s", labelW, "client calls (ms)")
	for _, d := range r.Daemons {
		fmt.Fprintf(buf, "%*s", colW, d.Name)
	}
	for _, ra := range r.Ratios {
		fmt.Fprintf(buf, "%*s", colW+2, ra.Ratio)
	}
	if len(r.Ratios) > 0 {
		buf.WriteString("   target")
	}
	buf.WriteByte('\n')
	for _, m := range daemonMetrics {
		label := m.label
		if strings.Contains(label, "%") {
			label = fmt.Sprintf(label, r.N, r.ListContainers, r.RestartContainers, r.Restarts)
		}
		fmt.Fprintf(buf, "  %-*s", labelW-2, label)
		for i := range r.Daemons {
			fmt.Fprintf(buf, "%*s", colW, fmtNum(m.value(&r.Daemons[i].Figures), 1))
		}
		for _, ra := range r.Ratios {
			fmt.Fprintf(buf, "%*s", colW+2, fmtNum(float64(ra.Values[m.key]), 2))
		}
		if met, ok := r.TargetMet[m.key]; ok {
			v := "met"
			if !met {
				v = "NOT met"
			}
			fmt.Fprintf(buf, "   ≤ %.2g %s", m.target, v)
		}
		buf.WriteByte('\n')
	}
	for _, d := range r.Daemons {
		fmt.Fprintf(buf, "  %s: %d running at the restarts, %d lost; restarts (ms): %s\n", d.Name, d.Running, d.Lost, fmtSamples(d.RestartMs))
	}
	printScaleTable(buf, r)
	for _, d := range r.Daemons {
		for _, n := range d.Notes {
			fmt.Fprintf(buf, "  note: %s: %s\n", d.Name, n)
		}
	}
	if r.Interrupted {
		buf.WriteString("daemons: interrupted\n")
	}
	if r.Error != "" {
		fmt.Fprintf(buf, "daemons FAILED: %s\n", r.Error)
	}
	for _, d := range r.Daemons {
		if d.Error != "" {
			fmt.Fprintf(buf, "%s FAILED: %s\n", d.Name, d.Error)
		}
	}
}

func fmtSamples(xs []jnum) string {
	if len(xs) == 0 {
		return "-"
	}
	var s []string
	for _, x := range xs {
		s = append(s, fmtNum(float64(x), 0))
	}
	return strings.Join(s, " ")
}
