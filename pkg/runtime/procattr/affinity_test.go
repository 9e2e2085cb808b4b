package procattr

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func cpus(ns ...int) unix.CPUSet {
	var s unix.CPUSet
	for _, n := range ns {
		s.Set(n)
	}
	return s
}

func TestCPUList(t *testing.T) {
	tests := []struct {
		in      string
		want    unix.CPUSet
		wantErr string
	}{
		{in: "0", want: cpus(0)},
		{in: "1", want: cpus(1)},
		{in: "0-3,7", want: cpus(0, 1, 2, 3, 7)},
		{in: "0,1", want: cpus(0, 1)},
		{in: " 2 , 4-5 ", want: cpus(2, 4, 5)},
		{in: "1023", want: cpus(1023)},
		{in: "", wantErr: "empty CPU list"},
		{in: "1024", wantErr: "beyond the 1024 CPUs"},
		{in: "3-1", wantErr: "runs backwards"},
		{in: "a", wantErr: `"a" is not a CPU number`},
		{in: "-1", wantErr: `"" is not a CPU number`},
		{in: "1,,2", wantErr: `"" is not a CPU number`},
		{in: "1-", wantErr: `"" is not a CPU number`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CPUList(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("CPUList(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("CPUList(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestExecCPUAffinity(t *testing.T) {
	one := cpus(1)
	tests := []struct {
		name                string
		in                  *specs.CPUAffinity
		wantInitial, wantFn *unix.CPUSet
		wantErr             string
	}{
		{name: "absent"},
		{name: "initial only", in: &specs.CPUAffinity{Initial: "1"}, wantInitial: &one},
		{name: "final only", in: &specs.CPUAffinity{Final: "1"}, wantFn: &one},
		{name: "both", in: &specs.CPUAffinity{Initial: "1", Final: "1"}, wantInitial: &one, wantFn: &one},
		{name: "bad initial", in: &specs.CPUAffinity{Initial: "x"}, wantErr: "process.execCPUAffinity.initial: "},
		{name: "bad final", in: &specs.CPUAffinity{Initial: "0", Final: "2-1"}, wantErr: "process.execCPUAffinity.final: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			initial, final, err := ExecCPUAffinity(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one starting %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name      string
				got, want *unix.CPUSet
			}{{"initial", initial, tt.wantInitial}, {"final", final, tt.wantFn}} {
				if (c.got == nil) != (c.want == nil) || (c.got != nil && *c.got != *c.want) {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestAllCPUs(t *testing.T) {
	all := AllCPUs()
	if n := all.Count(); n != maxCPUs {
		t.Fatalf("AllCPUs names %d CPUs, want %d", n, maxCPUs)
	}
}
