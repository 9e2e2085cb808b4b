package metrics

import (
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/xstack/xstack/pkg/runtime/cgroups"
)

const unlimited = cgroups.Unlimited

// fakeManager answers Paths and Stats; Metrics calls nothing else.
type fakeManager struct {
	cgroups.Manager
	paths map[string]string
	stats *cgroups.Stats
	err   error
}

func (f fakeManager) Paths() map[string]string       { return maps.Clone(f.paths) }
func (f fakeManager) Stats() (*cgroups.Stats, error) { return f.stats, f.err }

func requireEqual(t *testing.T, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", prototext.Format(got), prototext.Format(want))
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// containerd 1.6 decodes StatsResponse.Stats by these exact names.
func TestTypeURL(t *testing.T) {
	for _, tc := range []struct {
		msg  proto.Message
		want string
	}{
		{&v1.Metrics{}, "io.containerd.cgroups.v1.Metrics"},
		{&v2.Metrics{}, "io.containerd.cgroups.v2.Metrics"},
	} {
		a, err := typeurl.MarshalAnyToProto(tc.msg)
		if err != nil {
			t.Fatal(err)
		}
		if a.GetTypeUrl() != tc.want {
			t.Errorf("type URL %q, want %q", a.GetTypeUrl(), tc.want)
		}
	}
}

// TestMetricsTypeURL goes through Metrics, deciding v1 or v2 from Paths, and
// decodes the Any back the way containerd does.
func TestMetricsTypeURL(t *testing.T) {
	v2dir := t.TempDir()
	writeFiles(t, v2dir, map[string]string{"cgroup.controllers": "\n"})
	for _, tc := range []struct {
		name  string
		paths map[string]string
		want  string
	}{
		{"v1", map[string]string{"memory": t.TempDir(), "cpu": t.TempDir()}, "io.containerd.cgroups.v1.Metrics"},
		{"hybrid is v1", map[string]string{"pids": t.TempDir(), "": v2dir}, "io.containerd.cgroups.v1.Metrics"},
		{"no hierarchy is v1", map[string]string{}, "io.containerd.cgroups.v1.Metrics"},
		{"v2", map[string]string{"": v2dir}, "io.containerd.cgroups.v2.Metrics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := Metrics(fakeManager{paths: tc.paths, stats: &cgroups.Stats{}})
			if err != nil {
				t.Fatal(err)
			}
			a, err := typeurl.MarshalAnyToProto(msg)
			if err != nil {
				t.Fatal(err)
			}
			if a.GetTypeUrl() != tc.want {
				t.Fatalf("type URL %q, want %q", a.GetTypeUrl(), tc.want)
			}
			back, err := typeurl.UnmarshalAny(a)
			if err != nil {
				t.Fatal(err)
			}
			requireEqual(t, back.(proto.Message), msg)
		})
	}
}

func TestMetricsStatsError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Metrics(fakeManager{paths: map[string]string{"memory": t.TempDir()}, err: boom})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

func v1Memory() cgroups.MemoryStats {
	return cgroups.MemoryStats{
		Usage: 100 << 20, MaxUsage: 120 << 20, Limit: 256 << 20, Failcnt: 7, OOMKills: 2,
		MemSwUsage: 110 << 20, MemSwLimit: 512 << 20,
		Stat: map[string]uint64{
			"cache": 1, "rss": 2, "rss_huge": 3, "shmem": 99, "mapped_file": 4, "dirty": 5, "writeback": 6,
			"swap": 98, "pgpgin": 7, "pgpgout": 8, "pgfault": 9, "pgmajfault": 10,
			"inactive_anon": 11, "active_anon": 12, "inactive_file": 13, "active_file": 14, "unevictable": 15,
			"hierarchical_memory_limit": 16, "hierarchical_memsw_limit": 17,
			"total_cache": 18, "total_rss": 19, "total_rss_huge": 20, "total_mapped_file": 21,
			"total_dirty": 22, "total_writeback": 23, "total_pgpgin": 24, "total_pgpgout": 25,
			"total_pgfault": 26, "total_pgmajfault": 27, "total_inactive_anon": 28, "total_active_anon": 29,
			"total_inactive_file": 30, "total_active_file": 31, "total_unevictable": 32,
		},
	}
}

