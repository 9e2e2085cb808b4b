package xctl

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	cg1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	cg2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func TestSampleOf(t *testing.T) {
	v1 := &cg1.Metrics{
		Pids: &cg1.PidsStat{Current: 3},
		CPU:  &cg1.CPUStat{Usage: &cg1.CPUUsage{Total: 5_000_000}},
		Memory: &cg1.MemoryStat{
			TotalInactiveFile: 1 << 20,
			Usage:             &cg1.MemoryEntry{Usage: 5 << 20, Limit: 64 << 20},
		},
		Blkio: &cg1.BlkIOStat{IoServiceBytesRecursive: []*cg1.BlkIOEntry{
			{Op: "Read", Major: 8, Value: 100}, {Op: "Write", Major: 8, Value: 40},
			{Op: "Read", Major: 9, Value: 1}, {Op: "Total", Major: 8, Value: 140},
		}},
	}
	v2 := &cg2.Metrics{
		Pids:   &cg2.PidsStat{Current: 2},
		CPU:    &cg2.CPUStat{UsageUsec: 7},
		Memory: &cg2.MemoryStat{Usage: 4 << 20, InactiveFile: 8 << 20, UsageLimit: math.MaxUint64},
		Io:     &cg2.IOStat{Usage: []*cg2.IOEntry{{Rbytes: 10, Wbytes: 20}, {Rbytes: 1, Wbytes: 2}}},
	}
	tests := []struct {
		name    string
		typeURL string
		msg     proto.Message
		raw     string
		want    statsSample
		wantErr string
	}{
		{name: "v1", typeURL: "io.containerd.cgroups.v1.Metrics", msg: v1,
			want: statsSample{cpuNanos: 5_000_000, memUsage: 4 << 20, memLimit: 64 << 20, pids: 3, blockRead: 101, blockWrite: 40}},
		// More inactive cache than usage (they are read at different
		// moments): usage stays as it is.
		{name: "v2", typeURL: "io.containerd.cgroups.v2.Metrics", msg: v2,
			want: statsSample{cpuNanos: 7000, memUsage: 4 << 20, memLimit: math.MaxUint64, pids: 2, blockRead: 11, blockWrite: 22}},
		{name: "empty v1", typeURL: "io.containerd.cgroups.v1.Metrics", raw: "{}"},
		{name: "other type", typeURL: "io.containerd.windows.Stats", raw: "{}", wantErr: "not cgroup metrics"},
		{name: "broken", typeURL: "io.containerd.cgroups.v2.Metrics", raw: `{"pids":`, wantErr: "decode io.containerd.cgroups.v2.Metrics"},
	}
	at := time.Unix(100, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			if tt.msg != nil {
				var err error
				if raw, err = protojson.Marshal(tt.msg); err != nil {
					t.Fatal(err)
				}
			}
			got, err := sampleOf(tt.typeURL, raw, at)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.raw, raw) || !got.at.Equal(at) {
				t.Errorf("sample keeps raw %q at %v, want %q at %v", got.raw, got.at, raw, at)
			}
			got.raw, got.at = nil, time.Time{}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("sample %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStatsRowOf(t *testing.T) {
	t0 := time.Unix(100, 0)
	const host = 8 << 30
	tests := []struct {
		name       string
		prev, cur  statsSample
		wantCPU    float64
		wantLimit  uint64
		wantMemPct float64
	}{
		{name: "one CPU busy, limit set",
			prev: statsSample{at: t0, cpuNanos: 1e9}, cur: statsSample{at: t0.Add(time.Second), cpuNanos: 2e9, memUsage: 16 << 20, memLimit: 64 << 20},
			wantCPU: 100, wantLimit: 64 << 20, wantMemPct: 25},
		{name: "two CPUs for half the time, no limit",
			prev: statsSample{at: t0}, cur: statsSample{at: t0.Add(2 * time.Second), cpuNanos: 2e9, memUsage: 1 << 30, memLimit: math.MaxInt64 &^ 4095},
			wantCPU: 100, wantLimit: host, wantMemPct: 12.5},
		{name: "no limit reported",
			prev: statsSample{at: t0}, cur: statsSample{at: t0.Add(time.Second), memUsage: 2 << 30},
			wantLimit: host, wantMemPct: 25},
		// A counter that went back (the cgroup was made anew) or no time
		// between the readings: no CPU figure rather than a wrong one.
		{name: "counter went back",
			prev: statsSample{at: t0, cpuNanos: 5e9}, cur: statsSample{at: t0.Add(time.Second), cpuNanos: 1e9, memLimit: 1 << 20},
			wantLimit: 1 << 20},
		{name: "same instant",
			prev: statsSample{at: t0}, cur: statsSample{at: t0, cpuNanos: 1e9, memLimit: 1 << 20},
			wantLimit: 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := statsRowOf("c", tt.prev, tt.cur, host)
			if math.Abs(r.CPUPercent-tt.wantCPU) > 1e-9 || r.MemoryLimit != tt.wantLimit || math.Abs(r.MemoryPercent-tt.wantMemPct) > 1e-9 {
				t.Errorf("cpu %v%%, limit %d, mem %v%%; want %v%%, %d, %v%%", r.CPUPercent, r.MemoryLimit, r.MemoryPercent, tt.wantCPU, tt.wantLimit, tt.wantMemPct)
			}
		})
	}
}

func TestMemTotal(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"MemTotal:       24731400 kB\nMemFree:        1000 kB\n", 24731400 * 1024},
		{"MemFree:        1000 kB\n", 0},
		{"MemTotal: lots kB\n", 0},
		{"", 0},
	}
	for _, tt := range tests {
		if got := memTotal(strings.NewReader(tt.in)); got != tt.want {
			t.Errorf("memTotal(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestHumanBinarySize(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0B"}, {10, "10B"}, {1023, "1023B"}, {1024, "1KiB"}, {1536, "1.5KiB"}, {1100, "1.07KiB"},
		{64 << 20, "64MiB"}, {25324953600, "23.6GiB"}, {math.MaxUint64, "16EiB"},
	}
	for _, tt := range tests {
		if got := humanBinarySize(tt.n); got != tt.want {
			t.Errorf("humanBinarySize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
