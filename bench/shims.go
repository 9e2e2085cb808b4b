package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	eventsapi "github.com/containerd/containerd/api/services/ttrpc/events/v1"
	runopts "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The shim memory benchmark: N sleeping containers under each shim
// configuration, the shims driven exactly as containerd 1.6 drives them
// (shim-protocol.md §1.2, §4.4), then the memory and threads of every shim
// process. See doc.go.

const (
	// refShim is the reference shim's name.
	refShim = "containerd-shim-runc-v2"
	// nsMetadataKey carries the namespace on every ttrpc call.
	nsMetadataKey = "containerd-namespace-ttrpc"
	// optionsTypeURL is the bare type URL containerd 1.6 sends and expects.
	optionsTypeURL = "containerd.runc.v1.Options"
	// publishBinary is given as -publish-binary; 1.6-era shims never run it.
	publishBinary = "/bin/true"
)

// shimContainerArgs is the process of every shim benchmark container: it
// outlives the benchmark by far and uses no CPU.
var shimContainerArgs = []string{"/bin/sleep", "3600"}

// shimConfig is one shim binary driving one OCI runtime, and its samples.
type shimConfig struct {
	// name is the column: "runc-v2", "xshim+runc", "xshim+xrunc".
	name string
	// tag goes into container ids.
	tag         string
	shimName    string // refShim or "xshim"
	shimPath    string // the binary as installed or built
	exe         string // our private copy of it, which is what runs
	version     string
	runtimeName string
	runtimePath string
	runtimeVer  string
	ref         bool
	namespace   string
	// root is containerd.runc.v1.Options.root: runtime state goes to
	// root/<namespace>, private to the benchmark.
	root      string
	opts      *anypb.Any
	optsBytes []byte

	shims   []*shimInstance
	samples []shimSample
	events  map[string]int
	err     error
	// notes are odd things seen, once each; teardown adds them from
	// several goroutines.
	notesMu sync.Mutex
	notes   []string
}

// shimInstance is one container and its shim.
type shimInstance struct {
	cfg    *shimConfig
	id     string
	bundle string

	logFile *os.File
	log     *tailBuffer
	logDone chan struct{}

	ranStart bool
	socket   string
	client   *ttrpc.Client
	task     taskapi.TTRPCTaskService
	created  bool
	taskPid  int
	shimPid  int
	pidfd    int
	// ourChild: the shim was reparented to us (we are the subreaper), so
	// we reap it.
	ourChild bool
}

// shimSample is the measurement of one shim process.
type shimSample struct {
	ID       string `json:"id"`
	Pid      int    `json:"pid"`
	PssKiB   int64  `json:"pss_kib"`
	USSKiB   int64  `json:"uss_kib"`
	RssKiB   int64  `json:"rss_kib"`
	PssAnon  int64  `json:"pss_anon_kib"`
	PssFile  int64  `json:"pss_file_kib"`
	Threads  int    `json:"threads"`
	Children int    `json:"children"`
}

// shimBench is the whole shim benchmark.
type shimBench struct {
	n      int
	settle time.Duration
	dir    string
	// address is given as -address: a socket path of ours that nobody
	// listens on (1.6-era shims only hash it into their socket name).
	address string
	// ttrpcAddr is $TTRPC_ADDRESS, where our events server listens.
	ttrpcAddr string
	configs   []*shimConfig
	skipped   []skipped
	// missingRef: the reference shim or runc is missing.
	missingRef bool

	evMu     sync.Mutex
	events   map[string]map[string]int // namespace → topic → count
	server   *ttrpc.Server
	listener net.Listener
	served   chan struct{}

	elapsed time.Duration
	stopped bool
}