func v1MemoryWant() *v1.MemoryStat {
	return &v1.MemoryStat{
		Cache: 1, RSS: 2, RSSHuge: 3, MappedFile: 4, Dirty: 5, Writeback: 6, PgPgIn: 7, PgPgOut: 8,
		PgFault: 9, PgMajFault: 10, InactiveAnon: 11, ActiveAnon: 12, InactiveFile: 13, ActiveFile: 14,
		Unevictable: 15, HierarchicalMemoryLimit: 16, HierarchicalSwapLimit: 17,
		TotalCache: 18, TotalRSS: 19, TotalRSSHuge: 20, TotalMappedFile: 21, TotalDirty: 22,
		TotalWriteback: 23, TotalPgPgIn: 24, TotalPgPgOut: 25, TotalPgFault: 26, TotalPgMajFault: 27,
		TotalInactiveAnon: 28, TotalActiveAnon: 29, TotalInactiveFile: 30, TotalActiveFile: 31,
		TotalUnevictable: 32,
		Usage:            &v1.MemoryEntry{Limit: 256 << 20, Usage: 100 << 20, Max: 120 << 20, Failcnt: 7},
		Swap:             &v1.MemoryEntry{Limit: 512 << 20, Usage: 110 << 20},
	}
}

func controllers(names ...string) map[string]bool {
	m := make(map[string]bool)
	for _, n := range names {
		m[n] = true
	}
	return m
}

func TestV1Metrics(t *testing.T) {
	cpu := cgroups.CPUStats{
		UsageTotal: 3000, UsageUser: 1000, UsageSystem: 2000,
		Periods: 10, ThrottledPeriods: 4, ThrottledTime: 5000,
	}
	devices := []cgroups.IODeviceStats{
		{Major: 8, Minor: 0, ReadBytes: 4096, WriteBytes: 8192, ReadIOs: 1, WriteIOs: 2},
		{Major: 254, Minor: 0, ReadBytes: 1, WriteBytes: 2, ReadIOs: 3, WriteIOs: 4},
	}
	all := controllers("cpu", "cpuacct", "memory", "pids", "blkio", "hugetlb", "name=systemd", "")
	noLimit := uint64(math.MaxInt64) / uint64(os.Getpagesize()) * uint64(os.Getpagesize())

	tests := []struct {
		name  string
		stats cgroups.Stats
		extra v1Extra
		want  *v1.Metrics
	}{{
		name: "every controller",
		stats: cgroups.Stats{
			Memory: v1Memory(), CPU: cpu,
			Pids:    cgroups.PidsStats{Current: 3, Limit: 100},
			IO:      cgroups.IOStats{Devices: devices},
			Hugetlb: map[string]cgroups.HugetlbStats{"2MB": {Usage: 2 << 20, MaxUsage: 4 << 20, Failcnt: 1}, "1GB": {}},
		},
		extra: v1Extra{
			controllers: all, oomKillDisable: 1, underOOM: 1, perCPU: []uint64{1000, 2000},
			devices: map[[2]uint64]string{{254, 0}: "/dev/vda"},
		},
		want: &v1.Metrics{
			Pids: &v1.PidsStat{Current: 3, Limit: 100},
			CPU: &v1.CPUStat{
				Usage:      &v1.CPUUsage{Total: 3000, Kernel: 2000, User: 1000, PerCPU: []uint64{1000, 2000}},
				Throttling: &v1.Throttle{Periods: 10, ThrottledPeriods: 4, ThrottledTime: 5000},
			},
			Memory:           v1MemoryWant(),
			MemoryOomControl: &v1.MemoryOomControl{OomKillDisable: 1, UnderOom: 1, OomKill: 2},
			Blkio: &v1.BlkIOStat{
				IoServiceBytesRecursive: []*v1.BlkIOEntry{
					{Op: "Read", Major: 8, Value: 4096}, {Op: "Write", Major: 8, Value: 8192},
					{Op: "Read", Device: "/dev/vda", Major: 254, Value: 1}, {Op: "Write", Device: "/dev/vda", Major: 254, Value: 2},
				},
				IoServicedRecursive: []*v1.BlkIOEntry{
					{Op: "Read", Major: 8, Value: 1}, {Op: "Write", Major: 8, Value: 2},
					{Op: "Read", Device: "/dev/vda", Major: 254, Value: 3}, {Op: "Write", Device: "/dev/vda", Major: 254, Value: 4},
				},
			},
			Hugetlb: []*v1.HugetlbStat{
				{Pagesize: "1GB"},
				{Pagesize: "2MB", Usage: 2 << 20, Max: 4 << 20, Failcnt: 1},
			},
		},
	}, {
		name: "unset limits use containerd's v1 values",
		stats: cgroups.Stats{
			Memory: cgroups.MemoryStats{Usage: 5, Limit: unlimited, MemSwUsage: 6, MemSwLimit: unlimited},
			Pids:   cgroups.PidsStats{Current: 1, Limit: unlimited},
		},
		extra: v1Extra{controllers: controllers("memory", "pids")},
		want: &v1.Metrics{
			Pids: &v1.PidsStat{Current: 1},
			Memory: &v1.MemoryStat{
				Usage: &v1.MemoryEntry{Limit: noLimit, Usage: 5},
				Swap:  &v1.MemoryEntry{Limit: noLimit, Usage: 6},
			},
			MemoryOomControl: &v1.MemoryOomControl{},
		},
	}, {
		name:  "no swap accounting",
		stats: cgroups.Stats{Memory: cgroups.MemoryStats{Usage: 5, Limit: 1 << 30}},
		extra: v1Extra{controllers: controllers("memory")},
		want: &v1.Metrics{
			Memory: &v1.MemoryStat{
				Usage: &v1.MemoryEntry{Limit: 1 << 30, Usage: 5},
				Swap:  &v1.MemoryEntry{},
			},
			MemoryOomControl: &v1.MemoryOomControl{},
		},
	}, {
		name:  "cpuacct without cpu",
		stats: cgroups.Stats{CPU: cgroups.CPUStats{UsageTotal: 3, UsageUser: 1, UsageSystem: 2}},
		extra: v1Extra{controllers: controllers("cpuacct")},
		want: &v1.Metrics{CPU: &v1.CPUStat{
			Usage:      &v1.CPUUsage{Total: 3, Kernel: 2, User: 1},
			Throttling: &v1.Throttle{},
		}},
	}, {
		name:  "blkio with no I/O",
		stats: cgroups.Stats{},
		extra: v1Extra{controllers: controllers("blkio")},
		want:  &v1.Metrics{Blkio: &v1.BlkIOStat{}},
	}, {
		name:  "no controllers",
		stats: cgroups.Stats{},
		extra: v1Extra{controllers: controllers("name=systemd", "")},
		want:  &v1.Metrics{},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireEqual(t, v1Metrics(&tc.stats, tc.extra), tc.want)
		})
	}
}

