package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestV2Writes(t *testing.T) {
	dev := specs.LinuxBlockIODevice{Major: 8, Minor: 0}
	tests := []struct {
		name    string
		r       specs.LinuxResources
		want    []fileWrite
		wantErr bool
	}{
		{name: "empty", r: specs.LinuxResources{}},
		{
			name: "memory",
			r: specs.LinuxResources{Memory: &specs.LinuxMemory{
				Limit: ptr[int64](64 << 20), Reservation: ptr[int64](32 << 20), Swap: ptr[int64](128 << 20),
				Swappiness: ptr[uint64](10), DisableOOMKiller: ptr(true), Kernel: ptr[int64](1 << 20),
			}},
			want: []fileWrite{{"memory.max", "67108864"}, {"memory.low", "33554432"}, {"memory.swap.max", "67108864"}},
		},
		{
			name: "unlimited memory",
			r:    specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-1), Swap: ptr[int64](-1)}},
			want: []fileWrite{{"memory.max", "max"}, {"memory.swap.max", "max"}},
		},
		{
			name:    "swap below limit",
			r:       specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](100), Swap: ptr[int64](50)}},
			wantErr: true,
		},
		{
			name: "cpu",
			r: specs.LinuxResources{CPU: &specs.LinuxCPU{
				Shares: ptr[uint64](1024), Quota: ptr[int64](50000), Period: ptr[uint64](100000),
				Burst: ptr[uint64](1000), Idle: ptr[int64](1), Cpus: "0-1", Mems: "0",
			}},
			want: []fileWrite{
				{"cpuset.cpus", "0-1"}, {"cpuset.mems", "0"}, {"cpu.weight", "39"},
				{"cpu.max", "50000 100000"}, {"cpu.max.burst", "1000"}, {"cpu.idle", "1"},
			},
		},
		{
			name:    "realtime refused",
			r:       specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr[int64](1000)}},
			wantErr: true,
		},
		{
			name: "pids",
			r:    specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](0)}},
			want: []fileWrite{{"pids.max", "max"}},
		},
		{
			name: "io",
			r: specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
				Weight: ptr[uint16](500), LeafWeight: ptr[uint16](300),
				WeightDevice:            []specs.LinuxWeightDevice{{LinuxBlockIODevice: dev, Weight: ptr[uint16](1000)}},
				ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev, Rate: 1 << 20}},
				ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev, Rate: 0}},
			}},
			want: []fileWrite{
				{"io.weight", "4950"}, {"io.weight", "8:0 10000"},
				{"io.max", "8:0 rbps=1048576"}, {"io.max", "8:0 wiops=max"},
			},
		},
		{
			name: "hugetlb, rdma, devices and unified",
			r: specs.LinuxResources{
				HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
				Rdma:           map[string]specs.LinuxRdma{"mlx5_1": {HcaHandles: ptr[uint32](2)}, "mlx5_0": {HcaObjects: ptr[uint32](9)}},
				Devices:        []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				Unified:        map[string]string{"memory.oom.group": "1", "cgroup.type": "threaded"},
			},
			want: []fileWrite{
				{"hugetlb.2MB.max", "4194304"}, {"rdma.max", "mlx5_0 hca_object=9"}, {"rdma.max", "mlx5_1 hca_handle=2"},
				{"cgroup.type", "threaded"}, {"memory.oom.group", "1"},
			},
		},
		{
			name:    "bad page size",
			r:       specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "../x"}}},
			wantErr: true,
		},
		{
			name:    "unified key escaping the directory",
			r:       specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v2Writes(&tt.r)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

// fakeCgroupDir creates dir with the given files, as cgroupfs would offer
// them, and returns it.
func fakeCgroupDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readFake(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestV2SetFakeDir(t *testing.T) {
	files := map[string]string{
		"cgroup.controllers": "cpuset cpu io memory pids\n", "memory.current": "1000\n",
		"memory.max": "", "memory.swap.max": "", "cpu.weight": "", "cpu.max": "", "pids.max": "", "cpuset.cpus": "",
	}
	dir := fakeCgroupDir(t, files)
	m := &v2Manager{dir: dir}
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 20), Swap: ptr[int64](2 << 20), CheckBeforeUpdate: ptr(true)},
		CPU:    &specs.LinuxCPU{Shares: ptr[uint64](2), Quota: ptr[int64](-1), Period: ptr[uint64](100000), Cpus: "0"},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](42)},
		// Devices are an eBPF filter on v2, which a fake directory cannot
		// take: package devicefilter tests them on the kernel.
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory.max": "1048576", "memory.swap.max": "1048576", "cpu.weight": "1",
		"cpu.max": "max 100000", "pids.max": "42", "cpuset.cpus": "0",
	}
	for name, val := range want {
		if got := readFake(t, dir, name); got != val {
			t.Errorf("%s = %q, want %q", name, got, val)
		}
	}
	if err := m.Set(nil); err != nil {
		t.Errorf("Set(nil) = %v", err)
	}

	// A limit below the usage is refused with checkBeforeUpdate.
	low := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](10), CheckBeforeUpdate: ptr(true)}}
	if err := m.Set(low); err == nil {
		t.Error("limit below usage accepted with checkBeforeUpdate")
	}

	// A controller the parent did not delegate is refused by name, before
	// any write.
	err := m.Set(&specs.LinuxResources{
		Pids:           &specs.LinuxPids{Limit: ptr[int64](7)},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}},
	})
	if !errors.Is(err, ErrControllerMissing) || !strings.Contains(err.Error(), `"hugetlb"`) {
		t.Errorf("Set with hugetlb missing = %v, want ErrControllerMissing naming hugetlb", err)
	}
	if got := readFake(t, dir, "pids.max"); got != "42" {
		t.Errorf("pids.max = %q after a refused Set, want it untouched", got)
	}

	// A missing file names itself and keeps its errno.
	err = m.Set(&specs.LinuxResources{Unified: map[string]string{"memory.high": "5"}})
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "memory.high") || !strings.Contains(err.Error(), `"5"`) {
		t.Errorf("write of a missing file = %v", err)
	}
}