// newShimBench prepares the shim configurations: the reference shim
// driving runc, and xshim driving each runtime of -shim-runtimes. A missing
// xshim or xrunc is reported and skipped; a missing reference is a failure.
func newShimBench(o options, tmp string) (*shimBench, error) {
	sb := &shimBench{n: o.shimContainers, settle: o.shimSettle, dir: filepath.Join(tmp, "shims")}
	if err := os.Mkdir(sb.dir, 0o711); err != nil {
		return nil, err
	}
	sb.address = filepath.Join(sb.dir, "d.sock")
	sb.ttrpcAddr = sb.address + ".ttrpc"

	type want struct{ name, tag, shim, shimPath, rt, rtPath string }
	wants := []want{{"runc-v2", "ref", refShim, o.refShim, "runc", o.runc}}
	rts, err := parseShimRuntimes(o.shimRuntimes)
	if err != nil {
		return nil, err
	}
	for _, rt := range rts {
		path := map[string]string{"runc": o.runc, "xrunc": o.xrunc}[rt]
		wants = append(wants, want{"xshim+" + rt, "x" + rt[:1], "xshim", o.xshim, rt, path})
	}
	for _, w := range wants {
		bin := w.shim
		if w.shim == "xshim" && w.shimPath == "" {
			sb.skipped = append(sb.skipped, skipped{Name: w.name, Reason: "xshim: XSTACK_BINDIR is not set and -xshim was not given"})
			continue
		}
		reason := checkBinary(bin, w.shimPath)
		if reason == "" {
			bin = w.rt
			reason = checkBinary(bin, w.rtPath)
		}
		if reason != "" {
			sb.skipped = append(sb.skipped, skipped{Name: w.name, Reason: bin + ": " + reason})
			if bin == refShim || bin == "runc" {
				sb.missingRef = true
			}
			continue
		}
		c := &shimConfig{
			name: w.name, tag: w.tag, shimName: w.shim, shimPath: w.shimPath,
			version:     shimVersion(w.shimPath),
			runtimeName: w.rt, runtimePath: w.rtPath, runtimeVer: version(w.rtPath),
			ref:       w.shim == refShim,
			namespace: "xstack-bench-" + strings.ReplaceAll(w.name, "+", "-"),
			root:      filepath.Join(sb.dir, "root-"+strings.ReplaceAll(w.name, "+", "-")),
		}
		// A private copy of the binary per configuration: PSS divides a
		// page among every process that maps it, so our N shims must be
		// the only users of their binary, whoever else runs xshim or
		// containerd-shim-runc-v2 on this machine meanwhile.
		bindir := filepath.Join(sb.dir, "bin-"+c.tag)
		if err := os.Mkdir(bindir, 0o755); err != nil {
			return nil, err
		}
		c.exe = filepath.Join(bindir, filepath.Base(w.shimPath))
		if err := copyFile(w.shimPath, c.exe, 0o755); err != nil {
			return nil, fmt.Errorf("copy %s: %w", w.shimPath, err)
		}
		if err := os.Mkdir(c.root, 0o700); err != nil {
			return nil, err
		}
		if c.opts, err = typeurl.MarshalAnyToProto(&runopts.Options{BinaryName: c.runtimePath, Root: c.root}); err != nil {
			return nil, err
		}
		if c.opts.GetTypeUrl() != optionsTypeURL {
			return nil, fmt.Errorf("runc options marshal with type URL %q, want the bare %q", c.opts.GetTypeUrl(), optionsTypeURL)
		}
		if c.optsBytes, err = proto.Marshal(c.opts); err != nil {
			return nil, err
		}
		sb.configs = append(sb.configs, c)
	}
	return sb, nil
}

func parseShimRuntimes(s string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "" || slices.Contains(out, n):
			continue
		case n != "runc" && n != "xrunc":
			return nil, fmt.Errorf("unknown shim runtime %q (want runc, xrunc)", n)
		}
		out = append(out, n)
	}
	return out, nil
}

