package cgroups

import (
	"strconv"
	"strings"
)

func (m *v1Manager) Stats() (*Stats, error) {
	st := &Stats{}
	if dir, ok := m.paths["memory"]; ok {
		if err := v1MemoryStats(dir, &st.Memory); err != nil {
			return nil, err
		}
	}
	if dir, ok := m.paths["cpuacct"]; ok {
		if err := v1CPUUsage(dir, &st.CPU); err != nil {
			return nil, err
		}
	}
	if dir, ok := m.paths["cpu"]; ok {
		content, err := readFile(dir, "cpu.stat")
		if err != nil {
			return nil, err
		}
		st.CPU.Periods = keyValue(content, "nr_periods")
		st.CPU.ThrottledPeriods = keyValue(content, "nr_throttled")
		st.CPU.ThrottledTime = keyValue(content, "throttled_time")
	}
	if dir, ok := m.paths["pids"]; ok {
		var err error
		if st.Pids.Current, err = readUint(dir, "pids.current", false); err != nil {
			return nil, err
		}
		if st.Pids.Limit, err = readUint(dir, "pids.max", false); err != nil {
			return nil, err
		}
	}
	if dir, ok := m.paths["blkio"]; ok {
		devices, err := v1BlkioStats(dir)
		if err != nil {
			return nil, err
		}
		st.IO.Devices = devices
	}
	if dir, ok := m.paths["hugetlb"]; ok {
		hugetlb, err := v1HugetlbStats(dir)
		if err != nil {
			return nil, err
		}
		st.Hugetlb = hugetlb
	}
	return st, nil
}

func v1MemoryStats(dir string, mem *MemoryStats) error {
	var err error
	read := func(dst *uint64, name string, optional bool) {
		if err == nil {
			*dst, err = readUint(dir, name, optional)
		}
	}
	read(&mem.Usage, "memory.usage_in_bytes", false)
	read(&mem.MaxUsage, "memory.max_usage_in_bytes", false)
	read(&mem.Limit, "memory.limit_in_bytes", false)
	read(&mem.Failcnt, "memory.failcnt", false)
	read(&mem.MemSwUsage, "memory.memsw.usage_in_bytes", true)
	read(&mem.MemSwLimit, "memory.memsw.limit_in_bytes", true)
	if err != nil {
		return err
	}
	oom, err := readFile(dir, "memory.oom_control")
	if err != nil {
		return err
	}
	mem.OOMKills = keyValue(oom, "oom_kill")
	stat, err := readFile(dir, "memory.stat")
	if err != nil {
		return err
	}
	mem.Stat = parseMemoryStat(stat)
	return nil
}

// userHZ is the unit of cpuacct.stat; Linux exports it as 100 on every
// architecture, whatever the internal tick rate.
const userHZ = 100

// v1CPUUsage reads cpuacct.usage_all, whose per-CPU user and system times in
// nanoseconds add up to cpuacct.usage: one read for all three numbers.
// Kernels before 4.15 lack it and fall back to cpuacct.usage + cpuacct.stat.
func v1CPUUsage(dir string, cpu *CPUStats) error {
	all, err := readOptional(dir, "cpuacct.usage_all")
	if err != nil {
		return err
	}
	if all != "" {
		_, rows, _ := strings.Cut(all, "\n") // "cpu user system" header
		for _, line := range strings.Split(rows, "\n") {
			fields := strings.Fields(line)
			if len(fields) != 3 {
				continue
			}
			user, err1 := strconv.ParseUint(fields[1], 10, 64)
			system, err2 := strconv.ParseUint(fields[2], 10, 64)
			if err1 == nil && err2 == nil {
				cpu.UsageUser += user
				cpu.UsageSystem += system
			}
		}
		cpu.UsageTotal = cpu.UsageUser + cpu.UsageSystem
		return nil
	}
	if cpu.UsageTotal, err = readUint(dir, "cpuacct.usage", false); err != nil {
		return err
	}
	ticks, err := readFile(dir, "cpuacct.stat")
	if err != nil {
		return err
	}
	cpu.UsageUser = keyValue(ticks, "user") * (1e9 / userHZ)
	cpu.UsageSystem = keyValue(ticks, "system") * (1e9 / userHZ)
	return nil
}

// v1BlkioStats prefers BFQ's counters, which see all I/O of devices using
// BFQ, and falls back to blk-throttle's, which modern kernels only keep for
// devices with a throttle limit. Adding both would count I/O twice.
func v1BlkioStats(dir string) ([]IODeviceStats, error) {
	for _, prefix := range [...]string{"blkio.bfq.", "blkio.throttle."} {
		bytes, err := readOptional(dir, prefix+"io_service_bytes_recursive")
		if err != nil {
			return nil, err
		}
		ios, err := readOptional(dir, prefix+"io_serviced_recursive")
		if err != nil {
			return nil, err
		}
		acc := ioAccumulator{}
		acc.addV1BlkioFile(bytes, true)
		acc.addV1BlkioFile(ios, false)
		if len(acc) > 0 {
			return acc.sorted(), nil
		}
	}
	return nil, nil
}

func v1HugetlbStats(dir string) (map[string]HugetlbStats, error) {
	sizes, err := hugePageSizes(hugepagesDir)
	if err != nil || len(sizes) == 0 {
		return nil, err
	}
	out := make(map[string]HugetlbStats, len(sizes))
	for _, size := range sizes {
		var h HugetlbStats
		prefix := "hugetlb." + size + "."
		if h.Usage, err = readUint(dir, prefix+"usage_in_bytes", false); err != nil {
			return nil, err
		}
		if h.MaxUsage, err = readUint(dir, prefix+"max_usage_in_bytes", false); err != nil {
			return nil, err
		}
		if h.Failcnt, err = readUint(dir, prefix+"failcnt", false); err != nil {
			return nil, err
		}
		out[size] = h
	}
	return out, nil
}
