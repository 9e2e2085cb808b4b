// Package events is `xrunc events`: a container's cgroup statistics and
// OOM notifications in runc's JSON event format (libcontainer's
// types.Event and types.Stats, field for field), read from the cgroup
// files themselves because that format carries more than the runtime's
// cgroups.Stats (per-CPU usage, cpuset, kernel memory, blkio ops).
//
// Internal to xstack; no API stability.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime"
)

// event is one line of "events" output, runc's types.Event.
type event struct {
	Type string      `json:"type"`
	ID   string      `json:"id"`
	Data interface{} `json:"data,omitempty"`
}

// Run prints c's events to w as JSON lines: one stats event with once,
// else stats every interval and an "oom" event whenever the memory cgroup
// reports one, until the container stops.
func Run(w io.Writer, c *runtime.Container, interval time.Duration, once bool) error {
	enc := json.NewEncoder(w)
	paths := c.State().CgroupPaths
	if once {
		s, err := readEventStats(paths)
		if err != nil {
			return err
		}
		return enc.Encode(event{Type: "stats", ID: c.ID(), Data: s})
	}
	oom, err := newOOMWatcher(paths)
	if err != nil {
		return err
	}
	defer oom.close()
	stats := time.NewTicker(interval)
	defer stats.Stop()
	// The container's liveness is checked more often than stats are taken,
	// so that events returns soon after the container stops.
	alive := time.NewTicker(200 * time.Millisecond)
	defer alive.Stop()
	for {
		select {
		case <-oom.ch:
			if err := enc.Encode(event{Type: "oom", ID: c.ID()}); err != nil {
				slog.Error(err.Error())
			}
		case <-stats.C:
			s, err := readEventStats(paths)
			if err != nil {
				slog.Error(err.Error())
				continue
			}
			if err := enc.Encode(event{Type: "stats", ID: c.ID(), Data: s}); err != nil {
				slog.Error(err.Error())
			}
		case <-alive.C:
			oom.poll()
			if c.Status() == runtime.Stopped || !cgroupExists(paths) {
				// Report an OOM kill that stopped the container.
				oom.poll()
				select {
				case <-oom.ch:
					_ = enc.Encode(event{Type: "oom", ID: c.ID()})
				default:
				}
				return nil
			}
		}
	}
}

func cgroupExists(paths map[string]string) bool {
	dir := paths["memory"]
	if dir == "" {
		dir = paths[""]
	}
	if dir == "" {
		return true
	}
	_, err := os.Stat(dir)
	return err == nil
}

// oomWatcher reports OOM events of the container's memory cgroup: on v1
// through memory.oom_control's eventfd notification (as runc does), on v2
// by polling the oom_kill count of memory.events.
type oomWatcher struct {
	ch     chan struct{}
	efd    int
	v2File string
	kills  uint64
}

func newOOMWatcher(paths map[string]string) (*oomWatcher, error) {
	w := &oomWatcher{ch: make(chan struct{}, 16), efd: -1}
	if dir := paths["memory"]; dir != "" {
		ctl, err := os.Open(filepath.Join(dir, "memory.oom_control"))
		if err != nil {
			return nil, err
		}
		defer ctl.Close()
		efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("eventfd: %w", err)
		}
		data := fmt.Sprintf("%d %d", efd, ctl.Fd())
		if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(data), 0o700); err != nil {
			unix.Close(efd)
			return nil, err
		}
		w.efd = efd
		go w.readEventfd(dir)
		return w, nil
	}
	if dir, ok := paths[""]; ok && len(paths) == 1 {
		w.v2File = filepath.Join(dir, "memory.events")
		w.kills = w.v2Kills()
	}
	return w, nil
}