// shimVersion returns the Version line of `shim -v`.
func shimVersion(path string) string {
	out, err := exec.Command(path, "-v").Output()
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// run starts the containers, lets them settle, measures the shims and
// tears everything down. stop is polled between container starts. It
// reports whether anything failed.
func (sb *shimBench) run(b *bench) bool {
	if len(sb.configs) == 0 {
		return true
	}
	start := time.Now()
	var names []string
	for _, c := range sb.configs {
		names = append(names, c.name)
	}
	fmt.Fprintf(b.stderr, "bench: shims %s, %d sleeping containers each\n", strings.Join(names, ", "), sb.n)
	if err := sb.serveEvents(); err != nil {
		for _, c := range sb.configs {
			c.err = fmt.Errorf("events server: %w", err)
		}
		return true
	}
	defer sb.stopEvents()

	// The configurations take turns, in a rotating order, so each starts
	// its containers over the same stretch of time.
	for i := 0; i < sb.n && !b.stop.Load(); i++ {
		for _, c := range rotate(sb.configs, i) {
			if c.err != nil || b.stop.Load() {
				continue
			}
			if err := sb.startOne(b, c, i); err != nil {
				c.err = fmt.Errorf("container %d: %w", i, err)
				fmt.Fprintf(b.stderr, "bench: %s FAILED: %v\n", c.name, c.err)
			}
		}
	}
	sb.stopped = b.stop.Load()
	if !sb.stopped {
		time.Sleep(sb.settle)
		for _, c := range sb.configs {
			if c.err == nil {
				if err := sb.measure(c); err != nil {
					c.err = err
					fmt.Fprintf(b.stderr, "bench: %s FAILED: %v\n", c.name, c.err)
				}
			}
		}
	}
	sb.teardown(b)
	sb.elapsed = time.Since(start)
	what := "measured and torn down"
	if sb.stopped {
		what = "interrupted; torn down"
	}
	fmt.Fprintf(b.stderr, "bench: shims %s in %.1fs\n", what, sb.elapsed.Seconds())

	failed := sb.missingRef || sb.stopped
	for _, c := range sb.configs {
		if c.err != nil {
			failed = true
		}
	}
	return failed
}

// shimEnv is the environment of start and delete: ours plus what
// containerd 1.6 adds.
func (sb *shimBench) shimEnv() []string {
	return append(slices.Clone(childEnv), "GOMAXPROCS=2", "TTRPC_ADDRESS="+sb.ttrpcAddr)
}

// shimCmd is `<shim> -namespace NS -address A -publish-binary P -id ID
// [-bundle B] action`, run in the bundle as containerd runs it.
func (sb *shimBench) shimCmd(ctx context.Context, s *shimInstance, action string) *exec.Cmd {
	c := s.cfg
	args := []string{"-namespace", c.namespace, "-address", sb.address, "-publish-binary", publishBinary, "-id", s.id}
	if action == "delete" {
		args = append(args, "-bundle", s.bundle)
	}
	cmd := exec.CommandContext(ctx, c.exe, append(args, action)...)
	cmd.Dir = s.bundle
	cmd.Env = sb.shimEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// start's daemon must not keep our pipes; if it does, give up on
	// them rather than wait for the shim to exit.
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// rpcCtx is a call context with the namespace metadata containerd sets.
func (s *shimInstance) rpcCtx(timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	return ttrpc.WithMetadata(ctx, ttrpc.MD{nsMetadataKey: {s.cfg.namespace}}), cancel
}

// startOne makes the bundle of container i of c, starts its shim, creates
// and starts the container, and finds the shim's pid.
func (sb *shimBench) startOne(b *bench, c *shimConfig, i int) error {
	id := fmt.Sprintf("xb%d-%s-%d", os.Getpid(), c.tag, i)
	s := &shimInstance{cfg: c, id: id, bundle: filepath.Join(sb.dir, c.namespace, id), pidfd: -1}
	c.shims = append(c.shims, s) // torn down whatever happens below
	if err := os.MkdirAll(filepath.Dir(s.bundle), 0o711); err != nil {
		return err
	}
	if err := os.Mkdir(s.bundle, 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(s.bundle, "rootfs"), 0o755); err != nil {
		return err
	}
	// The rootfs is the shared read-only busybox tree, by absolute path,
	// so the shims mount nothing (as with `ctr run --rootfs DIR`).
	if err := writeBundle(s.bundle, benchSpec(b.rootfs, "/"+b.cgParent+"/"+id, shimContainerArgs)); err != nil {
		return err
	}
	if err := s.openLog(); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), b.o.waitTimeout)
	cmd := sb.shimCmd(ctx, s, "start")
	cmd.Stdin = bytes.NewReader(c.optsBytes)
	s.ranStart = true
	out, err := cmd.CombinedOutput()
	cancel()
	if err != nil {
		return fmt.Errorf("%s start: %w: %s%s", c.shimName, err, strings.TrimSpace(string(out)), s.logTail())
	}
	addr := strings.TrimSpace(string(out))
	if strings.HasPrefix(addr, "{") {
		// containerd ≥ 1.7's bootstrap JSON.
		var boot struct {
			Address string `json:"address"`
		}
		if err := json.Unmarshal([]byte(addr), &boot); err != nil {
			return fmt.Errorf("%s start printed %q: %w", c.shimName, addr, err)
		}
		addr = boot.Address
	}
	path, ok := strings.CutPrefix(addr, "unix://")
	if !ok || !filepath.IsAbs(path) {
		return fmt.Errorf("%s start printed %q, want unix:///path", c.shimName, out)
	}
	s.socket = path
	conn, err := net.DialTimeout("unix", path, 10*time.Second)
	if err != nil {
		return fmt.Errorf("dial the shim: %w%s", err, s.logTail())
	}
	s.client = ttrpc.NewClient(conn)
	s.task = taskapi.NewTTRPCTaskClient(s.client)

	rctx, rcancel := s.rpcCtx(b.o.waitTimeout)
	defer rcancel()
	if _, err := s.task.Create(rctx, &taskapi.CreateTaskRequest{ID: id, Bundle: s.bundle, Options: c.opts}); err != nil {
		return fmt.Errorf("Create: %w%s", err, s.logTail())
	}
	s.created = true
	if _, err := s.task.Start(rctx, &taskapi.StartRequest{ID: id}); err != nil {
		return fmt.Errorf("Start: %w%s", err, s.logTail())
	}
	cr, err := s.task.Connect(rctx, &taskapi.ConnectRequest{ID: id})
	if err != nil {
		return fmt.Errorf("Connect: %w", err)
	}
	s.shimPid, s.taskPid = int(cr.GetShimPid()), int(cr.GetTaskPid())
	if s.shimPid <= 0 || s.taskPid <= 0 {
		return fmt.Errorf("Connect: shim pid %d, task pid %d", s.shimPid, s.taskPid)
	}
	if s.pidfd, err = unix.PidfdOpen(s.shimPid, 0); err != nil {
		return fmt.Errorf("pidfd_open(shim %d): %w", s.shimPid, err)
	}
	// start exited, so its daemon was reparented to us, the subreaper.
	if ppid, err := procPPid(s.shimPid); err == nil && ppid == os.Getpid() {
		s.ourChild = true
	} else if err == nil {
		c.note(fmt.Sprintf("shim %d has parent %d, not the bench", s.shimPid, ppid))
	}
	if ppid, err := procPPid(s.taskPid); err != nil || ppid != s.shimPid {
		return fmt.Errorf("container init %d is not a child of shim %d (parent %d, %v)", s.taskPid, s.shimPid, ppid, err)
	}
	return nil
}

