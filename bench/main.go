package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if os.Getenv(workerEnv) != "" {
		os.Exit(workerMain())
	}
	os.Exit(benchMain(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	n, warmup   int
	runtimes    string
	json        bool
	xrunc       string
	runc, crun  string
	busybox     string
	waitTimeout time.Duration
	keep        bool
	// The shim memory benchmark (shims.go).
	shims          bool
	shimContainers int
	shimRuntimes   string
	shimSettle     time.Duration
	xshim, refShim string
	// The daemon benchmark (daemons.go).
	daemons        bool
	daemonN        int
	daemonList     int
	daemonRestart  int
	daemonRestarts int
	daemonScale    int
	daemonImage    string
	xd, xctl       string
	containerd     string
	ctr            string
}

// target is one runtime under test and its samples.
type target struct {
	name    string
	path    string
	version string
	// isolation says where the runtime runs.
	isolation string
	rt        *Runtime
	ex        executor
	lifecycle []LifecycleSample
	state     []time.Duration
	run       []RunSample
	// rss holds the peak RSS (KiB) of create from the RSS probes.
	rss []int64
	// err is the first failure; a failed runtime is not measured further.
	err error
}

// floorArgs is the cheapest way to create the namespaces a container gets.
var floorArgs = []string{"--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "--cgroup", "/bin/true"}

func benchMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	bindir := os.Getenv("XSTACK_BINDIR")
	defXrunc, defXshim, defXd, defXctl := "", "", "", ""
	if bindir != "" {
		defXrunc = filepath.Join(bindir, "xrunc")
		defXshim = filepath.Join(bindir, "xshim")
		defXd = filepath.Join(bindir, "xd")
		defXctl = filepath.Join(bindir, "xctl")
	}
	fs.IntVar(&o.n, "n", 20, "measured containers per runtime and per measurement")
	fs.IntVar(&o.warmup, "warmup", 1, "unrecorded warm-up iterations")
	fs.StringVar(&o.runtimes, "runtimes", "xrunc,runc,crun", "runtimes to compare, comma-separated (xrunc, runc, crun), or none")
	fs.BoolVar(&o.json, "json", false, "print the figures as JSON instead of a table")
	fs.StringVar(&o.xrunc, "xrunc", defXrunc, "xrunc binary (default $XSTACK_BINDIR/xrunc)")
	fs.StringVar(&o.runc, "runc", "/usr/sbin/runc", "runc binary")
	fs.StringVar(&o.crun, "crun", "/usr/bin/crun", "crun binary")
	fs.StringVar(&o.busybox, "busybox", "/bin/busybox", "static busybox for the rootfs")
	fs.DurationVar(&o.waitTimeout, "wait-timeout", 30*time.Second, "how long to wait for a container to stop")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (bundles, roots, runtime logs)")
	fs.BoolVar(&o.shims, "shims", true, "run the shim memory benchmark (xshim vs containerd-shim-runc-v2)")
	fs.IntVar(&o.shimContainers, "shim-containers", 20, "sleeping containers per shim configuration")
	fs.StringVar(&o.shimRuntimes, "shim-runtimes", "runc,xrunc", "runtimes xshim drives, comma-separated (runc, xrunc); the reference shim drives runc")
	fs.DurationVar(&o.shimSettle, "shim-settle", 2*time.Second, "pause between the last container start and the shim measurement")
	fs.StringVar(&o.xshim, "xshim", defXshim, "xshim binary (default $XSTACK_BINDIR/xshim)")
	fs.StringVar(&o.refShim, "runc-shim", "/usr/bin/containerd-shim-runc-v2", "the reference shim binary")
	fs.BoolVar(&o.daemons, "daemons", true, "run the daemon benchmark (xd + xctl vs containerd + ctr)")
	fs.IntVar(&o.daemonN, "daemon-n", 20, "measured run --rm and list calls per daemon")
	fs.IntVar(&o.daemonList, "daemon-list", 20, "running containers per daemon while listing")
	fs.IntVar(&o.daemonRestart, "daemon-restart", 100, "running containers per daemon at the restarts (≥ -daemon-list)")
	fs.IntVar(&o.daemonRestarts, "daemon-restarts", 5, "restarts per daemon")
	fs.IntVar(&o.daemonScale, "daemon-scale", 0, "then bring each daemon to this many running (reference.md's scale: 1000) for the scale figures; 0 skips them")
	fs.StringVar(&o.daemonImage, "daemon-image", "", "OCI image-layout tar to import (default: built with contrib/busybox-image)")
	fs.StringVar(&o.xd, "xd", defXd, "xd binary (default $XSTACK_BINDIR/xd)")
	fs.StringVar(&o.xctl, "xctl", defXctl, "xctl binary (default $XSTACK_BINDIR/xctl)")
	fs.StringVar(&o.containerd, "containerd", "/usr/bin/containerd", "the reference daemon binary")
	fs.StringVar(&o.ctr, "ctr", "/usr/bin/ctr", "the reference daemon's client")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.n < 1 || o.warmup < 0 || o.shimContainers < 1 || o.shimSettle < 0 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "bench: -n and -shim-containers must be ≥ 1, -warmup and -shim-settle ≥ 0, and no arguments")
		return 2
	}
	if o.daemonN < 1 || o.daemonList < 1 || o.daemonRestart < o.daemonList || o.daemonRestarts < 1 ||
		(o.daemonScale != 0 && o.daemonScale < o.daemonRestart) {
		fmt.Fprintln(stderr, "bench: -daemon-n, -daemon-list and -daemon-restarts must be ≥ 1, -daemon-restart ≥ -daemon-list, -daemon-scale 0 or ≥ -daemon-restart")
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "bench: must run as root (containers with cgroups and namespaces)")
		return 1
	}
	if err := errors.Join(initProcState(), setSubreaper()); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}

	b, err := newBench(o, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	failed := b.measure()
	if err := b.cleanup(); err != nil {
		fmt.Fprintln(stderr, "bench: cleanup:", err)
		failed = true
	}
	rep := b.report()
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
	} else {
		printTable(stdout, rep)
	}
	if failed || !rep.OK {
		return 1
	}
	return 0
}