func (w *oomWatcher) readEventfd(dir string) {
	buf := make([]byte, 8)
	for {
		if _, err := unix.Read(w.efd, buf); err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		// The notification also fires when the cgroup is removed.
		if _, err := os.Lstat(filepath.Join(dir, "cgroup.event_control")); err != nil {
			return
		}
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}

func (w *oomWatcher) v2Kills() uint64 {
	b, err := os.ReadFile(w.v2File)
	if err != nil {
		return w.kills
	}
	return flatKeyed(string(b))["oom_kill"]
}

// poll checks memory.events on v2; v1 needs nothing.
func (w *oomWatcher) poll() {
	if w.v2File == "" {
		return
	}
	if n := w.v2Kills(); n > w.kills {
		w.kills = n
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}

func (w *oomWatcher) close() {
	if w.efd >= 0 {
		unix.Close(w.efd)
	}
}

// The types below are runc's libcontainer/types (events.go), field for
// field, so that the JSON is the same.

type eventStats struct {
	CPU               eventCPU                `json:"cpu"`
	CPUSet            eventCPUSet             `json:"cpuset"`
	Memory            eventMemory             `json:"memory"`
	Pids              eventPids               `json:"pids"`
	Blkio             eventBlkio              `json:"blkio"`
	Hugetlb           map[string]eventHugetlb `json:"hugetlb"`
	IntelRdt          struct{}                `json:"intel_rdt"`
	NetworkInterfaces []struct{}              `json:"network_interfaces"`
}

type eventHugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

type blkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

type eventBlkio struct {
	IoServiceBytesRecursive []blkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []blkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []blkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []blkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []blkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []blkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []blkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []blkioEntry `json:"sectorsRecursive,omitempty"`
}

type eventPids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

type eventThrottling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

type eventCPUUsage struct {
	Total        uint64   `json:"total,omitempty"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	Kernel       uint64   `json:"kernel"`
	User         uint64   `json:"user"`
}

type eventCPU struct {
	Usage      eventCPUUsage   `json:"usage,omitempty"`
	Throttling eventThrottling `json:"throttling,omitempty"`
}

type eventCPUSet struct {
	CPUs                  []uint16 `json:"cpus,omitempty"`
	CPUExclusive          uint64   `json:"cpu_exclusive"`
	Mems                  []uint16 `json:"mems,omitempty"`
	MemHardwall           uint64   `json:"mem_hardwall"`
	MemExclusive          uint64   `json:"mem_exclusive"`
	MemoryMigrate         uint64   `json:"memory_migrate"`
	MemorySpreadPage      uint64   `json:"memory_spread_page"`
	MemorySpreadSlab      uint64   `json:"memory_spread_slab"`
	MemoryPressure        uint64   `json:"memory_pressure"`
	SchedLoadBalance      uint64   `json:"sched_load_balance"`
	SchedRelaxDomainLevel int64    `json:"sched_relax_domain_level"`
}

type memoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

type eventMemory struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     memoryEntry       `json:"usage,omitempty"`
	Swap      memoryEntry       `json:"swap,omitempty"`
	Kernel    memoryEntry       `json:"kernel,omitempty"`
	KernelTCP memoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
}

// statsReader reads cgroup files, keeping the first error.
type statsReader struct{ err error }

func (r *statsReader) str(dir, file string, optional bool) string {
	if r.err != nil {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		if optional && errors.Is(err, os.ErrNotExist) {
			return ""
		}
		r.err = err
		return ""
	}
	return strings.TrimSpace(string(b))
}

// uint reads a number; "max" reads as max (runc: MaxUint64 for memory,
// 0 for pids).
func (r *statsReader) uint(dir, file string, optional bool, max uint64) uint64 {
	s := r.str(dir, file, optional)
	if s == "" || r.err != nil {
		return 0
	}
	if s == "max" {
		return max
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// Negative values (-1) saturate, as runc's ParseUint does.
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0
		}
		r.err = fmt.Errorf("parse %s/%s: %w", dir, file, err)
	}
	return v
}

func (r *statsReader) uints(dir, file string) []uint64 {
	var out []uint64
	for _, f := range strings.Fields(r.str(dir, file, false)) {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			if r.err == nil {
				r.err = fmt.Errorf("parse %s/%s: %w", dir, file, err)
			}
			return nil
		}
		out = append(out, v)
	}
	return out
}

func flatKeyed(content string) map[string]uint64 {
	m := map[string]uint64{}
	for _, line := range strings.Split(content, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			m[k] = n
		}
	}
	return m
}

// readEventStats collects the container's cgroup statistics the way runc
// 1.1's cgroup managers do.
func readEventStats(paths map[string]string) (*eventStats, error) {
	s := &eventStats{Hugetlb: map[string]eventHugetlb{}}
	r := &statsReader{}
	if dir, ok := paths[""]; ok && len(paths) == 1 {
		readV2Stats(r, dir, s)
	} else {
		readV1Stats(r, paths, s)
	}
	if r.err != nil {
		return nil, r.err
	}
	return s, nil
}

func readV1Stats(r *statsReader, paths map[string]string, s *eventStats) {
	if dir := paths["cpu"]; dir != "" {
		st := flatKeyed(r.str(dir, "cpu.stat", false))
		s.CPU.Throttling = eventThrottling{Periods: st["nr_periods"], ThrottledPeriods: st["nr_throttled"], ThrottledTime: st["throttled_time"]}
	}
	if dir := paths["cpuacct"]; dir != "" {
		const nsPerTick = 1e9 / 100 // USER_HZ is 100
		st := flatKeyed(r.str(dir, "cpuacct.stat", false))
		u := &s.CPU.Usage
		u.User = st["user"] * nsPerTick
		u.Kernel = st["system"] * nsPerTick
		u.Total = r.uint(dir, "cpuacct.usage", false, 0)
		u.Percpu = r.uints(dir, "cpuacct.usage_percpu")
		all := r.str(dir, "cpuacct.usage_all", true)
		if _, rows, ok := strings.Cut(all, "\n"); ok {
			for _, line := range strings.Split(rows, "\n") {
				f := strings.Fields(line)
				if len(f) != 3 {
					continue
				}
				user, _ := strconv.ParseUint(f[1], 10, 64)
				sys, _ := strconv.ParseUint(f[2], 10, 64)
				u.PercpuUser = append(u.PercpuUser, user)
				u.PercpuKernel = append(u.PercpuKernel, sys)
			}
		}
	}
	if dir := paths["cpuset"]; dir != "" {
		cs := &s.CPUSet
		cs.CPUs = parseCPUList(r, dir, "cpuset.cpus")
		cs.Mems = parseCPUList(r, dir, "cpuset.mems")
		for file, dst := range map[string]*uint64{
			"cpuset.cpu_exclusive":      &cs.CPUExclusive,
			"cpuset.mem_hardwall":       &cs.MemHardwall,
			"cpuset.mem_exclusive":      &cs.MemExclusive,
			"cpuset.memory_migrate":     &cs.MemoryMigrate,
			"cpuset.memory_spread_page": &cs.MemorySpreadPage,
			"cpuset.memory_spread_slab": &cs.MemorySpreadSlab,
			"cpuset.memory_pressure":    &cs.MemoryPressure,
			"cpuset.sched_load_balance": &cs.SchedLoadBalance,
		} {
			*dst = r.uint(dir, file, false, 0)
		}
		if v := r.str(dir, "cpuset.sched_relax_domain_level", false); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil && r.err == nil {
				r.err = fmt.Errorf("parse %s/cpuset.sched_relax_domain_level: %w", dir, err)
			}
			cs.SchedRelaxDomainLevel = n
		}
	}
	if dir := paths["memory"]; dir != "" {
		m := &s.Memory
		m.Raw = flatKeyed(r.str(dir, "memory.stat", false))
		m.Cache = m.Raw["cache"]
		m.Usage = v1MemoryEntry(r, dir, "memory")
		m.Swap = v1MemoryEntry(r, dir, "memory.memsw")
		m.Kernel = v1MemoryEntry(r, dir, "memory.kmem")
		m.KernelTCP = v1MemoryEntry(r, dir, "memory.kmem.tcp")
	}
	if dir := paths["pids"]; dir != "" {
		s.Pids.Current = r.uint(dir, "pids.current", false, 0)
		s.Pids.Limit = r.uint(dir, "pids.max", false, 0)
	}
	if dir := paths["blkio"]; dir != "" {
		readV1Blkio(r, dir, &s.Blkio)
	}
	if dir := paths["hugetlb"]; dir != "" {
		for _, size := range hugePageSizes() {
			p := "hugetlb." + size + "."
			s.Hugetlb[size] = eventHugetlb{
				Usage:   r.uint(dir, p+"usage_in_bytes", false, 0),
				Max:     r.uint(dir, p+"max_usage_in_bytes", false, 0),
				Failcnt: r.uint(dir, p+"failcnt", false, 0),
			}
		}
	}
}

// v1MemoryEntry reads prefix.{usage,max_usage,limit}_in_bytes and failcnt;
// a module whose files are missing (memsw without swap accounting, kmem
// on new kernels) reads as zeros, as in runc.
func v1MemoryEntry(r *statsReader, dir, prefix string) memoryEntry {
	if _, err := os.Stat(filepath.Join(dir, prefix+".usage_in_bytes")); err != nil {
		if prefix != "memory" && errors.Is(err, os.ErrNotExist) {
			return memoryEntry{}
		}
	}
	return memoryEntry{
		Usage:   r.uint(dir, prefix+".usage_in_bytes", false, 0),
		Max:     r.uint(dir, prefix+".max_usage_in_bytes", false, 0),
		Failcnt: r.uint(dir, prefix+".failcnt", false, 0),
		Limit:   r.uint(dir, prefix+".limit_in_bytes", false, 0),
	}
}

// readV1Blkio takes the first group of files that has data, in runc's
// order: BFQ debug, BFQ, CFQ, throttle recursive, throttle.
func readV1Blkio(r *statsReader, dir string, b *eventBlkio) {
	type file struct {
		name string
		dst  *[]blkioEntry
	}
	bfqDebug := []file{
		{"blkio.bfq.sectors_recursive", &b.SectorsRecursive},
		{"blkio.bfq.io_service_time_recursive", &b.IoServiceTimeRecursive},
		{"blkio.bfq.io_wait_time_recursive", &b.IoWaitTimeRecursive},
		{"blkio.bfq.io_merged_recursive", &b.IoMergedRecursive},
		{"blkio.bfq.io_queued_recursive", &b.IoQueuedRecursive},
		{"blkio.bfq.time_recursive", &b.IoTimeRecursive},
		{"blkio.bfq.io_serviced_recursive", &b.IoServicedRecursive},
		{"blkio.bfq.io_service_bytes_recursive", &b.IoServiceBytesRecursive},
	}
	bfq := []file{
		{"blkio.bfq.io_serviced_recursive", &b.IoServicedRecursive},
		{"blkio.bfq.io_service_bytes_recursive", &b.IoServiceBytesRecursive},
	}
	cfq := []file{
		{"blkio.sectors_recursive", &b.SectorsRecursive},
		{"blkio.io_service_time_recursive", &b.IoServiceTimeRecursive},
		{"blkio.io_wait_time_recursive", &b.IoWaitTimeRecursive},
		{"blkio.io_merged_recursive", &b.IoMergedRecursive},
		{"blkio.io_queued_recursive", &b.IoQueuedRecursive},
		{"blkio.time_recursive", &b.IoTimeRecursive},
		{"blkio.io_serviced_recursive", &b.IoServicedRecursive},
		{"blkio.io_service_bytes_recursive", &b.IoServiceBytesRecursive},
	}
	throttleRecursive := []file{
		{"blkio.throttle.io_serviced_recursive", &b.IoServicedRecursive},
		{"blkio.throttle.io_service_bytes_recursive", &b.IoServiceBytesRecursive},
	}
	throttle := []file{
		{"blkio.throttle.io_serviced", &b.IoServicedRecursive},
		{"blkio.throttle.io_service_bytes", &b.IoServiceBytesRecursive},
	}
	for _, group := range [][]file{bfqDebug, bfq, cfq, throttleRecursive, throttle} {
		for i, f := range group {
			entries := parseBlkioFile(r, dir, f.name)
			if r.err != nil {
				return
			}
			if entries == nil {
				if i == 0 {
					break // this group is not available
				}
				return
			}
			*f.dst = entries
			if i == len(group)-1 {
				return
			}
		}
	}
}

// parseBlkioFile parses "8:0 Read 4096" (or "8:0 4096") lines; the
// "Total N" line is skipped. A missing file or one without entries reads
// as nil.
func parseBlkioFile(r *statsReader, dir, name string) []blkioEntry {
	var out []blkioEntry
	for _, line := range strings.Split(r.str(dir, name, true), "\n") {
		f := strings.FieldsFunc(line, func(c rune) bool { return c == ' ' || c == ':' })
		if len(f) < 3 {
			if len(f) == 0 || (len(f) == 2 && f[0] == "Total") {
				continue
			}
			r.err = fmt.Errorf("malformed line %q in %s/%s", line, dir, name)
			return nil
		}
		major, err1 := strconv.ParseUint(f[0], 10, 64)
		minor, err2 := strconv.ParseUint(f[1], 10, 64)
		e := blkioEntry{Major: major, Minor: minor}
		vf := 2
		if len(f) == 4 {
			e.Op, vf = f[2], 3
		}
		v, err3 := strconv.ParseUint(f[vf], 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			r.err = fmt.Errorf("parse %s/%s: %w", dir, name, err)
			return nil
		}
		e.Value = v
		out = append(out, e)
	}
	return out
}

// parseCPUList parses a cpuset list ("0-3,5").
func parseCPUList(r *statsReader, dir, file string) []uint16 {
	s := r.str(dir, file, false)
	var out []uint16
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || b < a {
			if r.err == nil {
				r.err = fmt.Errorf("parse %s/%s: invalid list %q", dir, file, s)
			}
			return nil
		}
		for i := a; i <= b; i++ {
			out = append(out, uint16(i))
		}
	}
	return out
}

// hugePageSizes lists the host's hugepage sizes as hugetlb names them
// ("2MB", "1GB").
func hugePageSizes() []string {
	entries, err := os.ReadDir("/sys/kernel/mm/hugepages")
	if err != nil {
		return nil
	}
	var sizes []string
	for _, e := range entries {
		kib, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if kib, ok = strings.CutSuffix(kib, "kB"); !ok {
			continue
		}
		n, err := strconv.ParseUint(kib, 10, 64)
		if err != nil {
			continue
		}
		size := n * 1024
		units := []string{"B", "KB", "MB", "GB", "TB", "PB"}
		i := 0
		for size >= 1024 && size%1024 == 0 && i < len(units)-1 {
			size /= 1024
			i++
		}
		sizes = append(sizes, strconv.FormatUint(size, 10)+units[i])
	}
	sort.Strings(sizes)
	return sizes
}

func readV2Stats(r *statsReader, dir string, s *eventStats) {
	if cur := r.str(dir, "pids.current", true); cur != "" {
		s.Pids.Current = r.uint(dir, "pids.current", false, 0)
		s.Pids.Limit = r.uint(dir, "pids.max", false, 0)
	} else if r.err == nil {
		s.Pids.Current = uint64(len(strings.Fields(r.str(dir, "cgroup.procs", false))))
	}
	if raw := r.str(dir, "memory.stat", true); raw != "" {
		m := &s.Memory
		m.Raw = flatKeyed(raw)
		m.Cache = m.Raw["file"]
		m.Usage = memoryEntry{
			Usage: r.uint(dir, "memory.current", false, 0),
			Limit: r.uint(dir, "memory.max", false, math.MaxUint64),
		}
		if r.str(dir, "memory.swap.current", true) != "" {
			m.Swap = memoryEntry{
				Usage: r.uint(dir, "memory.swap.current", false, 0),
				Limit: r.uint(dir, "memory.swap.max", false, math.MaxUint64),
			}
		}
		// runc reports swap as memory+swap, as v1 does.
		m.Swap.Usage += m.Usage.Usage
		if m.Swap.Limit != math.MaxUint64 {
			m.Swap.Limit += m.Usage.Limit
		}
	}
	for _, line := range strings.Split(r.str(dir, "io.stat", true), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, mnr, _ := strings.Cut(f[0], ":")
		major, _ := strconv.ParseUint(maj, 10, 64)
		minor, _ := strconv.ParseUint(mnr, 10, 64)
		for _, kv := range f[1:] {
			k, val, _ := strings.Cut(kv, "=")
			v, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				continue
			}
			e := blkioEntry{Major: major, Minor: minor, Value: v}
			switch k {
			case "rbytes":
				e.Op = "Read"
				s.Blkio.IoServiceBytesRecursive = append(s.Blkio.IoServiceBytesRecursive, e)
			case "wbytes":
				e.Op = "Write"
				s.Blkio.IoServiceBytesRecursive = append(s.Blkio.IoServiceBytesRecursive, e)
			case "rios":
				e.Op = "Read"
				s.Blkio.IoServicedRecursive = append(s.Blkio.IoServicedRecursive, e)
			case "wios":
				e.Op = "Write"
				s.Blkio.IoServicedRecursive = append(s.Blkio.IoServicedRecursive, e)
			}
		}
	}
	st := flatKeyed(r.str(dir, "cpu.stat", false))
	s.CPU.Usage.Total = st["usage_usec"] * 1000
	s.CPU.Usage.User = st["user_usec"] * 1000
	s.CPU.Usage.Kernel = st["system_usec"] * 1000
	s.CPU.Throttling = eventThrottling{Periods: st["nr_periods"], ThrottledPeriods: st["nr_throttled"], ThrottledTime: st["throttled_usec"] * 1000}
	for _, size := range hugePageSizes() {
		if r.str(dir, "hugetlb."+size+".current", true) == "" {
			continue
		}
		events := flatKeyed(r.str(dir, "hugetlb."+size+".events", false))
		s.Hugetlb[size] = eventHugetlb{Usage: r.uint(dir, "hugetlb."+size+".current", false, 0), Failcnt: events["max"]}
	}
}
