package cgroups

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/pkg/runtime/cgroups/devicefilter"
)

// fileWrite is one write to a file of the container's cgroup directory.
type fileWrite struct{ file, value string }

// controller is the v2 controller a file belongs to ("" for core cgroup.*
// files, which exist without any controller).
func (w fileWrite) controller() string {
	c, _, _ := strings.Cut(w.file, ".")
	if c == "cgroup" {
		return ""
	}
	return c
}

// v2Writes converts OCI resources into the cgroup v2 files to write, in
// order. Settings with no v2 equivalent are dropped, as runc does: memory
// swappiness, kernel memory, disableOOMKiller, useHierarchy, blkio leaf
// weights and net_cls/net_prio. Device rules are not cgroup files on v2:
// Set attaches them as an eBPF program (package devicefilter). Unified
// entries come last so they override converted ones.
func v2Writes(r *specs.LinuxResources) ([]fileWrite, error) {
	var writes []fileWrite
	add := func(file, value string) { writes = append(writes, fileWrite{file, value}) }

	if cpu := r.CPU; cpu != nil {
		if set(cpu.RealtimeRuntime) || set(cpu.RealtimePeriod) {
			return nil, fmt.Errorf("cpu.realtimeRuntime/realtimePeriod are not supported on cgroup v2")
		}
		if cpu.Cpus != "" {
			add("cpuset.cpus", cpu.Cpus)
		}
		if cpu.Mems != "" {
			add("cpuset.mems", cpu.Mems)
		}
		if set(cpu.Shares) {
			add("cpu.weight", strconv.FormatUint(cpuWeightFromShares(*cpu.Shares), 10))
		}
		if set(cpu.Quota) || set(cpu.Period) {
			add("cpu.max", v2CPUMax(cpu.Quota, cpu.Period))
		}
		if cpu.Burst != nil {
			add("cpu.max.burst", strconv.FormatUint(*cpu.Burst, 10))
		}
		if cpu.Idle != nil {
			add("cpu.idle", strconv.FormatInt(*cpu.Idle, 10))
		}
	}
	if mem := r.Memory; mem != nil {
		if set(mem.Limit) {
			add("memory.max", v2Int(*mem.Limit))
		}
		if set(mem.Reservation) {
			add("memory.low", v2Int(*mem.Reservation))
		}
		if set(mem.Swap) {
			swapMax, err := v2SwapMax(mem.Limit, mem.Swap)
			if err != nil {
				return nil, err
			}
			add("memory.swap.max", swapMax)
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		add("pids.max", pidsMax(*r.Pids.Limit))
	}
	if b := r.BlockIO; b != nil {
		if set(b.Weight) {
			add("io.weight", strconv.FormatUint(ioWeightFromBlkio(*b.Weight), 10))
		}
		for _, wd := range b.WeightDevice {
			if wd.Weight != nil {
				add("io.weight", blockDevice(wd.LinuxBlockIODevice)+" "+strconv.FormatUint(ioWeightFromBlkio(*wd.Weight), 10))
			}
		}
		throttles := []struct {
			key     string
			devices []specs.LinuxThrottleDevice
		}{
			{"rbps", b.ThrottleReadBpsDevice}, {"wbps", b.ThrottleWriteBpsDevice},
			{"riops", b.ThrottleReadIOPSDevice}, {"wiops", b.ThrottleWriteIOPSDevice},
		}
		for _, t := range throttles {
			for _, d := range t.devices {
				rate := "max" // 0 removes the limit, as on v1
				if d.Rate != 0 {
					rate = strconv.FormatUint(d.Rate, 10)
				}
				add("io.max", blockDevice(d.LinuxBlockIODevice)+" "+t.key+"="+rate)
			}
		}
	}
	for _, l := range r.HugepageLimits {
		if err := validPageSize(l.Pagesize); err != nil {
			return nil, err
		}
		add("hugetlb."+l.Pagesize+".max", strconv.FormatUint(l.Limit, 10))
	}
	for _, device := range slices.Sorted(maps.Keys(r.Rdma)) {
		line, ok, err := rdmaMax(device, r.Rdma[device])
		if err != nil {
			return nil, err
		}
		if ok {
			add("rdma.max", line)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(r.Unified)) {
		if err := checkFileName(key); err != nil {
			return nil, fmt.Errorf("unified: %w", err)
		}
		add(key, r.Unified[key])
	}
	return writes, nil
}

func (m *v2Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	writes, err := v2Writes(r)
	if err != nil {
		return err
	}
	if len(r.Devices) > 0 {
		if err := devicefilter.Apply(m.dir, r.Devices); err != nil {
			return err
		}
	}
	if len(writes) == 0 {
		return nil
	}
	if err := m.checkControllers(writes); err != nil {
		return err
	}
	if mem := r.Memory; mem != nil && mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && set(mem.Limit) && *mem.Limit > 0 {
		if err := checkUsageBelow(m.dir, "memory.current", *mem.Limit); err != nil {
			return err
		}
	}
	for _, w := range writes {
		if err := writeFile(m.dir, w.file, w.value); err != nil {
			return err
		}
	}
	return nil
}

// checkControllers refuses, before anything is written, resources whose
// controller the parent did not delegate to the container's cgroup: their
// files would be missing and the error would not say why.
func (m *v2Manager) checkControllers(writes []fileWrite) error {
	var available []string
	loaded := false
	for _, w := range writes {
		c := w.controller()
		if c == "" {
			continue
		}
		if !loaded {
			content, err := readFile(m.dir, "cgroup.controllers")
			if err != nil {
				return err
			}
			available, loaded = strings.Fields(content), true
		}
		if !containsString(available, c) {
			return fmt.Errorf("%s: %w: %q is not enabled in %s", w.file, ErrControllerMissing, c, m.dir)
		}
	}
	return nil
}