func TestV1SetFakeDirs(t *testing.T) {
	memory := fakeCgroupDir(t, map[string]string{
		"memory.limit_in_bytes": "9223372036854771712\n", "memory.memsw.limit_in_bytes": "", "memory.soft_limit_in_bytes": "",
		"memory.swappiness": "", "memory.oom_control": "", "memory.usage_in_bytes": "4096\n",
	})
	cpu := fakeCgroupDir(t, map[string]string{
		"cpu.shares": "", "cpu.cfs_period_us": "", "cpu.cfs_quota_us": "", "cpu.rt_period_us": "", "cpu.rt_runtime_us": "",
	})
	cpuset := fakeCgroupDir(t, map[string]string{"cpuset.cpus": "", "cpuset.mems": ""})
	devices := fakeCgroupDir(t, map[string]string{"devices.allow": "", "devices.deny": ""})
	blkio := fakeCgroupDir(t, map[string]string{"blkio.bfq.weight": "", "blkio.throttle.read_bps_device": ""})
	pids := fakeCgroupDir(t, map[string]string{"pids.max": ""})
	m := newV1Manager(map[string]string{
		"memory": memory, "cpu": cpu, "cpuset": cpuset, "devices": devices, "blkio": blkio, "pids": pids,
	}, false)

	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{
			Limit: ptr[int64](64 << 20), Swap: ptr[int64](128 << 20), Reservation: ptr[int64](32 << 20),
			Swappiness: ptr[uint64](10), DisableOOMKiller: ptr(true), Kernel: ptr[int64](1 << 20), CheckBeforeUpdate: ptr(true),
		},
		CPU: &specs.LinuxCPU{
			Shares: ptr[uint64](512), Quota: ptr[int64](20000), Period: ptr[uint64](100000),
			RealtimePeriod: ptr[uint64](1000000), RealtimeRuntime: ptr[int64](-1), Cpus: "0", Mems: "0",
		},
		Pids: &specs.LinuxPids{Limit: ptr[int64](-1)},
		BlockIO: &specs.LinuxBlockIO{
			Weight:                ptr[uint16](500),
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 254, Minor: 0}, Rate: 1 << 20}},
		},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
		},
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	want := []struct{ dir, file, val string }{
		{memory, "memory.limit_in_bytes", "67108864"},
		{memory, "memory.memsw.limit_in_bytes", "134217728"},
		{memory, "memory.soft_limit_in_bytes", "33554432"},
		{memory, "memory.swappiness", "10"},
		{memory, "memory.oom_control", "1"},
		{cpu, "cpu.shares", "512"},
		{cpu, "cpu.cfs_period_us", "100000"},
		{cpu, "cpu.cfs_quota_us", "20000"},
		{cpu, "cpu.rt_period_us", "1000000"},
		{cpu, "cpu.rt_runtime_us", "-1"},
		{cpuset, "cpuset.cpus", "0"},
		{cpuset, "cpuset.mems", "0"},
		{pids, "pids.max", "max"},
		{blkio, "blkio.bfq.weight", "500"}, // no CFQ blkio.weight: BFQ fallback
		{blkio, "blkio.throttle.read_bps_device", "254:0 1048576"},
		{devices, "devices.deny", "a"},
		{devices, "devices.allow", "c 1:3 rwm"},
	}
	for _, w := range want {
		if got := readFake(t, w.dir, w.file); got != w.val {
			t.Errorf("%s = %q, want %q", w.file, got, w.val)
		}
	}

	for name, res := range map[string]*specs.LinuxResources{
		"hugetlb not mounted": {HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}}},
		"net_cls not mounted": {Network: &specs.LinuxNetwork{ClassID: ptr[uint32](1)}},
		"rdma not mounted":    {Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptr[uint32](1)}}},
	} {
		if err := m.Set(res); !errors.Is(err, ErrControllerMissing) {
			t.Errorf("%s: Set = %v, want ErrControllerMissing", name, err)
		}
	}
	err := m.Set(&specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}})
	if err == nil || !strings.Contains(err.Error(), `"memory.high"`) {
		t.Errorf("unified on v1 = %v, want an error naming the key", err)
	}
	err = m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](101)}})
	if err == nil {
		t.Error("swappiness 101 accepted")
	}
	err = m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1024), CheckBeforeUpdate: ptr(true)}})
	if err == nil {
		t.Error("limit below usage accepted with checkBeforeUpdate")
	}
}