type skipped struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

type bench struct {
	o        options
	stdout   io.Writer
	stderr   io.Writer
	tmp      string
	rootfs   string
	cgParent string
	targets  []*target
	skipped  []skipped
	// missingRef is set when a reference runtime (runc, crun) is missing.
	missingRef bool
	unshare    string
	floor      []time.Duration
	floorErr   error
	// rssFloor is what the RSS method reports for /bin/true (KiB).
	rssFloor int64
	// shims is the shim memory benchmark, nil without -shims.
	shims *shimBench
	// daemons is the daemon benchmark, nil without -daemons.
	daemons *daemonBench
	stop    atomic.Bool
	sigs    chan os.Signal
}

func newBench(o options, stdout, stderr io.Writer) (*bench, error) {
	b := &bench{o: o, stdout: stdout, stderr: stderr}
	b.cgParent = fmt.Sprintf("xstack-bench-%d", os.Getpid())
	names, err := parseRuntimes(o.runtimes)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 && !o.shims && !o.daemons {
		return nil, errors.New("nothing to benchmark: -runtimes none, -shims=false and -daemons=false")
	}
	tmp, err := os.MkdirTemp("", "xstack-bench-")
	if err != nil {
		return nil, err
	}
	b.tmp = tmp
	b.rootfs = filepath.Join(tmp, "rootfs")
	if err := makeRootfs(b.rootfs, o.busybox); err != nil {
		b.removeTmp()
		return nil, err
	}
	if b.rssFloor, err = checkGNUTime(tmp); err != nil {
		b.removeTmp()
		return nil, err
	}
	if p, err := exec.LookPath("unshare"); err == nil {
		b.unshare = p
	} else {
		b.floorErr = fmt.Errorf("unshare not found: %w", err)
	}

	for _, name := range names {
		path := map[string]string{"xrunc": o.xrunc, "runc": o.runc, "crun": o.crun}[name]
		if reason := checkBinary(name, path); reason != "" {
			b.skipped = append(b.skipped, skipped{Name: name, Reason: reason})
			if name != "xrunc" {
				b.missingRef = true
			}
			continue
		}
		t := &target{name: name, path: path, version: version(path), isolation: "host mount namespace"}
		t.rt = &Runtime{
			Name:        name,
			Path:        path,
			Root:        filepath.Join(tmp, "root-"+name),
			Log:         filepath.Join(tmp, name+".log"),
			WaitTimeout: o.waitTimeout,
		}
		if err := os.Mkdir(t.rt.Root, 0o700); err != nil {
			b.removeTmp()
			return nil, err
		}
		b.targets = append(b.targets, t)
	}
	if len(names) > 0 && len(b.targets) == 0 {
		b.removeTmp()
		return nil, errors.New("no runtime to benchmark")
	}
	if o.shims {
		if b.shims, err = newShimBench(o, tmp); err != nil {
			b.removeTmp()
			return nil, fmt.Errorf("shims: %w", err)
		}
	}
	if o.daemons {
		if b.daemons, err = newDaemonBench(o, tmp); err != nil {
			b.removeTmp()
			return nil, fmt.Errorf("daemons: %w", err)
		}
	}
	// Workers are started last so an early error above leaves nothing to
	// clean up but the temp dir.
	for _, t := range b.targets {
		if t.name != "crun" {
			t.ex = localRuntime{t.rt}
			continue
		}
		t.isolation = "worker in a private mount namespace without the cgroup2 mount"
		w, err := startWorker(t.rt)
		if err != nil {
			t.err = err
			continue
		}
		t.ex = w
	}
	return b, nil
}

