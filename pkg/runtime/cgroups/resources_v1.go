package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// requirement ties a part of the OCI resources to the controller it needs.
type requirement struct{ controller, resource string }

// v1Requirements lists the controllers the resources need, so Set can refuse
// before writing anything when one is not mounted.
func v1Requirements(r *specs.LinuxResources) []requirement {
	var reqs []requirement
	add := func(need bool, controller, resource string) {
		if need {
			reqs = append(reqs, requirement{controller, resource})
		}
	}
	add(len(r.Devices) > 0, "devices", "devices")
	if mem := r.Memory; mem != nil {
		add(mem.Limit != nil || mem.Reservation != nil || mem.Swap != nil || mem.Kernel != nil ||
			mem.KernelTCP != nil || mem.Swappiness != nil || mem.DisableOOMKiller != nil ||
			mem.UseHierarchy != nil, "memory", "memory")
	}
	if cpu := r.CPU; cpu != nil {
		add(set(cpu.Shares) || set(cpu.Quota) || set(cpu.Period) || cpu.Burst != nil ||
			set(cpu.RealtimeRuntime) || set(cpu.RealtimePeriod) || cpu.Idle != nil, "cpu", "cpu")
		add(cpu.Cpus != "" || cpu.Mems != "", "cpuset", "cpu.cpus/mems")
	}
	add(r.Pids != nil && r.Pids.Limit != nil, "pids", "pids")
	if b := r.BlockIO; b != nil {
		add(set(b.Weight) || set(b.LeafWeight) || len(b.WeightDevice) > 0 ||
			len(b.ThrottleReadBpsDevice) > 0 || len(b.ThrottleWriteBpsDevice) > 0 ||
			len(b.ThrottleReadIOPSDevice) > 0 || len(b.ThrottleWriteIOPSDevice) > 0, "blkio", "blockIO")
	}
	add(len(r.HugepageLimits) > 0, "hugetlb", "hugepageLimits")
	if n := r.Network; n != nil {
		add(n.ClassID != nil, "net_cls", "network.classID")
		add(len(n.Priorities) > 0, "net_prio", "network.priorities")
	}
	add(len(r.Rdma) > 0, "rdma", "rdma")
	return reqs
}

