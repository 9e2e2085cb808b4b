package metrics

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"google.golang.org/protobuf/proto"

	"github.com/xstack/xstack/pkg/runtime/cgroups"
)

// unifiedKey is the Paths key of a cgroup v2 directory.
const unifiedKey = ""

// Metrics returns the container's cgroup counters as the message containerd
// expects in StatsResponse.Stats: github.com/containerd/cgroups/v3/cgroup1/stats.Metrics
// (type URL io.containerd.cgroups.v1.Metrics) for a v1/hybrid manager,
// cgroup2/stats.Metrics (io.containerd.cgroups.v2.Metrics) for a v2 one.
//
// The manager is v2 when Paths has only the "" key. A controller the
// container is not in (v1: no directory for it; v2: not in
// cgroup.controllers) leaves its part of the message nil, except the v2 CPU
// usage, which cgroup v2 counts without the cpu controller.
//
// Values follow containerd's cgroups library, which consumers were written
// against: on v1 an unset memory limit is the kernel's page-aligned
// MaxInt64 and an unset pids limit is 0; on v2 an unset limit ("max") is
// MaxUint64.
//
// Besides Manager.Stats, it reads a few small files Stats does not cover:
// v1 memory.oom_control (under_oom, oom_kill_disable), cpuacct.usage_percpu
// and /proc/partitions (blkio device names); v2 cgroup.controllers,
// memory.events (low, high, oom, oom_group_kill), memory.swap.max,
// memory.swap.peak and hugetlb.<size>.max. Missing optional files leave
// their fields zero.
//
// Not filled (zero or nil): v1 Memory.Kernel and Memory.KernelTCP (kmem),
// the memsw max and failcnt, blkio other than Read/Write bytes and ios
// (no Sync/Async/Discard/Total, no queued/wait/service-time/merged/sectors),
// Rdma, Network, CgroupStats; v2 PSI, CPU bursts (nr_bursts, burst_usec),
// Rdma, Network.
func Metrics(m cgroups.Manager) (proto.Message, error) {
	paths := m.Paths()
	st, err := m.Stats()
	if err != nil {
		return nil, fmt.Errorf("read cgroup stats: %w", err)
	}
	if dir, ok := paths[unifiedKey]; ok && len(paths) == 1 {
		x, err := readV2Extra(dir, st)
		if err != nil {
			return nil, err
		}
		return v2Metrics(st, x), nil
	}
	return v1Metrics(st, readV1Extra(paths, st)), nil
}

// v1Extra is what a v1 message needs beyond cgroups.Stats.
type v1Extra struct {
	// controllers the container has a directory for (Paths keys).
	controllers map[string]bool
	// oomKillDisable and underOOM come from memory.oom_control.
	oomKillDisable, underOOM uint64
	// perCPU is cpuacct.usage_percpu, in nanoseconds.
	perCPU []uint64
	// devices names block devices ("/dev/vda") by major and minor.
	devices map[[2]uint64]string
}

const partitionsPath = "/proc/partitions"

func readV1Extra(paths map[string]string, st *cgroups.Stats) v1Extra {
	x := v1Extra{controllers: make(map[string]bool, len(paths))}
	for c := range paths {
		x.controllers[c] = true
	}
	if content, ok := readOptional(paths["memory"], "memory.oom_control"); ok {
		kv := parseKeyValues(content)
		x.oomKillDisable, x.underOOM = kv["oom_kill_disable"], kv["under_oom"]
	}
	if content, ok := readOptional(paths["cpuacct"], "cpuacct.usage_percpu"); ok {
		x.perCPU = parseUintList(content)
	}
	if len(st.IO.Devices) > 0 {
		x.devices = readPartitions(partitionsPath)
	}
	return x
}

// v1NoLimit is what a v1 limit file reads when no limit is set: the largest
// int64 rounded down to a page. containerd reports it as is.
var v1NoLimit = math.MaxInt64 / uint64(os.Getpagesize()) * uint64(os.Getpagesize())

func v1ByteLimit(limit uint64) uint64 {
	if limit == cgroups.Unlimited {
		return v1NoLimit
	}
	return limit
}

