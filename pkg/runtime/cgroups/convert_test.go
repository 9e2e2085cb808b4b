package cgroups

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

func TestCPUWeightFromShares(t *testing.T) {
	tests := []struct{ shares, want uint64 }{
		{0, 1}, {1, 1}, {2, 1}, {1024, 39}, {512, 20}, {262144, 10000}, {1 << 40, 10000},
	}
	for _, tt := range tests {
		if got := cpuWeightFromShares(tt.shares); got != tt.want {
			t.Errorf("cpuWeightFromShares(%d) = %d, want %d", tt.shares, got, tt.want)
		}
	}
}

func TestIOWeightFromBlkio(t *testing.T) {
	tests := []struct {
		weight uint16
		want   uint64
	}{{1, 1}, {10, 1}, {100, 910}, {500, 4950}, {1000, 10000}, {65535, 10000}}
	for _, tt := range tests {
		if got := ioWeightFromBlkio(tt.weight); got != tt.want {
			t.Errorf("ioWeightFromBlkio(%d) = %d, want %d", tt.weight, got, tt.want)
		}
	}
}

func TestV2CPUMax(t *testing.T) {
	tests := []struct {
		quota  *int64
		period *uint64
		want   string
	}{
		{ptr[int64](50000), ptr[uint64](100000), "50000 100000"},
		{ptr[int64](-1), ptr[uint64](100000), "max 100000"},
		{nil, ptr[uint64](250000), "max 250000"},
		{ptr[int64](20000), nil, "20000"},
		{ptr[int64](0), ptr[uint64](0), "max"},
	}
	for _, tt := range tests {
		if got := v2CPUMax(tt.quota, tt.period); got != tt.want {
			t.Errorf("v2CPUMax(%v, %v) = %q, want %q", tt.quota, tt.period, got, tt.want)
		}
	}
}

func TestV2SwapMax(t *testing.T) {
	tests := []struct {
		limit, swap *int64
		want        string
		wantErr     bool
	}{
		{limit: ptr[int64](100), swap: ptr[int64](300), want: "200"},
		{limit: ptr[int64](100), swap: ptr[int64](100), want: "0"},
		{limit: ptr[int64](100), swap: ptr[int64](-1), want: "max"},
		{limit: nil, swap: ptr[int64](-1), want: "max"},
		{limit: ptr[int64](100), swap: ptr[int64](50), wantErr: true},
		{limit: nil, swap: ptr[int64](300), wantErr: true},
		{limit: ptr[int64](-1), swap: ptr[int64](300), wantErr: true},
	}
	for _, tt := range tests {
		got, err := v2SwapMax(tt.limit, tt.swap)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("v2SwapMax(%v, %v) = %q, %v; want %q, err %v", tt.limit, tt.swap, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestMemswFirst(t *testing.T) {
	tests := []struct {
		name    string
		current uint64
		memsw   int64
		want    bool
	}{
		{"raise from unlimited to unlimited", Unlimited, -1, true},
		{"raise both", 64 << 20, 512 << 20, true},
		{"new memsw equals current limit", 64 << 20, 64 << 20, true},
		{"lower both", 256 << 20, 64 << 20, false},
		{"limit from unlimited", Unlimited, 128 << 20, false},
	}
	for _, tt := range tests {
		if got := memswFirst(tt.current, tt.memsw); got != tt.want {
			t.Errorf("%s: memswFirst(%d, %d) = %v, want %v", tt.name, tt.current, tt.memsw, got, tt.want)
		}
	}
}

func TestValidPageSize(t *testing.T) {
	for _, ok := range []string{"2MB", "1GB", "64KB", "16GB", "512MB", "4B"} {
		if err := validPageSize(ok); err != nil {
			t.Errorf("validPageSize(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "B", "MB", "2M", "02MB", "2KMB", "../2MB", "2MB/x", "2 MB", "2mb"} {
		if err := validPageSize(bad); err == nil {
			t.Errorf("validPageSize(%q) accepted", bad)
		}
	}
}

func TestPageSizeName(t *testing.T) {
	tests := map[uint64]string{64: "64KB", 2048: "2MB", 32768: "32MB", 1048576: "1GB", 1536: "1536KB"}
	for kib, want := range tests {
		if got := pageSizeName(kib); got != want {
			t.Errorf("pageSizeName(%d) = %q, want %q", kib, got, want)
		}
	}
}

func TestV1DeviceRule(t *testing.T) {
	tests := []struct {
		rule      specs.LinuxDeviceCgroup
		file, out string
		wantErr   bool
	}{
		{rule: specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}, file: "devices.deny", out: "a"},
		{rule: specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"}, file: "devices.allow", out: "c 1:3 rwm"},
		{rule: specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr[int64](136), Access: "rw"}, file: "devices.allow", out: "c 136:* rw"},
		{rule: specs.LinuxDeviceCgroup{Allow: true, Type: "b", Major: ptr[int64](-1), Minor: ptr[int64](-1), Access: "m"}, file: "devices.allow", out: "b *:* m"},
		{rule: specs.LinuxDeviceCgroup{Allow: false, Type: "c", Major: ptr[int64](5), Minor: ptr[int64](1)}, file: "devices.deny", out: "c 5:1 rwm"},
		{rule: specs.LinuxDeviceCgroup{Type: "x"}, wantErr: true},
		{rule: specs.LinuxDeviceCgroup{Type: "c", Access: "rwx"}, wantErr: true},
		{rule: specs.LinuxDeviceCgroup{Type: "c", Access: "rw\nm"}, wantErr: true},
	}
	for _, tt := range tests {
		file, out, err := v1DeviceRule(tt.rule)
		if (err != nil) != tt.wantErr || file != tt.file || out != tt.out {
			t.Errorf("v1DeviceRule(%+v) = %q, %q, %v; want %q, %q, err %v", tt.rule, file, out, err, tt.file, tt.out, tt.wantErr)
		}
	}
}

func TestRdmaMax(t *testing.T) {
	got, ok, err := rdmaMax("mlx5_0", specs.LinuxRdma{HcaHandles: ptr[uint32](3), HcaObjects: ptr[uint32](100)})
	if err != nil || !ok || got != "mlx5_0 hca_handle=3 hca_object=100" {
		t.Errorf("rdmaMax = %q, %v, %v", got, ok, err)
	}
	if _, ok, _ := rdmaMax("mlx5_0", specs.LinuxRdma{}); ok {
		t.Error("rdmaMax without limits wants a write")
	}
	if _, _, err := rdmaMax("a b", specs.LinuxRdma{HcaHandles: ptr[uint32](1)}); err == nil {
		t.Error("rdmaMax accepted a device name with a space")
	}
}