func parseRuntimes(s string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	if strings.TrimSpace(s) == "none" {
		return nil, nil
	}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			continue
		case n != "xrunc" && n != "runc" && n != "crun":
			return nil, fmt.Errorf("unknown runtime %q (want xrunc, runc, crun)", n)
		case seen[n]:
			continue
		}
		seen[n] = true
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, errors.New("-runtimes is empty (none skips the runtime benchmarks)")
	}
	return names, nil
}

// checkBinary returns why the runtime cannot be benchmarked, or "".
func checkBinary(name, path string) string {
	if path == "" {
		return "XSTACK_BINDIR is not set and -xrunc was not given"
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Sprintf("not found at %s", path)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Sprintf("%s is not an executable file", path)
	}
	return ""
}

// version returns the first line of `path --version`.
func version(path string) string {
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

func (b *bench) removeTmp() {
	if b.o.keep {
		fmt.Fprintf(b.stderr, "bench: kept %s\n", b.tmp)
		return
	}
	if err := os.RemoveAll(b.tmp); err != nil {
		fmt.Fprintln(b.stderr, "bench:", err)
	}
}

// rotate returns ts starting at index i mod len(ts), so each runtime takes
// every position in turn.
func rotate[T any](ts []T, i int) []T {
	if len(ts) == 0 {
		return nil
	}
	k := i % len(ts)
	return append(append([]T(nil), ts[k:]...), ts[:k]...)
}

// measure runs the warm-up and measured iterations. In each iteration the
// runtimes take turns for each kind of measurement, in an order that rotates
// from one iteration to the next, so machine noise hits all of them alike.
// It reports whether anything failed.
func (b *bench) measure() bool {
	b.sigs = make(chan os.Signal, 1)
	signal.Notify(b.sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-b.sigs; ok {
			b.stop.Store(true)
		}
	}()
	defer signal.Stop(b.sigs)

	var names []string
	for _, t := range b.targets {
		names = append(names, t.name)
	}
	for _, s := range b.skipped {
		fmt.Fprintf(b.stderr, "bench: %s: %s: benchmarking %s only\n", s.Name, s.Reason, strings.Join(names, ", "))
	}
	if len(b.targets) > 0 {
		fmt.Fprintf(b.stderr, "bench: %s, n=%d (+%d warm-up), temp dir %s\n", strings.Join(names, ", "), b.o.n, b.o.warmup, b.tmp)
	} else {
		fmt.Fprintf(b.stderr, "bench: no runtime benchmarks, temp dir %s\n", b.tmp)
	}
	start := time.Now()
	kinds := []string{"lc", "st", "run", "rss"}
	for i := 0; i < b.o.warmup+b.o.n && len(b.targets) > 0 && !b.stop.Load(); i++ {
		record := i >= b.o.warmup
		for _, kind := range kinds {
			for _, t := range rotate(b.targets, i) {
				if t.err != nil || b.stop.Load() {
					continue
				}
				if err := b.once(t, kind, i, record); err != nil {
					t.err = fmt.Errorf("iteration %d: %w", i, err)
					fmt.Fprintf(b.stderr, "bench: %s FAILED: %v\n", t.name, t.err)
				}
			}
		}
		if b.unshare != "" && b.floorErr == nil && !b.stop.Load() {
			b.measureFloor(record)
		}
	}
	if len(b.targets) > 0 {
		fmt.Fprintf(b.stderr, "bench: measured in %.1fs\n", time.Since(start).Seconds())
	}

	failed := b.missingRef || b.floorErr != nil
	if b.shims != nil {
		for _, s := range b.shims.skipped {
			fmt.Fprintf(b.stderr, "bench: shims: %s: %s: not benchmarked\n", s.Name, s.Reason)
		}
		if !b.stop.Load() && b.shims.run(b) {
			failed = true
		}
	}
	if b.daemons != nil && !b.stop.Load() && b.daemons.run(b) {
		failed = true
	}
	if b.stop.Load() {
		fmt.Fprintln(b.stderr, "bench: interrupted")
		failed = true
	}
	for _, t := range b.targets {
		if t.err != nil {
			failed = true
		}
	}
	return failed
}

// once runs one measured sequence of kind on t and records it.
func (b *bench) once(t *target, kind string, i int, record bool) error {
	id := fmt.Sprintf("xb%d-%s-%s%d", os.Getpid(), t.name, kind, i)
	dir := filepath.Join(b.tmp, "bundles", id)
	c := Container{ID: id, Bundle: dir, PidFile: filepath.Join(dir, "init.pid")}
	spec := benchSpec(b.rootfs, "/"+b.cgParent+"/"+id, []string{"/bin/true"})
	if err := writeBundle(dir, spec); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	switch kind {
	case "lc":
		s, err := t.ex.Lifecycle(c)
		if err != nil {
			return err
		}
		if record {
			t.lifecycle = append(t.lifecycle, s)
		}
	case "st":
		d, err := t.ex.StateProbe(c)
		if err != nil {
			return err
		}
		if record {
			t.state = append(t.state, d)
		}
	case "run":
		s, err := t.ex.Run(c)
		if err != nil {
			return err
		}
		if record {
			t.run = append(t.run, s)
		}
	case "rss":
		kib, err := t.ex.CreateRSS(c)
		if err != nil {
			return err
		}
		if record {
			t.rss = append(t.rss, kib)
		}
	}
	return nil
}

// measureFloor times unshare creating the namespaces of a container and
// running /bin/true in them, in the host namespaces, timed like a step.
func (b *bench) measureFloor(record bool) {
	res, err := execTimed(append([]string{b.unshare}, floorArgs...))
	if err == nil && !exitedZero(res.Status) {
		err = fmt.Errorf("%s %s: %s", b.unshare, strings.Join(floorArgs, " "), describeStatus(res.Status))
	}
	if err != nil {
		b.floorErr = err
		fmt.Fprintf(b.stderr, "bench: floor FAILED: %v\n", err)
		return
	}
	if record {
		b.floor = append(b.floor, res.Wall)
	}
}

// cleanup stops the workers, deletes every container left in any root,
// reaps stray children, removes the cgroup parent in every hierarchy and
// the temp dir.
func (b *bench) cleanup() error {
	var errs []error
	strays := 0
	for _, t := range b.targets {
		if t.ex == nil {
			continue
		}
		n, err := t.ex.Close()
		strays += n
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.name, err))
		}
	}
	n, err := reapStrays(nil, b.o.waitTimeout)
	strays += n
	if err != nil {
		errs = append(errs, err)
	}
	if strays > 0 {
		fmt.Fprintf(b.stderr, "bench: reaped %d stray child process(es) at cleanup\n", strays)
	}
	if err := removeCgroupParent(b.cgParent); err != nil {
		errs = append(errs, err)
	}
	b.removeTmp()
	return errors.Join(errs...)
}