func v1Metrics(st *cgroups.Stats, x v1Extra) *v1.Metrics {
	out := &v1.Metrics{}
	has := x.controllers
	if has["pids"] {
		limit := st.Pids.Limit
		if limit == cgroups.Unlimited {
			limit = 0 // containerd's v1 convention for pids.max "max"
		}
		out.Pids = &v1.PidsStat{Current: st.Pids.Current, Limit: limit}
	}
	if has["cpu"] || has["cpuacct"] {
		c := st.CPU
		out.CPU = &v1.CPUStat{
			Usage: &v1.CPUUsage{
				Total:  c.UsageTotal,
				Kernel: c.UsageSystem,
				User:   c.UsageUser,
				PerCPU: x.perCPU,
			},
			Throttling: &v1.Throttle{
				Periods:          c.Periods,
				ThrottledPeriods: c.ThrottledPeriods,
				ThrottledTime:    c.ThrottledTime,
			},
		}
	}
	if has["memory"] {
		mem := st.Memory
		out.Memory = v1MemoryStat(mem.Stat)
		out.Memory.Usage = &v1.MemoryEntry{
			Limit:   v1ByteLimit(mem.Limit),
			Usage:   mem.Usage,
			Max:     mem.MaxUsage,
			Failcnt: mem.Failcnt,
		}
		// memsw counts memory plus swap, as containerd's Swap entry does;
		// a zero limit means the kernel has no swap accounting.
		out.Memory.Swap = &v1.MemoryEntry{Usage: mem.MemSwUsage}
		if mem.MemSwLimit != 0 {
			out.Memory.Swap.Limit = v1ByteLimit(mem.MemSwLimit)
		}
		out.MemoryOomControl = &v1.MemoryOomControl{
			OomKillDisable: x.oomKillDisable,
			UnderOom:       x.underOOM,
			OomKill:        mem.OOMKills,
		}
	}
	if has["blkio"] {
		out.Blkio = &v1.BlkIOStat{}
		for _, d := range st.IO.Devices {
			name := x.devices[[2]uint64{d.Major, d.Minor}]
			entry := func(op string, v uint64) *v1.BlkIOEntry {
				return &v1.BlkIOEntry{Op: op, Device: name, Major: d.Major, Minor: d.Minor, Value: v}
			}
			out.Blkio.IoServiceBytesRecursive = append(out.Blkio.IoServiceBytesRecursive,
				entry("Read", d.ReadBytes), entry("Write", d.WriteBytes))
			out.Blkio.IoServicedRecursive = append(out.Blkio.IoServicedRecursive,
				entry("Read", d.ReadIOs), entry("Write", d.WriteIOs))
		}
	}
	for _, size := range slices.Sorted(maps.Keys(st.Hugetlb)) {
		h := st.Hugetlb[size]
		out.Hugetlb = append(out.Hugetlb, &v1.HugetlbStat{
			Usage:    h.Usage,
			Max:      h.MaxUsage,
			Failcnt:  h.Failcnt,
			Pagesize: size,
		})
	}
	return out
}

// v1MemoryStat maps memory.stat keys to the fields of the same meaning.
func v1MemoryStat(s map[string]uint64) *v1.MemoryStat {
	return &v1.MemoryStat{
		Cache:                   s["cache"],
		RSS:                     s["rss"],
		RSSHuge:                 s["rss_huge"],
		MappedFile:              s["mapped_file"],
		Dirty:                   s["dirty"],
		Writeback:               s["writeback"],
		PgPgIn:                  s["pgpgin"],
		PgPgOut:                 s["pgpgout"],
		PgFault:                 s["pgfault"],
		PgMajFault:              s["pgmajfault"],
		InactiveAnon:            s["inactive_anon"],
		ActiveAnon:              s["active_anon"],
		InactiveFile:            s["inactive_file"],
		ActiveFile:              s["active_file"],
		Unevictable:             s["unevictable"],
		HierarchicalMemoryLimit: s["hierarchical_memory_limit"],
		HierarchicalSwapLimit:   s["hierarchical_memsw_limit"],
		TotalCache:              s["total_cache"],
		TotalRSS:                s["total_rss"],
		TotalRSSHuge:            s["total_rss_huge"],
		TotalMappedFile:         s["total_mapped_file"],
		TotalDirty:              s["total_dirty"],
		TotalWriteback:          s["total_writeback"],
		TotalPgPgIn:             s["total_pgpgin"],
		TotalPgPgOut:            s["total_pgpgout"],
		TotalPgFault:            s["total_pgfault"],
		TotalPgMajFault:         s["total_pgmajfault"],
		TotalInactiveAnon:       s["total_inactive_anon"],
		TotalActiveAnon:         s["total_active_anon"],
		TotalInactiveFile:       s["total_inactive_file"],
		TotalActiveFile:         s["total_active_file"],
		TotalUnevictable:        s["total_unevictable"],
	}
}