// note records something odd about c once.
func (c *shimConfig) note(s string) {
	c.notesMu.Lock()
	defer c.notesMu.Unlock()
	if !slices.Contains(c.notes, s) {
		c.notes = append(c.notes, s)
	}
}

// measure reads the memory and threads of every shim of c. The container
// must still be running: its init must still be the shim's child.
func (sb *shimBench) measure(c *shimConfig) error {
	for _, s := range c.shims {
		m, err := readProcMem(s.shimPid)
		if err != nil {
			return fmt.Errorf("shim %d of %s: %w", s.shimPid, s.id, err)
		}
		kids, err := procChildren(s.shimPid)
		if err != nil {
			return fmt.Errorf("shim %d of %s: %w", s.shimPid, s.id, err)
		}
		if !slices.Contains(kids, s.taskPid) {
			return fmt.Errorf("container %s (init %d) is no longer running under shim %d", s.id, s.taskPid, s.shimPid)
		}
		if len(kids) != 1 {
			c.note(fmt.Sprintf("a shim has %d children (the container init and others: %v)", len(kids), kids))
		}
		c.samples = append(c.samples, shimSample{
			ID: s.id, Pid: s.shimPid,
			PssKiB: m.Pss, USSKiB: m.USS(), RssKiB: m.Rss, PssAnon: m.PssAnon, PssFile: m.PssFile,
			Threads: m.Threads, Children: len(kids),
		})
	}
	return nil
}

// teardown takes every container and shim down as containerd does, a few
// at a time, then checks that nothing was left behind.
func (sb *shimBench) teardown(b *bench) {
	type job struct {
		s    *shimInstance
		errs []error
	}
	var jobs []*job
	for _, c := range sb.configs {
		for _, s := range c.shims {
			jobs = append(jobs, &job{s: s})
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			j.errs = sb.teardownOne(b, j.s)
		}()
	}
	wg.Wait()
	for _, j := range jobs {
		if err := errors.Join(j.errs...); err != nil {
			c := j.s.cfg
			err = fmt.Errorf("teardown of %s: %w", j.s.id, err)
			fmt.Fprintf(b.stderr, "bench: %s FAILED: %v\n", c.name, err)
			if c.err == nil {
				c.err = err
			}
		}
	}
	sb.waitEvents()
	for _, c := range sb.configs {
		if err := sb.checkLeftovers(b, c); err != nil {
			fmt.Fprintf(b.stderr, "bench: %s FAILED: %v\n", c.name, err)
			if c.err == nil {
				c.err = err
			}
		}
	}
}

// closedErr reports errors that mean the shim went away while answering,
// which Shutdown may do.
func closedErr(err error) bool {
	return err == nil || errors.Is(err, ttrpc.ErrClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "closed")
}

