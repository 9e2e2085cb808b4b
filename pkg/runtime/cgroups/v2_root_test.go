package cgroups

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// newV2ForTest returns a v2 manager for an absolute cgroupsPath: through New
// on a v2 host, and on a hybrid host through the controller-less cgroup2 tree
// at /sys/fs/cgroup/unified, which is enough for the core files (procs,
// freeze, events, kill) and whatever controllers the kernel bound to it.
func newV2ForTest(t *testing.T, cgroupsPath string) (*v2Manager, string) {
	t.Helper()
	requireRoot(t)
	h := hostLayout{
		mode: Unified, unifiedRoot: defaultCgroupRoot,
		mountinfoPath: "/proc/self/mountinfo", procCgroupPath: "/proc/self/cgroup", checkFS: true,
	}
	switch DetectMode() {
	case Hybrid:
		h.unifiedRoot = defaultCgroupRoot + "/unified"
	case Legacy:
		t.Skip("no cgroup2 mount on this host")
	}
	m, err := h.newManager(cgroupsPath, "c1")
	if err != nil {
		t.Fatal(err)
	}
	return m.(*v2Manager), h.unifiedRoot
}

// makeTestParent creates the test's top-level cgroup itself, so that Apply
// only enables controllers in it and never in the root's
// cgroup.subtree_control, which the host (and other users of this machine)
// own.
func makeTestParent(t *testing.T, dir string) {
	t.Helper()
	if err := mkdir(dir); err != nil {
		t.Fatalf("mkdir %s: %v", dir, err)
	}
}

func TestV2Lifecycle(t *testing.T) {
	parent := "/" + uniqueName(t)
	m, root := newV2ForTest(t, parent+"/c1")
	if m.dir != root+parent+"/c1" {
		t.Fatalf("dir = %s, want %s%s/c1", m.dir, root, parent)
	}
	makeTestParent(t, root+parent)
	cleanupCgroups(t, m, 1)

	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if !fileExists(m.dir + "/cgroup.procs") {
		t.Fatal("Apply(-1) did not create the cgroup")
	}
	// Every controller the parent has must have been passed down.
	parentControllers := strings.Fields(readReal(t, root+parent, "cgroup.controllers"))
	leafControllers := strings.Fields(readReal(t, m.dir, "cgroup.controllers"))
	if !reflect.DeepEqual(parentControllers, leafControllers) {
		t.Errorf("leaf controllers %v, want the parent's %v", leafControllers, parentControllers)
	}
	t.Logf("controllers: %v", leafControllers)

	worker := startWorker(t)
	if err := m.Apply(worker.pid()); err != nil {
		t.Fatal(err)
	}
	if got := procCgroups(t, worker.pid())[unifiedKey]; got != parent+"/c1" {
		t.Errorf("worker's cgroup2 path = %q, want %s/c1", got, parent)
	}
	worker.release(t)
	ticker, ticks := startTicker(t)
	if err := m.Enter(ticker.pid()); err != nil {
		t.Fatal(err)
	}
	pids, err := m.Pids()
	if err != nil || !containsPid(pids, worker.pid()) || !containsPid(pids, ticker.pid()) {
		t.Fatalf("Pids() = %v, %v; want %d and %d", pids, err, worker.pid(), ticker.pid())
	}

	// Resources: what this host's cgroup2 tree has is set for real; what
	// it lacks must be refused by controller name.
	if containsString(leafControllers, "hugetlb") {
		if sizes, _ := hugePageSizes(hugepagesDir); containsString(sizes, "2MB") {
			err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}})
			if err != nil {
				t.Fatal(err)
			}
			if got := readReal(t, m.dir, "hugetlb.2MB.max"); got != "4194304" {
				t.Errorf("hugetlb.2MB.max = %s", got)
			}
		}
	}
	if !containsString(leafControllers, "pids") {
		err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](10)}})
		if !errors.Is(err, ErrControllerMissing) || !strings.Contains(err.Error(), `"pids"`) {
			t.Errorf("Set pids without the controller = %v", err)
		}
	}
	if err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}); err != nil {
		t.Errorf("Set devices on v2 = %v, want nil (handled by the eBPF filter)", err)
	}

	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if frozen, err := m.Frozen(); err != nil || !frozen {
		t.Errorf("Frozen() = %v, %v after Freeze", frozen, err)
	}
	if events := readReal(t, m.dir, "cgroup.events"); !strings.Contains(events, "frozen 1") {
		t.Errorf("cgroup.events = %q", events)
	}
	requireTicking(t, ticks, false)
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if frozen, err := m.Frozen(); err != nil || frozen {
		t.Errorf("Frozen() = %v, %v after Thaw", frozen, err)
	}
	requireTicking(t, ticks, true)

	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU.UsageTotal == 0 || st.CPU.UsageUser == 0 {
		t.Errorf("cpu stats %+v, want the worker's busy loop counted", st.CPU)
	}
	if !containsString(leafControllers, "memory") && st.Memory.Usage != 0 {
		t.Errorf("memory stats without the controller: %+v", st.Memory)
	}

	loaded := Load(m.Paths())
	if _, ok := loaded.(*v2Manager); !ok || !reflect.DeepEqual(loaded.Paths(), map[string]string{"": m.dir}) {
		t.Fatalf("Load(Paths()) = %#v", loaded)
	}
	if err := loaded.Kill(); err != nil {
		t.Fatal(err)
	}
	// Destroy right away, while the killed processes may still be exiting
	// and are not reaped yet: it has to wait for them, not fail.
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	worker.requireKilled(t)
	ticker.requireKilled(t)
	if fileExists(m.dir) {
		t.Errorf("%s still exists", m.dir)
	}
	if !fileExists(root + parent) {
		t.Errorf("Destroy removed the parent %s", root+parent)
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

// TestV2FreezeEmptyAndMissing covers the edges: freezing an empty cgroup
// completes at once, and a cgroup that is gone reports errors, not hangs.
func TestV2FreezeEmptyAndMissing(t *testing.T) {
	parent := "/" + uniqueName(t)
	m, root := newV2ForTest(t, parent+"/c1")
	makeTestParent(t, root+parent)
	cleanupCgroups(t, m, 1)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("freezing an empty cgroup took %v", d)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := m.Freeze(); err == nil {
		t.Error("Freeze of a removed cgroup succeeded")
	}
	if _, err := m.Pids(); err == nil {
		t.Error("Pids of a removed cgroup succeeded")
	}
	if err := m.Enter(1); err == nil {
		t.Error("Enter into a removed cgroup succeeded")
	}
	if frozen, err := m.Frozen(); err != nil || frozen {
		t.Errorf("Frozen() of a removed cgroup = %v, %v; want false, nil", frozen, err)
	}
	if err := m.Kill(); err != nil {
		t.Errorf("Kill() of a removed cgroup = %v, want nil", err)
	}
}
