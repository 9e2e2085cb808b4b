package procattr

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMemoryPolicy(t *testing.T) {
	tests := []struct {
		name      string
		in        specs.LinuxMemoryPolicy
		wantMode  int
		wantNodes []int
		wantErr   string
	}{
		{name: "interleave", in: specs.LinuxMemoryPolicy{Mode: specs.MpolInterleave, Nodes: "0"}, wantMode: 3, wantNodes: []int{0}},
		{name: "bind static", in: specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0-2,5", Flags: []specs.MemoryPolicyFlagType{specs.MpolFStaticNodes}},
			wantMode: 2 | 1<<15, wantNodes: []int{0, 1, 2, 5}},
		{name: "preferred relative", in: specs.LinuxMemoryPolicy{Mode: specs.MpolPreferred, Nodes: "1", Flags: []specs.MemoryPolicyFlagType{specs.MpolFRelativeNodes}},
			wantMode: 1 | 1<<14, wantNodes: []int{1}},
		{name: "preferred without nodes", in: specs.LinuxMemoryPolicy{Mode: specs.MpolPreferred}, wantMode: 1},
		{name: "default without nodes", in: specs.LinuxMemoryPolicy{Mode: specs.MpolDefault}, wantMode: 0},
		{name: "local", in: specs.LinuxMemoryPolicy{Mode: specs.MpolLocal}, wantMode: 4},
		{name: "highest node", in: specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "1023"}, wantMode: 2, wantNodes: []int{1023}},
		{name: "empty", in: specs.LinuxMemoryPolicy{}, wantErr: "linux.memoryPolicy.mode: \"\" is not"},
		{name: "unknown mode", in: specs.LinuxMemoryPolicy{Mode: "INTERLEAVE", Nodes: "0"}, wantErr: "linux.memoryPolicy.mode: \"INTERLEAVE\""},
		{name: "unknown flag", in: specs.LinuxMemoryPolicy{Mode: specs.MpolPreferred, Nodes: "0", Flags: []specs.MemoryPolicyFlagType{specs.MpolFRelativeNodes, "badflag"}},
			wantErr: "linux.memoryPolicy.flags: \"badflag\""},
		{name: "static and relative", in: specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0", Flags: []specs.MemoryPolicyFlagType{specs.MpolFStaticNodes, specs.MpolFRelativeNodes}},
			wantErr: "exclude each other"},
		{name: "default with nodes", in: specs.LinuxMemoryPolicy{Mode: specs.MpolDefault, Nodes: "0-7"}, wantErr: "linux.memoryPolicy.nodes: MPOL_DEFAULT takes no nodes"},
		{name: "bind without nodes", in: specs.LinuxMemoryPolicy{Mode: specs.MpolBind}, wantErr: "linux.memoryPolicy.nodes: MPOL_BIND needs at least one node"},
		{name: "node far too large", in: specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0-9876543210"}, wantErr: "linux.memoryPolicy.nodes: node 9876543210 is beyond"},
		{name: "bad node list", in: specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0,x"}, wantErr: "linux.memoryPolicy.nodes: \"x\" is not a node number"},
		{name: "backwards range", in: specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "3-1"}, wantErr: "runs backwards"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MemoryPolicy(&tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Mode != tt.wantMode {
				t.Errorf("mode %#x, want %#x", got.Mode, tt.wantMode)
			}
			var want [maxNodes / 64]uint64
			for _, n := range tt.wantNodes {
				want[n/64] |= 1 << (n % 64)
			}
			if got.Nodes != want || got.HasNodes != (len(tt.wantNodes) > 0) {
				t.Errorf("nodes %v (given %v), want %v", got.Nodes, got.HasNodes, tt.wantNodes)
			}
		})
	}
}