// teardownOne is containerd's `task kill -9`, `task rm`: Kill, Wait,
// Delete, Shutdown, close, then `shim delete`; then the shim must exit and
// take its socket with it. It returns everything that went wrong.
func (sb *shimBench) teardownOne(b *bench, s *shimInstance) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	to := b.o.waitTimeout
	if s.task != nil {
		ctx, cancel := s.rpcCtx(to)
		if s.created {
			if _, err := s.task.Kill(ctx, &taskapi.KillRequest{ID: s.id, Signal: uint32(unix.SIGKILL)}); err != nil {
				fail("Kill: %w", err)
			}
			if r, err := s.task.Wait(ctx, &taskapi.WaitRequest{ID: s.id}); err != nil {
				fail("Wait: %w", err)
			} else if r.GetExitStatus() != 128+uint32(unix.SIGKILL) {
				fail("Wait: exit status %d, want %d", r.GetExitStatus(), 128+unix.SIGKILL)
			}
			if _, err := s.task.Delete(ctx, &taskapi.DeleteRequest{ID: s.id}); err != nil {
				fail("Delete: %w", err)
			}
		}
		if _, err := s.task.Shutdown(ctx, &taskapi.ShutdownRequest{ID: s.id}); !closedErr(err) {
			fail("Shutdown: %w", err)
		}
		cancel()
		if err := s.client.Close(); err != nil && !closedErr(err) {
			fail("close: %w", err)
		}
	}
	// The shim removes its socket when it exits after Shutdown.
	if s.pidfd >= 0 {
		if err := s.waitShim(to); err != nil {
			errs = append(errs, err)
		} else if s.socket != "" && exists(s.socket) {
			s.cfg.note("a shim left its socket when it exited after Shutdown (shim delete then has to remove it)")
		}
	}
	if s.ranStart {
		// containerd runs it after every disconnect: it must succeed and
		// print a DeleteResponse even though everything is gone.
		ctx, cancel := context.WithTimeout(context.Background(), to)
		cmd := sb.shimCmd(ctx, s, "delete")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		var dr taskapi.DeleteResponse
		if err != nil {
			fail("%s delete: %w: %s", s.cfg.shimName, err, strings.TrimSpace(stderr.String()))
		} else if err := proto.Unmarshal(stdout.Bytes(), &dr); err != nil {
			fail("%s delete printed no DeleteResponse: %w", s.cfg.shimName, err)
		}
	}
	if s.socket != "" && exists(s.socket) {
		fail("the shim's socket %s is left after Shutdown and shim delete", s.socket)
		_ = os.Remove(s.socket)
	}
	if s.logFile != nil {
		s.logFile.Close()
		<-s.logDone
	}
	if err := os.RemoveAll(s.bundle); err != nil {
		errs = append(errs, err)
	}
	return errs
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// waitShim waits for the shim process to exit after Shutdown and reaps it
// if it is our child. One still running is killed (by its pidfd) and
// reported.
func (s *shimInstance) waitShim(timeout time.Duration) error {
	defer func() {
		unix.Close(s.pidfd)
		s.pidfd = -1
	}()
	var err error
	exited, perr := pollPidfd(s.pidfd, timeout)
	if perr != nil {
		return perr
	}
	if !exited {
		err = fmt.Errorf("shim %d still running %v after Shutdown; killed", s.shimPid, timeout)
		if kerr := unix.PidfdSendSignal(s.pidfd, unix.SIGKILL, nil, 0); kerr != nil && kerr != unix.ESRCH {
			return errors.Join(err, kerr)
		}
		if _, perr := pollPidfd(s.pidfd, timeout); perr != nil {
			return errors.Join(err, perr)
		}
	}
	if s.ourChild {
		var ws unix.WaitStatus
		for {
			_, werr := unix.Wait4(s.shimPid, &ws, unix.WALL, nil)
			if werr == unix.EINTR {
				continue
			}
			if werr != nil {
				err = errors.Join(err, fmt.Errorf("wait4 shim %d: %w", s.shimPid, werr))
			} else if exited && !exitedZero(ws) {
				err = errors.Join(err, fmt.Errorf("shim %d: %s", s.shimPid, describeStatus(ws)))
			}
			break
		}
	}
	return err
}