// figures are the summaries of one runtime: times in ms, memory in MiB.
type figures struct {
	Lifecycle Summary `json:"lifecycle_ms"`
	Create    Summary `json:"create_ms"`
	Start     Summary `json:"start_ms"`
	Wait      Summary `json:"wait_ms"`
	Delete    Summary `json:"delete_ms"`
	State     Summary `json:"state_ms"`
	RunTotal  Summary `json:"run_delete_ms"`
	Run       Summary `json:"run_ms"`
	RunDelete Summary `json:"run_step_delete_ms"`
	CreateRSS Summary `json:"create_maxrss_mib"`
}

func summarizeTarget(t *target) figures {
	var total, create, start, wait, del, rtotal, run, rdel []time.Duration
	var rss []float64
	for _, s := range t.lifecycle {
		total = append(total, s.Total)
		create = append(create, s.Create)
		start = append(start, s.Start)
		wait = append(wait, s.Wait)
		del = append(del, s.Delete)
	}
	for _, kib := range t.rss {
		rss = append(rss, float64(kib)/1024)
	}
	for _, s := range t.run {
		rtotal = append(rtotal, s.Total)
		run = append(run, s.Run)
		rdel = append(rdel, s.Delete)
	}
	return figures{
		Lifecycle: Summarize(Millis(total)),
		Create:    Summarize(Millis(create)),
		Start:     Summarize(Millis(start)),
		Wait:      Summarize(Millis(wait)),
		Delete:    Summarize(Millis(del)),
		State:     Summarize(Millis(t.state)),
		RunTotal:  Summarize(Millis(rtotal)),
		Run:       Summarize(Millis(run)),
		RunDelete: Summarize(Millis(rdel)),
		CreateRSS: Summarize(rss),
	}
}