func v2Stat() map[string]uint64 {
	return map[string]uint64{
		"anon": 1, "file": 2, "kernel": 77, "kernel_stack": 3, "slab": 4, "sock": 5, "shmem": 6,
		"file_mapped": 7, "file_dirty": 8, "file_writeback": 9, "anon_thp": 10,
		"inactive_anon": 11, "active_anon": 12, "inactive_file": 13, "active_file": 14, "unevictable": 15,
		"slab_reclaimable": 16, "slab_unreclaimable": 17, "pgfault": 18, "pgmajfault": 19,
		"workingset_refault_anon": 20, "workingset_refault_file": 100,
		"workingset_activate_anon": 21, "workingset_activate_file": 200,
		"workingset_nodereclaim": 22, "pgrefill": 23, "pgscan": 24, "pgsteal": 25, "pgactivate": 26,
		"pgdeactivate": 27, "pglazyfree": 28, "pglazyfreed": 29, "thp_fault_alloc": 30, "thp_collapse_alloc": 31,
	}
}

func TestV2Metrics(t *testing.T) {
	tests := []struct {
		name  string
		stats cgroups.Stats
		extra v2Extra
		want  *v2.Metrics
	}{{
		name: "every controller",
		stats: cgroups.Stats{
			Memory: cgroups.MemoryStats{
				Usage: 100 << 20, MaxUsage: 120 << 20, Limit: 256 << 20, Failcnt: 9, OOMKills: 9,
				MemSwUsage: 110 << 20, MemSwLimit: 512 << 20, Stat: v2Stat(),
			},
			CPU: cgroups.CPUStats{
				UsageTotal: 3_000_999, UsageUser: 1_000_000, UsageSystem: 2_000_000,
				Periods: 10, ThrottledPeriods: 4, ThrottledTime: 5_000_000,
			},
			Pids:    cgroups.PidsStats{Current: 3, Limit: unlimited},
			IO:      cgroups.IOStats{Devices: []cgroups.IODeviceStats{{Major: 254, ReadBytes: 1, WriteBytes: 2, ReadIOs: 3, WriteIOs: 4}}},
			Hugetlb: map[string]cgroups.HugetlbStats{"2MB": {Usage: 2 << 20, Failcnt: 1}},
		},
		extra: v2Extra{
			controllers: controllers("cpu", "memory", "pids", "io", "hugetlb"),
			events:      map[string]uint64{"low": 1, "high": 2, "max": 3, "oom": 4, "oom_kill": 5, "oom_group_kill": 6},
			swapMax:     256 << 20, swapPeak: 20 << 20,
			hugetlbMax: map[string]uint64{"2MB": unlimited},
		},
		want: &v2.Metrics{
			Pids: &v2.PidsStat{Current: 3, Limit: unlimited},
			CPU: &v2.CPUStat{
				UsageUsec: 3000, UserUsec: 1000, SystemUsec: 2000,
				NrPeriods: 10, NrThrottled: 4, ThrottledUsec: 5000,
			},
			Memory: &v2.MemoryStat{
				Anon: 1, File: 2, KernelStack: 3, Slab: 4, Sock: 5, Shmem: 6, FileMapped: 7, FileDirty: 8,
				FileWriteback: 9, AnonThp: 10, InactiveAnon: 11, ActiveAnon: 12, InactiveFile: 13,
				ActiveFile: 14, Unevictable: 15, SlabReclaimable: 16, SlabUnreclaimable: 17, Pgfault: 18,
				Pgmajfault: 19, WorkingsetRefault: 120, WorkingsetActivate: 221, WorkingsetNodereclaim: 22,
				Pgrefill: 23, Pgscan: 24, Pgsteal: 25, Pgactivate: 26, Pgdeactivate: 27, Pglazyfree: 28,
				Pglazyfreed: 29, ThpFaultAlloc: 30, ThpCollapseAlloc: 31,
				Usage: 100 << 20, UsageLimit: 256 << 20, MaxUsage: 120 << 20,
				SwapUsage: 10 << 20, SwapLimit: 256 << 20, SwapMaxUsage: 20 << 20,
			},
			MemoryEvents: &v2.MemoryEvents{Low: 1, High: 2, Max: 3, Oom: 4, OomKill: 5, OomGroupKill: 6},
			Io:           &v2.IOStat{Usage: []*v2.IOEntry{{Major: 254, Rbytes: 1, Wbytes: 2, Rios: 3, Wios: 4}}},
			Hugetlb:      []*v2.HugeTlbStat{{Current: 2 << 20, Max: unlimited, Pagesize: "2MB", Failcnt: 1}},
		},
	}, {
		// What the hybrid host's cgroup2 tree gives: no memory, pids or io
		// controller, only the core cpu.stat usage (and hugetlb here).
		name: "controller-less tree",
		stats: cgroups.Stats{
			CPU:     cgroups.CPUStats{UsageTotal: 5000, UsageUser: 3000, UsageSystem: 2000},
			Hugetlb: map[string]cgroups.HugetlbStats{"2MB": {}},
		},
		extra: v2Extra{controllers: controllers("hugetlb"), hugetlbMax: map[string]uint64{"2MB": unlimited}},
		want: &v2.Metrics{
			CPU:     &v2.CPUStat{UsageUsec: 5, UserUsec: 3, SystemUsec: 2},
			Hugetlb: []*v2.HugeTlbStat{{Max: unlimited, Pagesize: "2MB"}},
		},
	}, {
		name: "old kernel keys, no memory.events, no swap accounting",
		stats: cgroups.Stats{Memory: cgroups.MemoryStats{
			Usage: 4096, Limit: unlimited, Failcnt: 2, OOMKills: 1,
			Stat: map[string]uint64{
				"slab_reclaimable": 1, "slab_unreclaimable": 2,
				"workingset_refault": 3, "workingset_activate": 4, "workingset_refault_anon": 100,
			},
		}},
		extra: v2Extra{controllers: controllers("memory")},
		want: &v2.Metrics{
			CPU: &v2.CPUStat{},
			Memory: &v2.MemoryStat{
				Slab: 3, SlabReclaimable: 1, SlabUnreclaimable: 2, WorkingsetRefault: 3, WorkingsetActivate: 4,
				Usage: 4096, UsageLimit: unlimited,
			},
			MemoryEvents: &v2.MemoryEvents{Max: 2, OomKill: 1},
		},
	}, {
		name:  "io with no I/O",
		extra: v2Extra{controllers: controllers("io", "pids")},
		want:  &v2.Metrics{CPU: &v2.CPUStat{}, Io: &v2.IOStat{}, Pids: &v2.PidsStat{}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireEqual(t, v2Metrics(&tc.stats, tc.extra), tc.want)
		})
	}
}