// v2Extra is what a v2 message needs beyond cgroups.Stats.
type v2Extra struct {
	// controllers lists cgroup.controllers.
	controllers map[string]bool
	// events is memory.events, nil when unreadable.
	events map[string]uint64
	// swapMax and swapPeak are memory.swap.max (Unlimited for "max") and
	// memory.swap.peak (Linux 6.5+); zero when absent.
	swapMax, swapPeak uint64
	// hugetlbMax is hugetlb.<size>.max by size.
	hugetlbMax map[string]uint64
}

func readV2Extra(dir string, st *cgroups.Stats) (v2Extra, error) {
	content, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return v2Extra{}, err
	}
	x := v2Extra{controllers: make(map[string]bool)}
	for _, c := range strings.Fields(string(content)) {
		x.controllers[c] = true
	}
	if x.controllers["memory"] {
		if content, ok := readOptional(dir, "memory.events"); ok {
			x.events = parseKeyValues(content)
		}
		if content, ok := readOptional(dir, "memory.swap.max"); ok {
			x.swapMax, _ = parseLimit(content)
		}
		if content, ok := readOptional(dir, "memory.swap.peak"); ok {
			x.swapPeak, _ = parseLimit(content)
		}
	}
	for size := range st.Hugetlb {
		if content, ok := readOptional(dir, "hugetlb."+size+".max"); ok {
			if v, ok := parseLimit(content); ok {
				if x.hugetlbMax == nil {
					x.hugetlbMax = make(map[string]uint64)
				}
				x.hugetlbMax[size] = v
			}
		}
	}
	return x, nil
}

func v2Metrics(st *cgroups.Stats, x v2Extra) *v2.Metrics {
	c := st.CPU
	out := &v2.Metrics{
		// cpu.stat's usage keys are core cgroup v2 files; only the
		// throttling keys need the cpu controller (and are 0 without it).
		CPU: &v2.CPUStat{
			UsageUsec:     c.UsageTotal / 1000,
			UserUsec:      c.UsageUser / 1000,
			SystemUsec:    c.UsageSystem / 1000,
			NrPeriods:     c.Periods,
			NrThrottled:   c.ThrottledPeriods,
			ThrottledUsec: c.ThrottledTime / 1000,
		},
	}
	has := x.controllers
	if has["pids"] {
		out.Pids = &v2.PidsStat{Current: st.Pids.Current, Limit: st.Pids.Limit}
	}
	if has["memory"] {
		mem := st.Memory
		ms := v2MemoryStat(mem.Stat)
		ms.Usage = mem.Usage
		ms.UsageLimit = mem.Limit
		ms.MaxUsage = mem.MaxUsage
		// Stats counts memory plus swap (0 without swap accounting); the
		// v2 message wants swap alone.
		if mem.MemSwUsage > mem.Usage {
			ms.SwapUsage = mem.MemSwUsage - mem.Usage
		}
		ms.SwapLimit = x.swapMax
		ms.SwapMaxUsage = x.swapPeak
		out.Memory = ms
		out.MemoryEvents = &v2.MemoryEvents{Max: mem.Failcnt, OomKill: mem.OOMKills}
		if ev := x.events; ev != nil {
			out.MemoryEvents = &v2.MemoryEvents{
				Low:          ev["low"],
				High:         ev["high"],
				Max:          ev["max"],
				Oom:          ev["oom"],
				OomKill:      ev["oom_kill"],
				OomGroupKill: ev["oom_group_kill"],
			}
		}
	}
	if has["io"] {
		out.Io = &v2.IOStat{}
		for _, d := range st.IO.Devices {
			out.Io.Usage = append(out.Io.Usage, &v2.IOEntry{
				Major:  d.Major,
				Minor:  d.Minor,
				Rbytes: d.ReadBytes,
				Wbytes: d.WriteBytes,
				Rios:   d.ReadIOs,
				Wios:   d.WriteIOs,
			})
		}
	}
	for _, size := range slices.Sorted(maps.Keys(st.Hugetlb)) {
		h := st.Hugetlb[size]
		out.Hugetlb = append(out.Hugetlb, &v2.HugeTlbStat{
			Current:  h.Usage,
			Max:      x.hugetlbMax[size],
			Pagesize: size,
			Failcnt:  h.Failcnt,
		})
	}
	return out
}