// metric is one row of the table and one key of the JSON ratios.
type metric struct {
	key     string
	section int
	label   string
	get     func(*figures) Summary
	p90     bool
}

var sections = []string{
	"lifecycle /bin/true, n=%d (ms)",
	"run + delete /bin/true, n=%d (ms)",
	"peak RSS of create, n=%d (MiB)",
}

var metrics = []metric{
	{"lifecycle_median", 0, "per container, median", func(f *figures) Summary { return f.Lifecycle }, false},
	{"lifecycle_p90", 0, "per container, p90", func(f *figures) Summary { return f.Lifecycle }, true},
	{"create", 0, "create (median)", func(f *figures) Summary { return f.Create }, false},
	{"start", 0, "start (median)", func(f *figures) Summary { return f.Start }, false},
	{"wait", 0, "wait until stopped (median)", func(f *figures) Summary { return f.Wait }, false},
	{"delete", 0, "delete (median)", func(f *figures) Summary { return f.Delete }, false},
	{"state", 0, "state of a created container (median)", func(f *figures) Summary { return f.State }, false},
	{"run_delete_median", 1, "per container, median", func(f *figures) Summary { return f.RunTotal }, false},
	{"run_delete_p90", 1, "per container, p90", func(f *figures) Summary { return f.RunTotal }, true},
	{"run", 1, "run (median)", func(f *figures) Summary { return f.Run }, false},
	{"run_step_delete", 1, "delete (median)", func(f *figures) Summary { return f.RunDelete }, false},
	{"create_maxrss", 2, "create, median", func(f *figures) Summary { return f.CreateRSS }, false},
}

// runtimeTargets are reference.md's targets for xrunc: ratios to crun's
// medians, or (ratio false) a ceiling on xrunc's own figure.
var runtimeTargets = []struct {
	key, label string
	limit      float64
	ratio      bool
}{
	{"lifecycle_median", "lifecycle ≤ 1.0× crun", 1, true},
	{"run_delete_median", "run + delete ≤ 1.0× crun", 1, true},
	{"create", "create ≤ crun", 1, true},
	{"start", "start ≤ crun", 1, true},
	{"state", "state ≤ crun", 1, true},
	{"delete", "delete ≤ crun", 1, true},
	{"create_maxrss", "create peak RSS ≤ 5 MiB", 5, false},
}

// runtimeTargetsMet checks xrunc's figures x against runtimeTargets; ratio
// targets need crun's figures (nil: not checked).
func runtimeTargetsMet(x, crun *figures) map[string]bool {
	met := map[string]bool{}
	for _, t := range runtimeTargets {
		i := slices.IndexFunc(metrics, func(m metric) bool { return m.key == t.key })
		v := metrics[i].value(x)
		if t.ratio {
			if crun == nil {
				continue
			}
			v = Ratio(v, metrics[i].value(crun))
		}
		if !math.IsNaN(v) {
			met[t.key] = v <= t.limit
		}
	}
	return met
}