// TestReadExtra runs Metrics on fake trees to check the files it reads
// besides Stats.
func TestReadExtra(t *testing.T) {
	t.Run("v1", func(t *testing.T) {
		mem, acct := t.TempDir(), t.TempDir()
		writeFiles(t, mem, map[string]string{"memory.oom_control": "oom_kill_disable 1\nunder_oom 1\noom_kill 3\n"})
		writeFiles(t, acct, map[string]string{"cpuacct.usage_percpu": "10 20 30 \n"})
		st := &cgroups.Stats{Memory: cgroups.MemoryStats{OOMKills: 3, Limit: 1 << 20}}
		msg, err := Metrics(fakeManager{paths: map[string]string{"memory": mem, "cpuacct": acct}, stats: st})
		if err != nil {
			t.Fatal(err)
		}
		got := msg.(*v1.Metrics)
		requireEqual(t, got.GetMemoryOomControl(), &v1.MemoryOomControl{OomKillDisable: 1, UnderOom: 1, OomKill: 3})
		if want := []uint64{10, 20, 30}; !slices.Equal(got.GetCPU().GetUsage().GetPerCPU(), want) {
			t.Errorf("per_cpu %v, want %v", got.GetCPU().GetUsage().GetPerCPU(), want)
		}
	})
	t.Run("v1 files missing", func(t *testing.T) {
		msg, err := Metrics(fakeManager{paths: map[string]string{"memory": t.TempDir(), "cpuacct": t.TempDir()}, stats: &cgroups.Stats{}})
		if err != nil {
			t.Fatal(err)
		}
		got := msg.(*v1.Metrics)
		requireEqual(t, got.GetMemoryOomControl(), &v1.MemoryOomControl{})
		if got.GetCPU().GetUsage().GetPerCPU() != nil {
			t.Errorf("per_cpu %v, want none", got.GetCPU().GetUsage().GetPerCPU())
		}
	})
	t.Run("v2", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			"cgroup.controllers": "cpu memory pids hugetlb\n",
			"memory.events":      "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\noom_group_kill 0\n",
			"memory.swap.max":    "max\n",
			"memory.swap.peak":   "8192\n",
			"hugetlb.2MB.max":    "4194304\n",
		})
		st := &cgroups.Stats{
			Memory:  cgroups.MemoryStats{OOMKills: 1, Failcnt: 4},
			Hugetlb: map[string]cgroups.HugetlbStats{"2MB": {}, "1GB": {}},
		}
		msg, err := Metrics(fakeManager{paths: map[string]string{"": dir}, stats: st})
		if err != nil {
			t.Fatal(err)
		}
		got := msg.(*v2.Metrics)
		requireEqual(t, got.GetMemoryEvents(), &v2.MemoryEvents{Max: 4, Oom: 2, OomKill: 1})
		if got.GetMemory().GetSwapLimit() != unlimited || got.GetMemory().GetSwapMaxUsage() != 8192 {
			t.Errorf("swap limit %d peak %d, want max and 8192", got.GetMemory().GetSwapLimit(), got.GetMemory().GetSwapMaxUsage())
		}
		requireEqual(t, &v2.Metrics{Hugetlb: got.GetHugetlb()}, &v2.Metrics{Hugetlb: []*v2.HugeTlbStat{
			{Pagesize: "1GB"}, {Pagesize: "2MB", Max: 4 << 20},
		}})
		if got.GetPids() == nil || got.GetIo() != nil {
			t.Errorf("pids %v io %v, want pids only", got.GetPids(), got.GetIo())
		}
	})
	t.Run("v2 cgroup gone", func(t *testing.T) {
		_, err := Metrics(fakeManager{paths: map[string]string{"": filepath.Join(t.TempDir(), "gone")}, stats: &cgroups.Stats{}})
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v, want not exist", err)
		}
	})
}

