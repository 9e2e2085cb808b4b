package cgroups

import (
	"os"
	"slices"
	"strconv"
	"strings"
)

// Stats is a snapshot of a container's cgroup counters. Counters of
// controllers that are not mounted (v1) or not enabled (v2) stay zero.
// Limits that are not set read as Unlimited.
type Stats struct {
	Memory MemoryStats `json:"memory"`
	CPU    CPUStats    `json:"cpu"`
	Pids   PidsStats   `json:"pids"`
	// IO comes from blkio on v1 and io on v2. On v1 the kernel only counts
	// I/O under the BFQ scheduler or on devices that have a throttle limit.
	IO IOStats `json:"io"`
	// Hugetlb is keyed by page size ("2MB").
	Hugetlb map[string]HugetlbStats `json:"hugetlb,omitempty"`
}

// MemoryStats are in bytes, except the counters.
type MemoryStats struct {
	Usage    uint64 `json:"usage"`
	MaxUsage uint64 `json:"max_usage"` // v2: memory.peak, 0 before Linux 5.19
	Limit    uint64 `json:"limit"`
	// Failcnt counts hits of the limit (v2: the "max" event).
	Failcnt  uint64 `json:"failcnt"`
	OOMKills uint64 `json:"oom_kills"`
	// MemSwUsage and MemSwLimit count memory plus swap, as the OCI swap
	// limit does; both are 0 without swap accounting.
	MemSwUsage uint64 `json:"memsw_usage"`
	MemSwLimit uint64 `json:"memsw_limit"`
	// Stat holds memory.stat as the kernel names its keys.
	Stat map[string]uint64 `json:"stat,omitempty"`
}

// CPUStats times are in nanoseconds.
type CPUStats struct {
	UsageTotal       uint64 `json:"usage_total_ns"`
	UsageUser        uint64 `json:"usage_user_ns"`
	UsageSystem      uint64 `json:"usage_system_ns"`
	Periods          uint64 `json:"periods"`
	ThrottledPeriods uint64 `json:"throttled_periods"`
	ThrottledTime    uint64 `json:"throttled_time_ns"`
}

// PidsStats counts tasks (threads included).
type PidsStats struct {
	Current uint64 `json:"current"`
	Limit   uint64 `json:"limit"`
}

// IOStats lists the devices the cgroup did I/O on, sorted by device number.
type IOStats struct {
	Devices []IODeviceStats `json:"devices,omitempty"`
}

// IODeviceStats are the bytes and operations of one block device.
type IODeviceStats struct {
	Major      uint64 `json:"major"`
	Minor      uint64 `json:"minor"`
	ReadBytes  uint64 `json:"read_bytes"`
	WriteBytes uint64 `json:"write_bytes"`
	ReadIOs    uint64 `json:"read_ios"`
	WriteIOs   uint64 `json:"write_ios"`
}

// HugetlbStats are in bytes, except Failcnt (allocations refused by the
// limit). MaxUsage is 0 on v2, which does not record it.
type HugetlbStats struct {
	Usage    uint64 `json:"usage"`
	MaxUsage uint64 `json:"max_usage"`
	Failcnt  uint64 `json:"failcnt"`
}

const hugepagesDir = "/sys/kernel/mm/hugepages"

// hugePageSizes lists the host's hugepage sizes in hugetlb's file naming
// ("2MB"), from the hugepages-<n>kB directories of dir.
func hugePageSizes(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	var sizes []string
	for _, name := range names {
		kib, ok := strings.CutPrefix(name, "hugepages-")
		if kib, ok = strings.CutSuffix(kib, "kB"); !ok {
			continue
		}
		if n, err := strconv.ParseUint(kib, 10, 64); err == nil {
			sizes = append(sizes, pageSizeName(n))
		}
	}
	slices.Sort(sizes)
	return sizes, nil
}

// ioAccumulator sums I/O counters per device.
type ioAccumulator map[[2]uint64]*IODeviceStats

func (acc ioAccumulator) device(majMin string) *IODeviceStats {
	maj, mnr, ok := strings.Cut(majMin, ":")
	if !ok {
		return nil
	}
	major, err1 := strconv.ParseUint(maj, 10, 64)
	minor, err2 := strconv.ParseUint(mnr, 10, 64)
	if err1 != nil || err2 != nil {
		return nil
	}
	key := [2]uint64{major, minor}
	d := acc[key]
	if d == nil {
		d = &IODeviceStats{Major: major, Minor: minor}
		acc[key] = d
	}
	return d
}

func (acc ioAccumulator) sorted() []IODeviceStats {
	if len(acc) == 0 {
		return nil
	}
	out := make([]IODeviceStats, 0, len(acc))
	for _, d := range acc {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b IODeviceStats) int {
		if a.Major != b.Major {
			return cmpUint(a.Major, b.Major)
		}
		return cmpUint(a.Minor, b.Minor)
	})
	return out
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// addV1BlkioFile adds a v1 blkio recursive stats file ("8:0 Read 4096"
// lines) to bytes or ios counters.
func (acc ioAccumulator) addV1BlkioFile(content string, bytes bool) {
	for len(content) > 0 {
		var line string
		line, content, _ = strings.Cut(content, "\n")
		fields := strings.Fields(line)
		if len(fields) != 3 {
			continue // the "Total N" summary line
		}
		v, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil {
			continue
		}
		if fields[1] != "Read" && fields[1] != "Write" {
			continue
		}
		d := acc.device(fields[0])
		if d == nil {
			continue
		}
		switch {
		case fields[1] == "Read" && bytes:
			d.ReadBytes += v
		case fields[1] == "Read":
			d.ReadIOs += v
		case bytes:
			d.WriteBytes += v
		default:
			d.WriteIOs += v
		}
	}
}

// addV2IOStat adds io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...").
func (acc ioAccumulator) addV2IOStat(content string) {
	for len(content) > 0 {
		var line string
		line, content, _ = strings.Cut(content, "\n")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		d := acc.device(fields[0])
		if d == nil {
			continue
		}
		for _, kv := range fields[1:] {
			k, val, _ := strings.Cut(kv, "=")
			v, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				d.ReadBytes += v
			case "wbytes":
				d.WriteBytes += v
			case "rios":
				d.ReadIOs += v
			case "wios":
				d.WriteIOs += v
			}
		}
	}
}

func parseMemoryStat(content string) map[string]uint64 {
	stat := make(map[string]uint64)
	forEachKeyValue(content, func(k string, v uint64) { stat[k] = v })
	return stat
}