func (m metric) value(f *figures) float64 {
	s := m.get(f)
	if m.p90 {
		return s.P90
	}
	return s.Median
}

// jnum is a float that encodes NaN (no data) as null, rounded to 3 decimals.
type jnum float64

func (v jnum) MarshalJSON() ([]byte, error) {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, math.Round(f*1000)/1000, 'f', -1, 64), nil
}

type runtimeReport struct {
	Name      string  `json:"name"`
	Path      string  `json:"path"`
	Version   string  `json:"version"`
	Isolation string  `json:"isolation"`
	Error     string  `json:"error,omitempty"`
	Figures   figures `json:"figures"`
}

type ratioReport struct {
	Ratio  string          `json:"ratio"` // "xrunc/runc"
	Num    string          `json:"-"`
	Den    string          `json:"-"`
	Values map[string]jnum `json:"values"`
}

type report struct {
	N        int             `json:"n"`
	Warmup   int             `json:"warmup"`
	Runtimes []runtimeReport `json:"runtimes"`
	Skipped  []skipped       `json:"skipped,omitempty"`
	Ratios   []ratioReport   `json:"ratios"`
	// TargetMet says whether xrunc met each of reference.md's targets,
	// by metric key.
	TargetMet map[string]bool `json:"target_met,omitempty"`
	Floor     *floorReport    `json:"floor,omitempty"`
	RSS       rssReport       `json:"create_rss_method"`
	Shims     *shimReport     `json:"shims,omitempty"`
	Daemons   *daemonReport   `json:"daemons,omitempty"`
	OK        bool            `json:"ok"`
}

// rssReport says how the peak RSS of create is measured.
type rssReport struct {
	Method string `json:"method"`
	// FloorMiB is what the method reports for /bin/true.
	FloorMiB jnum `json:"floor_mib"`
}

type floorReport struct {
	Command string  `json:"command"`
	Ms      Summary `json:"ms"`
	Error   string  `json:"error,omitempty"`
}

// MarshalJSON encodes a Summary with NaN as null.
func (s Summary) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		N      int  `json:"n"`
		Median jnum `json:"median"`
		P90    jnum `json:"p90"`
		Min    jnum `json:"min"`
		Max    jnum `json:"max"`
	}{s.N, jnum(s.Median), jnum(s.P90), jnum(s.Min), jnum(s.Max)})
}

func (b *bench) report() *report {
	r := &report{N: b.o.n, Warmup: b.o.warmup, Skipped: b.skipped, OK: !b.missingRef && b.floorErr == nil && !b.stop.Load()}
	r.RSS = rssReport{Method: rssMethod(), FloorMiB: jnum(float64(b.rssFloor) / 1024)}
	figs := map[string]*figures{}
	for _, t := range b.targets {
		f := summarizeTarget(t)
		figs[t.name] = &f
		rr := runtimeReport{Name: t.name, Path: t.path, Version: t.version, Isolation: t.isolation, Figures: f}
		if t.err != nil {
			rr.Error = t.err.Error()
			r.OK = false
		}
		r.Runtimes = append(r.Runtimes, rr)
	}
	var pairs [][2]string
	if figs["xrunc"] != nil {
		for _, ref := range []string{"runc", "crun"} {
			if figs[ref] != nil {
				pairs = append(pairs, [2]string{"xrunc", ref})
			}
		}
	} else if figs["runc"] != nil && figs["crun"] != nil {
		// No xrunc: compare the references so the harness can be checked
		// against reference.md (crun ≈ 0.5× runc).
		pairs = append(pairs, [2]string{"crun", "runc"})
	}
	if figs["xrunc"] != nil {
		r.TargetMet = runtimeTargetsMet(figs["xrunc"], figs["crun"])
	}
	for _, p := range pairs {
		rr := ratioReport{Ratio: p[0] + "/" + p[1], Num: p[0], Den: p[1], Values: map[string]jnum{}}
		for _, m := range metrics {
			rr.Values[m.key] = jnum(Ratio(m.value(figs[p[0]]), m.value(figs[p[1]])))
		}
		r.Ratios = append(r.Ratios, rr)
	}
	if b.shims != nil {
		r.Shims = b.shims.report()
		if !r.Shims.OK {
			r.OK = false
		}
	}
	if b.daemons != nil {
		r.Daemons = b.daemons.report()
		if !r.Daemons.OK {
			r.OK = false
		}
	}
	if len(b.targets) > 0 && (b.unshare != "" || b.floorErr != nil) {
		fr := &floorReport{Command: "unshare " + strings.Join(floorArgs, " "), Ms: Summarize(Millis(b.floor))}
		if b.floorErr != nil {
			fr.Error = b.floorErr.Error()
		}
		r.Floor = fr
	}
	return r
}

