package cgroups

import (
	"fmt"
	"strings"
)

func (m *v2Manager) Stats() (*Stats, error) {
	content, err := readFile(m.dir, "cgroup.controllers")
	if err != nil {
		return nil, err
	}
	enabled := strings.Fields(content)
	st := &Stats{}
	// cpu.stat exists without the cpu controller; only the throttling keys
	// need it, and they are then simply absent.
	cpuStat, err := readFile(m.dir, "cpu.stat")
	if err != nil {
		return nil, err
	}
	st.CPU = CPUStats{
		UsageTotal:       keyValue(cpuStat, "usage_usec") * 1000,
		UsageUser:        keyValue(cpuStat, "user_usec") * 1000,
		UsageSystem:      keyValue(cpuStat, "system_usec") * 1000,
		Periods:          keyValue(cpuStat, "nr_periods"),
		ThrottledPeriods: keyValue(cpuStat, "nr_throttled"),
		ThrottledTime:    keyValue(cpuStat, "throttled_usec") * 1000,
	}
	if containsString(enabled, "memory") {
		if err := v2MemoryStats(m.dir, &st.Memory); err != nil {
			return nil, err
		}
	}
	if containsString(enabled, "pids") {
		if st.Pids.Current, err = readUint(m.dir, "pids.current", false); err != nil {
			return nil, err
		}
		if st.Pids.Limit, err = readUint(m.dir, "pids.max", false); err != nil {
			return nil, err
		}
	}
	if containsString(enabled, "io") {
		ioStat, err := readFile(m.dir, "io.stat")
		if err != nil {
			return nil, err
		}
		acc := ioAccumulator{}
		acc.addV2IOStat(ioStat)
		st.IO.Devices = acc.sorted()
	}
	if containsString(enabled, "hugetlb") {
		if st.Hugetlb, err = v2HugetlbStats(m.dir); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func v2MemoryStats(dir string, mem *MemoryStats) error {
	var err error
	read := func(dst *uint64, name string, optional bool) {
		if err == nil {
			*dst, err = readUint(dir, name, optional)
		}
	}
	read(&mem.Usage, "memory.current", false)
	read(&mem.MaxUsage, "memory.peak", true) // Linux 5.19+
	read(&mem.Limit, "memory.max", false)
	if err != nil {
		return err
	}
	// The swap files are absent without swap accounting.
	swapMax, err := readOptional(dir, "memory.swap.max")
	if err != nil {
		return err
	}
	if swapMax != "" {
		var swapUsage, swapLimit uint64
		if swapLimit, err = parseLimit(swapMax); err != nil {
			return fmt.Errorf("parse %s/memory.swap.max: %w", dir, err)
		}
		if swapUsage, err = readUint(dir, "memory.swap.current", false); err != nil {
			return err
		}
		mem.MemSwUsage = mem.Usage + swapUsage
		mem.MemSwLimit = Unlimited
		if mem.Limit != Unlimited && swapLimit != Unlimited {
			mem.MemSwLimit = mem.Limit + swapLimit
		}
	}
	events, err := readFile(dir, "memory.events")
	if err != nil {
		return err
	}
	mem.Failcnt = keyValue(events, "max")
	mem.OOMKills = keyValue(events, "oom_kill")
	stat, err := readFile(dir, "memory.stat")
	if err != nil {
		return err
	}
	mem.Stat = parseMemoryStat(stat)
	return nil
}

func v2HugetlbStats(dir string) (map[string]HugetlbStats, error) {
	sizes, err := hugePageSizes(hugepagesDir)
	if err != nil || len(sizes) == 0 {
		return nil, err
	}
	out := make(map[string]HugetlbStats, len(sizes))
	for _, size := range sizes {
		var h HugetlbStats
		if h.Usage, err = readUint(dir, "hugetlb."+size+".current", false); err != nil {
			return nil, err
		}
		events, err := readFile(dir, "hugetlb."+size+".events")
		if err != nil {
			return nil, err
		}
		h.Failcnt = keyValue(events, "max")
		out[size] = h
	}
	return out, nil
}
