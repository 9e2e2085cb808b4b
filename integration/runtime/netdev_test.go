package runtime_test

import (
	"bufio"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// testNetns is a network namespace the test made, held by a process of its
// own (not `ip netns add`, whose /run/netns mount outlives the test and
// TestCyclesLeaveNothing sees), with a veth pair in it; it goes, with
// whatever is left inside, when the holder is killed at cleanup.
type testNetns struct {
	path string // /proc/PID/ns/net of the holder
}

func newTestNetns(t *testing.T) *testNetns {
	t.Helper()
	holder := exec.Command("unshare", "--net", "--", "sh", "-c", "echo ready; exec sleep 3600")
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatalf("unshare --net: %v", err)
	}
	t.Cleanup(func() {
		_ = holder.Process.Kill()
		_ = holder.Wait()
	})
	// The namespace is the holder's once its shell speaks.
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("network namespace holder: %q, %v", line, err)
	}
	ns := &testNetns{path: fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid)}
	ns.ip(t, "link", "add", "xit0", "type", "veth", "peer", "name", "xit0p")
	ns.ip(t, "link", "set", "xit0", "mtu", "1789", "address", "02:11:22:33:44:55")
	ns.ip(t, "address", "add", "169.254.169.77/32", "dev", "xit0")
	ns.ip(t, "address", "add", "127.0.0.33/8", "dev", "xit0") // host scope: stays behind
	ns.ip(t, "link", "set", "xit0", "up")
	return ns
}

// ipOutput runs ip with args inside the namespace.
func (ns *testNetns) ipOutput(args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"--net=" + ns.path, "ip"}, args...)...).CombinedOutput()
	return string(out), err
}

// ip runs ip with args inside the namespace; a failure fails the test.
func (ns *testNetns) ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := ns.ipOutput(args...); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// inNetns runs the runtime with args from inside the network namespace
// (only that namespace: cgroups and mounts stay the host's).
func inNetns(t *testing.T, rt *testenv.Runtime, ns *testNetns, args ...string) testenv.Result {
	t.Helper()
	nsenter := &testenv.Runtime{Name: "nsenter", Path: "/usr/bin/nsenter"}
	full := append([]string{"--net=" + ns.path, rt.Path}, rt.GlobalArgs()...)
	return nsenter.Exec(t, testenv.Opts{NoGlobal: true}, append(full, args...)...)
}

// TestNetDevices: linux.netDevices moves a device of the runtime's network
// namespace into the container's, renamed, keeping its MTU, MAC address,
// global addresses and up state; a missing device fails create cleanly.
func TestNetDevices(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		rt.SkipIf(t, "runc", "runc 1.1.5 does not know linux.netDevices (runtime-spec 1.3, runc 1.3)")
		ns := newTestNetns(t)
		b := testenv.NewBundle(t, testenv.WithArgs("/bin/ip", "address", "show", "dev", "ctr0"), testenv.WithSpec(func(s *specs.Spec) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"xit0": {Name: "ctr0"}}
		}))
		b.Save(t)
		r := inNetns(t, rt, ns, "run", "--bundle", b.Dir, b.ID)
		if r.Code != 0 {
			t.Fatalf("run: %s\nlog: %s", r, rt.LastError(t))
		}
		for _, want := range []string{"mtu 1789", "link/ether 02:11:22:33:44:55", "inet 169.254.169.77/32 scope global ctr0", ",UP"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("ctr0 in the container lacks %q:\n%s", want, r.Stdout)
			}
		}
		if strings.Contains(r.Stdout, "127.0.0.33") {
			t.Errorf("the host-scope address moved along:\n%s", r.Stdout)
		}
		// The device went with the container's namespace; its peer stays.
		if out, _ := ns.ipOutput("-o", "link"); strings.Contains(out, " xit0@") {
			t.Errorf("xit0 is still in the runtime's namespace:\n%s", out)
		}

		// A device the runtime's namespace lacks: create fails, naming it,
		// leaves no container, and the device moved before it (xit1 sorts
		// first) is back under its own name.
		ns.ip(t, "link", "add", "xit1", "type", "veth", "peer", "name", "xit1p")
		missing := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"xit1": {Name: "moved1"}, "xiz": {}}
		}))
		missing.Save(t)
		r = inNetns(t, rt, ns, "create", "--bundle", missing.Dir, missing.ID)
		if r.Code == 0 || !strings.Contains(rt.ErrorText(t, r), "linux.netDevices: xiz: no such network device") {
			t.Errorf("create with a missing device: %s\nlog: %s", r, rt.LastError(t))
		}
		if out, err := ns.ipOutput("-o", "link", "show", "xit1"); err != nil {
			t.Errorf("xit1 did not come back after the failed create: %v\n%s", err, out)
		}
		if r := rt.Run(t, "state", missing.ID); r.Code == 0 {
			t.Errorf("the failed create left container %s behind", missing.ID)
		}

		// A create that fails after the move (the program is missing)
		// gives the device back rather than letting it die with the
		// container's namespace.
		ns.ip(t, "link", "add", "xit2", "type", "veth", "peer", "name", "xit2p")
		late := testenv.NewBundle(t, testenv.WithArgs("/no/such/program"), testenv.WithSpec(func(s *specs.Spec) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"xit2": {Name: "inner2"}}
		}))
		late.Save(t)
		if r := inNetns(t, rt, ns, "create", "--bundle", late.Dir, late.ID); r.Code == 0 {
			t.Errorf("create of a missing program succeeded: %s", r)
		}
		if out, err := ns.ipOutput("-o", "link", "show", "xit2"); err != nil {
			t.Errorf("xit2 did not come back after create failed past the move: %v\n%s", err, out)
		}

		// No network namespace of its own to move a device into.
		hostNet := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"xit0p": {}}
			var keep []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.NetworkNamespace {
					keep = append(keep, n)
				}
			}
			s.Linux.Namespaces = keep
		}))
		if _, r := rt.TryCreate(t, hostNet); r.Code == 0 || !strings.Contains(rt.ErrorText(t, r), "no network namespace of its own") {
			t.Errorf("create without a network namespace: %s", r)
		}
	})
}
