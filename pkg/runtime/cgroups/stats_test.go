package cgroups

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestV1StatsFakeDirs(t *testing.T) {
	memory := fakeCgroupDir(t, map[string]string{
		"memory.usage_in_bytes": "4096\n", "memory.max_usage_in_bytes": "8192\n",
		"memory.limit_in_bytes": "9223372036854771712\n", "memory.failcnt": "3\n",
		"memory.memsw.usage_in_bytes": "5000\n", "memory.memsw.limit_in_bytes": "134217728\n",
		"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
		"memory.stat":        "cache 10\nrss 20\n",
	})
	cpuacct := fakeCgroupDir(t, map[string]string{"cpuacct.usage_all": "cpu user system\n0 100 10\n1 200 20\n"})
	cpu := fakeCgroupDir(t, map[string]string{"cpu.stat": "nr_periods 7\nnr_throttled 2\nthrottled_time 5000\n"})
	pids := fakeCgroupDir(t, map[string]string{"pids.current": "3\n", "pids.max": "max\n"})
	blkio := fakeCgroupDir(t, map[string]string{
		"blkio.bfq.io_service_bytes_recursive":      "Total 0\n",
		"blkio.throttle.io_service_bytes_recursive": "254:0 Read 8388608\n254:0 Write 4096\n254:0 Sync 1\n254:0 Total 8392704\n8:0 Read 1\nTotal 8392705\n",
		"blkio.throttle.io_serviced_recursive":      "254:0 Read 8\n254:0 Write 1\nTotal 9\n",
	})
	m := newV1Manager(map[string]string{"memory": memory, "cpuacct": cpuacct, "cpu": cpu, "pids": pids, "blkio": blkio}, false)
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{
		Memory: MemoryStats{
			Usage: 4096, MaxUsage: 8192, Limit: Unlimited, Failcnt: 3, OOMKills: 2,
			MemSwUsage: 5000, MemSwLimit: 134217728, Stat: map[string]uint64{"cache": 10, "rss": 20},
		},
		CPU:  CPUStats{UsageTotal: 330, UsageUser: 300, UsageSystem: 30, Periods: 7, ThrottledPeriods: 2, ThrottledTime: 5000},
		Pids: PidsStats{Current: 3, Limit: Unlimited},
		IO: IOStats{Devices: []IODeviceStats{
			{Major: 8, Minor: 0, ReadBytes: 1},
			{Major: 254, Minor: 0, ReadBytes: 8388608, WriteBytes: 4096, ReadIOs: 8, WriteIOs: 1},
		}},
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("Stats() =\n%+v\nwant\n%+v", st, want)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 2 {
		t.Errorf("OOMKillCount() = %d, %v; want 2", n, err)
	}
	if _, err := json.Marshal(st); err != nil {
		t.Errorf("Stats do not marshal: %v", err)
	}
}

func TestV1CPUUsageFallback(t *testing.T) {
	dir := fakeCgroupDir(t, map[string]string{"cpuacct.usage": "123456789\n", "cpuacct.stat": "user 5\nsystem 7\n"})
	var cpu CPUStats
	if err := v1CPUUsage(dir, &cpu); err != nil {
		t.Fatal(err)
	}
	want := CPUStats{UsageTotal: 123456789, UsageUser: 50_000_000, UsageSystem: 70_000_000}
	if cpu != want {
		t.Errorf("got %+v, want %+v", cpu, want)
	}
}

func TestV2StatsFakeDir(t *testing.T) {
	dir := fakeCgroupDir(t, map[string]string{
		"cgroup.controllers": "cpu io memory pids\n",
		"cpu.stat":           "usage_usec 30\nuser_usec 20\nsystem_usec 10\nnr_periods 4\nnr_throttled 1\nthrottled_usec 2\n",
		"memory.current":     "4096\n", "memory.peak": "8192\n", "memory.max": "1048576\n",
		"memory.swap.current": "100\n", "memory.swap.max": "max\n",
		"memory.events": "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n",
		"memory.stat":   "anon 1\nfile 2\n",
		"pids.current":  "2\n", "pids.max": "100\n",
		"io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
	})
	m := &v2Manager{dir: dir}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{
		Memory: MemoryStats{
			Usage: 4096, MaxUsage: 8192, Limit: 1048576, Failcnt: 5, OOMKills: 1,
			MemSwUsage: 4196, MemSwLimit: Unlimited, Stat: map[string]uint64{"anon": 1, "file": 2},
		},
		CPU:  CPUStats{UsageTotal: 30000, UsageUser: 20000, UsageSystem: 10000, Periods: 4, ThrottledPeriods: 1, ThrottledTime: 2000},
		Pids: PidsStats{Current: 2, Limit: 100},
		IO:   IOStats{Devices: []IODeviceStats{{Major: 8, Minor: 0, ReadBytes: 10, WriteBytes: 20, ReadIOs: 1, WriteIOs: 2}}},
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("Stats() =\n%+v\nwant\n%+v", st, want)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 1 {
		t.Errorf("OOMKillCount() = %d, %v; want 1", n, err)
	}
}

func TestHugePageSizes(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"hugepages-2048kB", "hugepages-1048576kB", "other"} {
		if err := mkdir(dir + "/" + d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := hugePageSizes(dir)
	if err != nil || !reflect.DeepEqual(got, []string{"1GB", "2MB"}) {
		t.Errorf("hugePageSizes = %v, %v", got, err)
	}
	if got, err := hugePageSizes(dir + "/missing"); err != nil || got != nil {
		t.Errorf("hugePageSizes(missing) = %v, %v", got, err)
	}
}