// v2MemoryStat maps memory.stat keys to the fields of the same meaning.
// Since Linux 5.9 the workingset counters are split into _anon and _file
// (and "slab" was added in 5.9 too): their sums have the old meaning.
func v2MemoryStat(s map[string]uint64) *v2.MemoryStat {
	either := func(key string, parts ...string) uint64 {
		if v, ok := s[key]; ok {
			return v
		}
		var sum uint64
		for _, p := range parts {
			sum += s[p]
		}
		return sum
	}
	return &v2.MemoryStat{
		Anon:                  s["anon"],
		File:                  s["file"],
		KernelStack:           s["kernel_stack"],
		Slab:                  either("slab", "slab_reclaimable", "slab_unreclaimable"),
		Sock:                  s["sock"],
		Shmem:                 s["shmem"],
		FileMapped:            s["file_mapped"],
		FileDirty:             s["file_dirty"],
		FileWriteback:         s["file_writeback"],
		AnonThp:               s["anon_thp"],
		InactiveAnon:          s["inactive_anon"],
		ActiveAnon:            s["active_anon"],
		InactiveFile:          s["inactive_file"],
		ActiveFile:            s["active_file"],
		Unevictable:           s["unevictable"],
		SlabReclaimable:       s["slab_reclaimable"],
		SlabUnreclaimable:     s["slab_unreclaimable"],
		Pgfault:               s["pgfault"],
		Pgmajfault:            s["pgmajfault"],
		WorkingsetRefault:     either("workingset_refault", "workingset_refault_anon", "workingset_refault_file"),
		WorkingsetActivate:    either("workingset_activate", "workingset_activate_anon", "workingset_activate_file"),
		WorkingsetNodereclaim: s["workingset_nodereclaim"],
		Pgrefill:              s["pgrefill"],
		Pgscan:                s["pgscan"],
		Pgsteal:               s["pgsteal"],
		Pgactivate:            s["pgactivate"],
		Pgdeactivate:          s["pgdeactivate"],
		Pglazyfree:            s["pglazyfree"],
		Pglazyfreed:           s["pglazyfreed"],
		ThpFaultAlloc:         s["thp_fault_alloc"],
		ThpCollapseAlloc:      s["thp_collapse_alloc"],
	}
}

// readOptional reads dir/name; ok is false when dir is "" or the read fails.
func readOptional(dir, name string) (string, bool) {
	if dir == "" {
		return "", false
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	return string(b), err == nil
}

// parseKeyValues parses "key value" lines, skipping any it cannot parse.
func parseKeyValues(content string) map[string]uint64 {
	out := make(map[string]uint64)
	for line := range strings.Lines(content) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

// parseUintList parses space-separated numbers.
func parseUintList(content string) []uint64 {
	var out []uint64
	for _, f := range strings.Fields(content) {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	return out
}

// parseLimit parses a v2 limit file: a number or "max" (Unlimited).
func parseLimit(content string) (uint64, bool) {
	s := strings.TrimSpace(content)
	if s == "max" {
		return cgroups.Unlimited, true
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// readPartitions maps major:minor to "/dev/<name>" from /proc/partitions
// ("major minor #blocks name" after a header), as containerd names blkio
// devices. It returns nil if the file cannot be read.
func readPartitions(path string) map[[2]uint64]string {
	content, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	out := make(map[[2]uint64]string)
	for line := range strings.Lines(string(content)) {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		major, err1 := strconv.ParseUint(f[0], 10, 64)
		minor, err2 := strconv.ParseUint(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue // the header
		}
		key := [2]uint64{major, minor}
		if _, dup := out[key]; !dup {
			out[key] = "/dev/" + f[3]
		}
	}
	return out
}