func (m *v1Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if len(r.Unified) > 0 {
		key := slices.Sorted(maps.Keys(r.Unified))[0]
		return fmt.Errorf("unified resource %q needs cgroup v2, but this host uses cgroup v1", key)
	}
	for _, req := range v1Requirements(r) {
		if _, err := m.dir(req.controller); err != nil {
			return fmt.Errorf("%s: %w", req.resource, err)
		}
	}
	// Controllers are independent in v1; this is runc's order, with cpuset
	// before cpu so pinned containers never run on the wrong cores.
	if cpu := r.CPU; cpu != nil && (cpu.Cpus != "" || cpu.Mems != "") {
		if err := setV1Cpuset(m.paths["cpuset"], cpu); err != nil {
			return err
		}
	}
	if len(r.Devices) > 0 {
		if err := setV1Devices(m.paths["devices"], r.Devices); err != nil {
			return err
		}
	}
	if r.Memory != nil {
		if err := setV1Memory(m.paths["memory"], r.Memory); err != nil {
			return err
		}
	}
	if r.CPU != nil {
		if err := setV1CPU(m.paths["cpu"], r.CPU); err != nil {
			return err
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		if err := writeFile(m.paths["pids"], "pids.max", pidsMax(*r.Pids.Limit)); err != nil {
			return err
		}
	}
	if r.BlockIO != nil {
		if err := setV1BlockIO(m.paths["blkio"], r.BlockIO); err != nil {
			return err
		}
	}
	for _, l := range r.HugepageLimits {
		if err := validPageSize(l.Pagesize); err != nil {
			return err
		}
		name := "hugetlb." + l.Pagesize + ".limit_in_bytes"
		if err := writeFile(m.paths["hugetlb"], name, strconv.FormatUint(l.Limit, 10)); err != nil {
			return err
		}
	}
	if r.Network != nil {
		if err := setV1Network(m.paths, r.Network); err != nil {
			return err
		}
	}
	return setRdma(m.paths["rdma"], r.Rdma)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func setV1Cpuset(dir string, cpu *specs.LinuxCPU) error {
	if cpu.Cpus != "" {
		if err := writeFile(dir, "cpuset.cpus", cpu.Cpus); err != nil {
			return err
		}
	}
	if cpu.Mems != "" {
		return writeFile(dir, "cpuset.mems", cpu.Mems)
	}
	return nil
}

// setV1Devices starts from "deny everything" and replays the spec's rules in
// order, so the result does not depend on what the cgroup allowed before.
func setV1Devices(dir string, rules []specs.LinuxDeviceCgroup) error {
	if err := writeFile(dir, "devices.deny", "a"); err != nil {
		return err
	}
	for _, d := range rules {
		file, rule, err := v1DeviceRule(d)
		if err != nil {
			return err
		}
		if err := writeFile(dir, file, rule); err != nil {
			return err
		}
	}
	return nil
}

func setV1Memory(dir string, mem *specs.LinuxMemory) error {
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && set(mem.Limit) && *mem.Limit > 0 {
		if err := checkUsageBelow(dir, "memory.usage_in_bytes", *mem.Limit); err != nil {
			return err
		}
	}
	if err := setV1MemoryAndSwap(dir, mem.Limit, mem.Swap); err != nil {
		return err
	}
	if set(mem.Reservation) {
		if err := writeFile(dir, "memory.soft_limit_in_bytes", v1Int(*mem.Reservation)); err != nil {
			return err
		}
	}
	// Kernel memory limits were deprecated in Linux 5.4 and their files
	// removed in 6.1; where the file is gone the limit is silently dropped,
	// as the OCI spec allows.
	kernelLimits := []struct {
		file  string
		limit *int64
	}{{"memory.kmem.limit_in_bytes", mem.Kernel}, {"memory.kmem.tcp.limit_in_bytes", mem.KernelTCP}}
	for _, k := range kernelLimits {
		if set(k.limit) {
			if err := writeFile(dir, k.file, v1Int(*k.limit)); err != nil && !errors.Is(err, unix.ENOENT) {
				return err
			}
		}
	}
	if mem.Swappiness != nil {
		if *mem.Swappiness > 100 {
			return fmt.Errorf("memory.swappiness %d is above 100", *mem.Swappiness)
		}
		if err := writeFile(dir, "memory.swappiness", strconv.FormatUint(*mem.Swappiness, 10)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil {
		if err := writeFile(dir, "memory.oom_control", strconv.FormatInt(boolInt(*mem.DisableOOMKiller), 10)); err != nil {
			return err
		}
	}
	if mem.UseHierarchy != nil {
		return writeFile(dir, "memory.use_hierarchy", strconv.FormatInt(boolInt(*mem.UseHierarchy), 10))
	}
	return nil
}

// checkUsageBelow implements OCI checkBeforeUpdate: refuse a limit the
// cgroup already exceeds instead of letting the kernel reclaim or OOM-kill.
func checkUsageBelow(dir, usageFile string, limit int64) error {
	usage, err := readUint(dir, usageFile, false)
	if err != nil {
		return err
	}
	if usage > uint64(limit) {
		return fmt.Errorf("memory.limit %d is below the current usage %d of %s", limit, usage, dir)
	}
	return nil
}

// setV1MemoryAndSwap writes memory.limit_in_bytes and memory.memsw.limit_in_bytes
// in an order the kernel accepts: it refuses any write that would leave
// memsw < limit. When the new memsw is at least the current limit, writing
// memsw first keeps that true at every step (the case when raising both);
// otherwise both are being lowered and the limit must go first.
func setV1MemoryAndSwap(dir string, limit, swap *int64) error {
	writeLimit := func() error { return writeFile(dir, "memory.limit_in_bytes", v1Int(*limit)) }
	writeSwap := func() error { return writeFile(dir, "memory.memsw.limit_in_bytes", v1Int(*swap)) }
	switch {
	case !set(limit) && !set(swap):
		return nil
	case !set(swap):
		return writeLimit()
	case !set(limit):
		return writeSwap()
	}
	if err := checkSwapAboveLimit(*limit, *swap); err != nil {
		return err
	}
	current, err := readUint(dir, "memory.limit_in_bytes", false)
	if err != nil {
		return err
	}
	first, second := writeLimit, writeSwap
	if memswFirst(current, *swap) {
		first, second = writeSwap, writeLimit
	}
	if err := first(); err != nil {
		return err
	}
	return second()
}

// memswFirst tells whether the new memory+swap limit must be written before
// the memory limit, given the current memory limit.
func memswFirst(currentLimit uint64, newMemsw int64) bool {
	return asLimit(newMemsw) >= currentLimit
}

func setV1CPU(dir string, cpu *specs.LinuxCPU) error {
	if set(cpu.Shares) {
		if err := writeFile(dir, "cpu.shares", strconv.FormatUint(*cpu.Shares, 10)); err != nil {
			return err
		}
	}
	var period, quota string
	if set(cpu.Period) {
		period = strconv.FormatUint(*cpu.Period, 10)
	}
	if set(cpu.Quota) {
		quota = v1Int(*cpu.Quota)
	}
	if err := writeDependentPair(dir, "cpu.cfs_period_us", period, "cpu.cfs_quota_us", quota); err != nil {
		return err
	}
	if cpu.Burst != nil {
		if err := writeFile(dir, "cpu.cfs_burst_us", strconv.FormatUint(*cpu.Burst, 10)); err != nil {
			return err
		}
	}
	var rtPeriod, rtRuntime string
	if set(cpu.RealtimePeriod) {
		rtPeriod = strconv.FormatUint(*cpu.RealtimePeriod, 10)
	}
	if set(cpu.RealtimeRuntime) {
		rtRuntime = v1Int(*cpu.RealtimeRuntime)
	}
	if err := writeDependentPair(dir, "cpu.rt_period_us", rtPeriod, "cpu.rt_runtime_us", rtRuntime); err != nil {
		return err
	}
	if cpu.Idle != nil {
		return writeFile(dir, "cpu.idle", strconv.FormatInt(*cpu.Idle, 10))
	}
	return nil
}

// writeDependentPair writes a period and the budget that goes with it (""
// means unset). The kernel checks every write against the other, current
// value and the parent's budget, so a new period can be refused (EINVAL)
// only because the old budget does not fit it: then the budget goes first.
func writeDependentPair(dir, periodFile, period, budgetFile, budget string) error {
	if period != "" {
		err := writeFile(dir, periodFile, period)
		if err == nil {
			period = ""
		} else if budget == "" || !errors.Is(err, unix.EINVAL) {
			return err
		}
	}
	if budget != "" {
		if err := writeFile(dir, budgetFile, budget); err != nil {
			return err
		}
	}
	if period != "" {
		return writeFile(dir, periodFile, period)
	}
	return nil
}

// setV1BlockIO writes blkio weights and throttles. Weights go to the CFQ
// files when the kernel has them and to the BFQ ones otherwise (CFQ was
// removed in Linux 5.0); BFQ has no leaf weights.
func setV1BlockIO(dir string, b *specs.LinuxBlockIO) error {
	if set(b.Weight) {
		if err := writeWeight(dir, "weight", strconv.FormatUint(uint64(*b.Weight), 10)); err != nil {
			return err
		}
	}
	if set(b.LeafWeight) {
		if err := writeFile(dir, "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10)); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight != nil {
			if err := writeWeight(dir, "weight_device", blockDevice(wd.LinuxBlockIODevice)+" "+strconv.FormatUint(uint64(*wd.Weight), 10)); err != nil {
				return err
			}
		}
		if wd.LeafWeight != nil {
			if err := writeFile(dir, "blkio.leaf_weight_device", blockDevice(wd.LinuxBlockIODevice)+" "+strconv.FormatUint(uint64(*wd.LeafWeight), 10)); err != nil {
				return err
			}
		}
	}
	throttles := []struct {
		file    string
		devices []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	}
	for _, t := range throttles {
		for _, d := range t.devices {
			// A rate of 0 removes the device's limit.
			if err := writeFile(dir, t.file, blockDevice(d.LinuxBlockIODevice)+" "+strconv.FormatUint(d.Rate, 10)); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeWeight(dir, suffix, val string) error {
	err := writeFile(dir, "blkio."+suffix, val)
	if errors.Is(err, unix.ENOENT) {
		return writeFile(dir, "blkio.bfq."+suffix, val)
	}
	return err
}

func setV1Network(paths map[string]string, n *specs.LinuxNetwork) error {
	if n.ClassID != nil {
		if err := writeFile(paths["net_cls"], "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10)); err != nil {
			return err
		}
	}
	for _, p := range n.Priorities {
		if err := checkToken("network interface", p.Name); err != nil {
			return err
		}
		if err := writeFile(paths["net_prio"], "net_prio.ifpriomap", p.Name+" "+strconv.FormatUint(uint64(p.Priority), 10)); err != nil {
			return err
		}
	}
	return nil
}

// setRdma writes rdma.max, identical on v1 and v2. Devices are sorted so the
// writes happen in a reproducible order.
func setRdma(dir string, limits map[string]specs.LinuxRdma) error {
	for _, device := range slices.Sorted(maps.Keys(limits)) {
		line, ok, err := rdmaMax(device, limits[device])
		if err != nil {
			return err
		}
		if ok {
			if err := writeFile(dir, "rdma.max", line); err != nil {
				return err
			}
		}
	}
	return nil
}