// checkLeftovers looks for containers left in c's runtime root (deleting
// them) and removes c's namespace directory.
func (sb *shimBench) checkLeftovers(b *bench, c *shimConfig) error {
	var errs []error
	root := filepath.Join(c.root, c.namespace)
	if _, err := os.Stat(root); err == nil {
		rt := &Runtime{Name: c.runtimeName, Path: c.runtimePath, Root: root, Log: filepath.Join(sb.dir, c.tag+"-cleanup.log")}
		if err := rt.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(sb.dir, c.namespace)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// openLog makes the bundle's log FIFO and keeps a reader on it, as
// containerd does: without one the shim cannot start, and an unread FIFO
// would eventually block its logging. The last bytes are kept for errors.
func (s *shimInstance) openLog() error {
	path := filepath.Join(s.bundle, "log")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return fmt.Errorf("mkfifo %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	s.logFile = f
	s.log = &tailBuffer{max: 4096}
	s.logDone = make(chan struct{})
	go func() {
		defer close(s.logDone)
		_, _ = io.Copy(s.log, f)
	}()
	return nil
}

// logTail is the end of the shim's log, for an error message.
func (s *shimInstance) logTail() string {
	if s.log == nil {
		return ""
	}
	if t := strings.TrimSpace(s.log.String()); t != "" {
		return "; shim log: " + strings.ReplaceAll(t, "\n", "; ")
	}
	return ""
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// serveEvents serves containerd.services.events.ttrpc.v1.Events/Forward on
// $TTRPC_ADDRESS and counts the envelopes per namespace and topic, so the
// shims publish as they would to containerd instead of retrying.
func (sb *shimBench) serveEvents() error {
	srv, err := ttrpc.NewServer(ttrpc.WithServerHandshaker(ttrpc.UnixSocketRequireSameUser()))
	if err != nil {
		return err
	}
	eventsapi.RegisterTTRPCEventsService(srv, (*eventCounter)(sb))
	l, err := net.Listen("unix", sb.ttrpcAddr)
	if err != nil {
		srv.Close()
		return err
	}
	sb.events = map[string]map[string]int{}
	sb.server, sb.listener, sb.served = srv, l, make(chan struct{})
	go func() {
		defer close(sb.served)
		_ = srv.Serve(context.Background(), l)
	}()
	return nil
}

// eventCounter is the events service of a shimBench.
type eventCounter shimBench

func (e *eventCounter) Forward(_ context.Context, r *eventsapi.ForwardRequest) (*emptypb.Empty, error) {
	env := r.GetEnvelope()
	e.evMu.Lock()
	defer e.evMu.Unlock()
	m := e.events[env.GetNamespace()]
	if m == nil {
		m = map[string]int{}
		e.events[env.GetNamespace()] = m
	}
	m[env.GetTopic()]++
	return &emptypb.Empty{}, nil
}

// shimTopics are the events every container must cause, once each.
var shimTopics = []string{"/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"}

// waitEvents gives late events up to a second to arrive, then copies the
// counts into the configurations and notes any shortfall.
func (sb *shimBench) waitEvents() {
	if sb.server == nil {
		return
	}
	complete := func() bool {
		sb.evMu.Lock()
		defer sb.evMu.Unlock()
		for _, c := range sb.configs {
			for _, t := range shimTopics {
				if sb.events[c.namespace][t] < len(c.shims) {
					return false
				}
			}
		}
		return true
	}
	for deadline := time.Now().Add(time.Second); !complete() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	sb.evMu.Lock()
	defer sb.evMu.Unlock()
	for _, c := range sb.configs {
		c.events = map[string]int{}
		for t, n := range sb.events[c.namespace] {
			c.events[t] = n
		}
		for _, t := range shimTopics {
			if n := c.events[t]; n != len(c.shims) && c.err == nil {
				c.note(fmt.Sprintf("%d %s events for %d containers", n, t, len(c.shims)))
			}
		}
	}
}

func (sb *shimBench) stopEvents() {
	if sb.server == nil {
		return
	}
	sb.server.Close()
	<-sb.served
	_ = os.Remove(sb.ttrpcAddr)
}

// shimFigures are the summaries of one configuration, in MiB and threads.
type shimFigures struct {
	PSS     Summary `json:"pss_mib"`
	USS     Summary `json:"uss_mib"`
	RSS     Summary `json:"rss_mib"`
	PssAnon Summary `json:"pss_anon_mib"`
	PssFile Summary `json:"pss_file_mib"`
	Threads Summary `json:"threads"`
}

func summarizeShims(samples []shimSample) shimFigures {
	var pss, uss, rss, anon, file, threads []float64
	mib := func(kib int64) float64 { return float64(kib) / 1024 }
	for _, s := range samples {
		pss = append(pss, mib(s.PssKiB))
		uss = append(uss, mib(s.USSKiB))
		rss = append(rss, mib(s.RssKiB))
		if s.PssAnon >= 0 && s.PssFile >= 0 {
			anon = append(anon, mib(s.PssAnon))
			file = append(file, mib(s.PssFile))
		}
		threads = append(threads, float64(s.Threads))
	}
	return shimFigures{
		PSS: Summarize(pss), USS: Summarize(uss), RSS: Summarize(rss),
		PssAnon: Summarize(anon), PssFile: Summarize(file), Threads: Summarize(threads),
	}
}

// shimMetric is one row of the shim table and one key of its ratios.
type shimMetric struct {
	key   string
	label string
	get   func(*shimFigures) Summary
	max   bool
	// prec is the number of decimals in the table.
	prec int
}

var shimMetrics = []shimMetric{
	{"pss_median", "PSS, median (MiB)", func(f *shimFigures) Summary { return f.PSS }, false, 2},
	{"pss_max", "PSS, max (MiB)", func(f *shimFigures) Summary { return f.PSS }, true, 2},
	{"uss_median", "USS (private), median (MiB)", func(f *shimFigures) Summary { return f.USS }, false, 2},
	{"uss_max", "USS (private), max (MiB)", func(f *shimFigures) Summary { return f.USS }, true, 2},
	{"rss_median", "RSS, median (MiB)", func(f *shimFigures) Summary { return f.RSS }, false, 2},
	{"pss_anon_median", "PSS anon, median (MiB)", func(f *shimFigures) Summary { return f.PssAnon }, false, 2},
	{"pss_file_median", "PSS file, median (MiB)", func(f *shimFigures) Summary { return f.PssFile }, false, 2},
	{"threads_median", "threads, median", func(f *shimFigures) Summary { return f.Threads }, false, 1},
	{"threads_max", "threads, max", func(f *shimFigures) Summary { return f.Threads }, true, 0},
}

func (m shimMetric) value(f *shimFigures) float64 {
	s := m.get(f)
	if m.max {
		return s.Max
	}
	return s.Median
}

// Targets from reference.md for xshim.
const (
	targetPSSMiB   = 1.5
	targetUSSMiB   = 1.25
	targetPSSRatio = 0.5
)

type shimConfigReport struct {
	Name           string         `json:"name"`
	Shim           string         `json:"shim"`
	ShimPath       string         `json:"shim_path"`
	ShimVersion    string         `json:"shim_version"`
	Runtime        string         `json:"runtime"`
	RuntimePath    string         `json:"runtime_path"`
	RuntimeVersion string         `json:"runtime_version"`
	Namespace      string         `json:"namespace"`
	Error          string         `json:"error,omitempty"`
	Notes          []string       `json:"notes,omitempty"`
	Events         map[string]int `json:"events,omitempty"`
	Figures        shimFigures    `json:"figures"`
	// TargetMet is set for xshim: PSS and USS medians and the PSS ratio
	// against the reference within reference.md's targets.
	TargetMet *bool        `json:"target_met,omitempty"`
	Samples   []shimSample `json:"samples"`
}

type shimReport struct {
	Containers int                `json:"containers"`
	Command    []string           `json:"command"`
	SettleMs   int64              `json:"settle_ms"`
	Method     string             `json:"method"`
	Target     string             `json:"target"`
	Configs    []shimConfigReport `json:"configs"`
	Skipped    []skipped          `json:"skipped,omitempty"`
	Ratios     []ratioReport      `json:"ratios"`
	Seconds    jnum               `json:"seconds"`
	// Interrupted: stopped by a signal before the measurement.
	Interrupted bool `json:"interrupted,omitempty"`
	OK          bool `json:"ok"`
}

const shimMethod = "per shim process after all containers run and a settle pause: " +
	"PSS = Pss and USS = Private_Clean + Private_Dirty from /proc/PID/smaps_rollup, " +
	"RSS = Rss, threads from /proc/PID/status; each configuration runs its own copy of the shim binary"

func (sb *shimBench) report() *shimReport {
	r := &shimReport{
		Containers: sb.n, Command: shimContainerArgs, SettleMs: sb.settle.Milliseconds(),
		Method: shimMethod, Skipped: sb.skipped, Seconds: jnum(sb.elapsed.Seconds()),
		Target:      fmt.Sprintf("xshim: PSS ≤ %.2g MiB, USS ≤ %.3g MiB, PSS ≤ %.2g× %s's (medians)", targetPSSMiB, targetUSSMiB, targetPSSRatio, refShim),
		OK:          !sb.missingRef && !sb.stopped,
		Interrupted: sb.stopped,
	}
	var ref *shimFigures
	for _, c := range sb.configs {
		cr := shimConfigReport{
			Name: c.name, Shim: c.shimName, ShimPath: c.shimPath, ShimVersion: c.version,
			Runtime: c.runtimeName, RuntimePath: c.runtimePath, RuntimeVersion: c.runtimeVer,
			Namespace: c.namespace, Notes: c.notes, Events: c.events,
			Figures: summarizeShims(c.samples), Samples: c.samples,
		}
		if cr.Samples == nil {
			cr.Samples = []shimSample{}
		}
		if c.err != nil {
			cr.Error = c.err.Error()
			r.OK = false
		}
		r.Configs = append(r.Configs, cr)
		if c.ref && c.err == nil {
			ref = &r.Configs[len(r.Configs)-1].Figures
		}
	}
	for i := range r.Configs {
		c := &r.Configs[i]
		if c.Shim == refShim || ref == nil {
			continue
		}
		rr := ratioReport{Ratio: c.Name + "/" + sb.configs[0].name, Num: c.Name, Den: sb.configs[0].name, Values: map[string]jnum{}}
		for _, m := range shimMetrics {
			rr.Values[m.key] = jnum(Ratio(m.value(&c.Figures), m.value(ref)))
		}
		r.Ratios = append(r.Ratios, rr)
		if c.Error == "" && c.Figures.PSS.N > 0 && ref.PSS.N > 0 {
			met := c.Figures.PSS.Median <= targetPSSMiB && c.Figures.USS.Median <= targetUSSMiB &&
				float64(rr.Values["pss_median"]) <= targetPSSRatio
			c.TargetMet = &met
		}
	}
	return r
}

// printShimTable writes the shim section of the human-readable report.
func printShimTable(buf *bytes.Buffer, r *shimReport) {
	when := fmt.Sprintf("measured %.1fs after the last started", float64(r.SettleMs)/1000)
	if r.Interrupted {
		when = "interrupted before the measurement"
	}
	fmt.Fprintf(buf, "\nshims: %d sleeping containers (%s) per configuration, %s\n",
		r.Containers, strings.Join(r.Command, " "), when)
	for _, s := range r.Skipped {
		fmt.Fprintf(buf, "  %s: %s: not benchmarked\n", s.Name, s.Reason)
	}
	for _, c := range r.Configs {
		fmt.Fprintf(buf, "  %-12s %s (%s) driving %s (%s)\n", c.Name, c.ShimPath, c.ShimVersion, c.RuntimePath, c.RuntimeVersion)
	}
	const labelW, colW = 36, 13
	fmt.Fprintf(buf, "\n%-*s", labelW, "per shim process")
	for _, c := range r.Configs {
		fmt.Fprintf(buf, "%*s", colW, c.Name)
	}
	for _, ra := range r.Ratios {
		fmt.Fprintf(buf, "%*s", colW, ra.Num+"/")
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintf(buf, "\n%-*s", labelW+colW*len(r.Configs), "")
		for _, ra := range r.Ratios {
			fmt.Fprintf(buf, "%*s", colW, ra.Den)
		}
	}
	buf.WriteByte('\n')
	for _, m := range shimMetrics {
		fmt.Fprintf(buf, "  %-*s", labelW-2, m.label)
		for i := range r.Configs {
			fmt.Fprintf(buf, "%*s", colW, fmtNum(m.value(&r.Configs[i].Figures), m.prec))
		}
		for _, ra := range r.Ratios {
			fmt.Fprintf(buf, "%*s", colW, fmtNum(float64(ra.Values[m.key]), 2))
		}
		buf.WriteByte('\n')
	}
	var verdicts []string
	for _, c := range r.Configs {
		if c.TargetMet != nil {
			v := "met"
			if !*c.TargetMet {
				v = "NOT met"
			}
			verdicts = append(verdicts, c.Name+" "+v)
		}
	}
	if len(verdicts) > 0 {
		fmt.Fprintf(buf, "  target (reference.md) %s: %s\n", r.Target, strings.Join(verdicts, ", "))
	}
	for _, c := range r.Configs {
		for _, n := range c.Notes {
			fmt.Fprintf(buf, "  note: %s: %s\n", c.Name, n)
		}
	}
	for _, c := range r.Configs {
		if c.Error != "" {
			fmt.Fprintf(buf, "%s FAILED: %s\n", c.Name, c.Error)
		}
	}
}