func fmtNum(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// printTable writes the human-readable report.
func printTable(w io.Writer, r *report) {
	var buf bytes.Buffer
	for _, s := range r.Skipped {
		fmt.Fprintf(&buf, "%s: %s: not benchmarked\n", s.Name, s.Reason)
	}
	for _, rt := range r.Runtimes {
		fmt.Fprintf(&buf, "%-6s %s (%s; %s)\n", rt.Name, rt.Path, rt.Version, rt.Isolation)
	}
	byName := map[string]*runtimeReport{}
	for i := range r.Runtimes {
		byName[r.Runtimes[i].Name] = &r.Runtimes[i]
	}
	const labelW, colW = 44, 11
	for si, sec := range sections {
		if len(r.Runtimes) == 0 {
			break
		}
		title := sec
		if strings.Contains(sec, "%d") {
			title = fmt.Sprintf(sec, r.N)
		}
		fmt.Fprintf(&buf, "\n%-*s", labelW, title)
		for _, rt := range r.Runtimes {
			fmt.Fprintf(&buf, "%*s", colW, rt.Name)
		}
		for _, ra := range r.Ratios {
			fmt.Fprintf(&buf, "%*s", colW, ra.Ratio)
		}
		buf.WriteByte('\n')
		for _, m := range metrics {
			if m.section != si {
				continue
			}
			fmt.Fprintf(&buf, "  %-*s", labelW-2, m.label)
			for _, rt := range r.Runtimes {
				fmt.Fprintf(&buf, "%*s", colW, fmtNum(m.value(&byName[rt.Name].Figures), 1))
			}
			for _, ra := range r.Ratios {
				fmt.Fprintf(&buf, "%*s", colW, fmtNum(float64(ra.Values[m.key]), 2))
			}
			buf.WriteByte('\n')
		}
	}
	if len(r.Runtimes) > 0 {
		fmt.Fprintf(&buf, "  RSS method: %s; /bin/true reads %s MiB\n", r.RSS.Method, fmtNum(float64(r.RSS.FloorMiB), 1))
	}
	if len(r.TargetMet) > 0 {
		var verdicts []string
		for _, t := range runtimeTargets {
			if met, ok := r.TargetMet[t.key]; ok {
				v := "met"
				if !met {
					v = "NOT met"
				}
				verdicts = append(verdicts, t.label+" "+v)
			}
		}
		fmt.Fprintf(&buf, "  target (reference.md) xrunc (medians): %s\n", strings.Join(verdicts, ", "))
	}
	if f := r.Floor; f != nil {
		fmt.Fprintf(&buf, "\nfloor: %s: median %s ms, p90 %s ms (n=%d)\n",
			f.Command, fmtNum(f.Ms.Median, 1), fmtNum(f.Ms.P90, 1), f.Ms.N)
		if f.Error != "" {
			fmt.Fprintf(&buf, "floor FAILED: %s\n", f.Error)
		}
	}
	for _, rt := range r.Runtimes {
		if rt.Error != "" {
			fmt.Fprintf(&buf, "%s FAILED: %s\n", rt.Name, rt.Error)
		}
	}
	if r.Shims != nil {
		printShimTable(&buf, r.Shims)
	}
	if r.Daemons != nil {
		printDaemonTable(&buf, r.Daemons)
	}
	if !r.OK {
		buf.WriteString("RESULT: FAILED (figures above are incomplete or measured failures)\n")
	}
	w.Write(buf.Bytes())
}