func TestReadPartitions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "partitions")
	writeFiles(t, filepath.Dir(file), map[string]string{"partitions": `major minor  #blocks  name

 254        0  268435456 vda
 254        1  268434415 vda1
   8       16   1048576 sdb
`})
	got := readPartitions(file)
	want := map[[2]uint64]string{{254, 0}: "/dev/vda", {254, 1}: "/dev/vda1", {8, 16}: "/dev/sdb"}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if readPartitions(filepath.Join(t.TempDir(), "none")) != nil {
		t.Error("missing file: want nil")
	}
}

func TestParsers(t *testing.T) {
	kv := parseKeyValues("a 1\nb  2\nbad x\n\nc 3")
	if want := map[string]uint64{"a": 1, "b": 2, "c": 3}; !maps.Equal(kv, want) {
		t.Errorf("parseKeyValues = %v, want %v", kv, want)
	}
	for in, want := range map[string]uint64{"max\n": unlimited, "42\n": 42, "0": 0} {
		if got, ok := parseLimit(in); !ok || got != want {
			t.Errorf("parseLimit(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	if _, ok := parseLimit("x"); ok {
		t.Error("parseLimit(x) ok")
	}
	if got := parseUintList("1 2 x"); got != nil {
		t.Errorf("parseUintList with garbage = %v, want nil", got)
	}
}
