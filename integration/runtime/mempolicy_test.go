package runtime_test

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// policyOfSelf prints the NUMA policy of the process, as the first
// mapping of /proc/self/numa_maps shows it ("interleave:0", "default").
var policyOfSelf = []string{"/bin/sh", "-c", `head -n 1 /proc/self/numa_maps | cut -d " " -f 2`}

// TestMemoryPolicy: linux.memoryPolicy is the NUMA policy of the init and
// of every exec'd process; a policy the kernel cannot take fails create
// with the field named.
func TestMemoryPolicy(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/numa_maps"); err != nil {
		t.Skipf("this kernel has no NUMA support to set a memory policy with: %v", err)
	}
	online, err := os.ReadFile("/sys/devices/system/node/online")
	if err != nil {
		t.Fatal(err)
	}
	node, _, _ := strings.Cut(strings.TrimSpace(string(online)), "-")
	node, _, _ = strings.Cut(node, ",")
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		rt.SkipIf(t, "runc", "runc 1.1.5 does not know linux.memoryPolicy (runtime-spec 1.3, runc 1.3)")
		withPolicy := func(p specs.LinuxMemoryPolicy) testenv.BundleOption {
			return testenv.WithSpec(func(s *specs.Spec) { s.Linux.MemoryPolicy = &p })
		}
		flags := func(f ...specs.MemoryPolicyFlagType) []specs.MemoryPolicyFlagType { return f }
		for _, tc := range []struct {
			policy specs.LinuxMemoryPolicy
			want   string
		}{
			{specs.LinuxMemoryPolicy{Mode: specs.MpolInterleave, Nodes: node}, "interleave:" + node},
			{specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: node, Flags: flags(specs.MpolFStaticNodes)}, "bind=static:" + node},
			{specs.LinuxMemoryPolicy{Mode: specs.MpolDefault}, "default"},
			{specs.LinuxMemoryPolicy{Mode: specs.MpolLocal}, "local"},
		} {
			b := testenv.NewBundle(t, testenv.WithArgs(policyOfSelf...), withPolicy(tc.policy))
			if got := strings.TrimSpace(runOK(t, rt, b)); got != tc.want {
				t.Errorf("%+v: the init's policy is %q, want %q", tc.policy, got, tc.want)
			}
		}

		// An exec'd process gets the container's policy too.
		b := testenv.NewBundle(t, withPolicy(specs.LinuxMemoryPolicy{Mode: specs.MpolPreferred, Nodes: node, Flags: flags(specs.MpolFRelativeNodes)}))
		c := rt.CreateStart(t, b)
		if got := strings.TrimSpace(execOK(t, rt, c.ID, nil, policyOfSelf...)); got != "prefer=relative:"+node {
			t.Errorf("exec'd process's policy %q, want prefer=relative:%s", got, node)
		}

		for _, tc := range []struct {
			policy specs.LinuxMemoryPolicy
			want   string
		}{
			{specs.LinuxMemoryPolicy{}, "linux.memoryPolicy.mode"},
			{specs.LinuxMemoryPolicy{Mode: "INTERLEAVE", Nodes: node}, "linux.memoryPolicy.mode"},
			{specs.LinuxMemoryPolicy{Mode: specs.MpolPreferred, Nodes: node, Flags: flags(specs.MpolFRelativeNodes, "badflag")}, "linux.memoryPolicy.flags"},
			{specs.LinuxMemoryPolicy{Mode: specs.MpolDefault, Nodes: "0-7"}, "linux.memoryPolicy.nodes"},
			{specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0-9876543210"}, "linux.memoryPolicy.nodes"},
			// Parsed fine; the kernel refuses a node this host lacks.
			{specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "1000"}, "linux.memoryPolicy: set_mempolicy"},
		} {
			bad := testenv.NewBundle(t, withPolicy(tc.policy))
			if _, r := rt.TryCreate(t, bad); r.Code == 0 || !strings.Contains(rt.ErrorText(t, r), tc.want) {
				t.Errorf("create with %+v: %s, want an error naming %s", tc.policy, r, tc.want)
			}
			if r := rt.Run(t, "state", bad.ID); r.Code == 0 {
				t.Errorf("a failed create left container %s behind", bad.ID)
			}
		}
	})
}
