package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func requireV1(t *testing.T) {
	t.Helper()
	requireRoot(t)
	if DetectMode() == Unified {
		t.Skip("host uses cgroup v2 only")
	}
}

// TestV1Lifecycle drives one container cgroup through everything xrunc does
// with it, on the host's real cgroup v1 hierarchies.
func TestV1Lifecycle(t *testing.T) {
	requireV1(t)
	parent := "/" + uniqueName(t)
	m, err := New(parent+"/c1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	cleanupCgroups(t, m, 1)
	paths := m.Paths()
	for _, c := range []string{"memory", "cpu", "cpuset", "pids", "freezer", "devices"} {
		if !strings.HasSuffix(paths[c], parent+"/c1") {
			t.Fatalf("Paths()[%q] = %q, want a directory ending in %s/c1", c, paths[c], parent)
		}
	}
	if _, ok := paths["name=systemd"]; !ok && isCgroupFS("/sys/fs/cgroup/systemd") {
		t.Errorf("Paths() lacks name=systemd: %v", paths)
	}

	worker := startWorker(t)
	if err := m.Apply(worker.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(worker.pid()); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	for key, cg := range procCgroups(t, worker.pid()) {
		if _, managed := paths[key]; managed && cg != parent+"/c1" {
			t.Errorf("worker's %q cgroup is %q, want %s/c1", key, cg, parent)
		}
	}
	worker.release(t)

	// A fresh cpuset cgroup got its parent's cpus and mems, or the worker
	// could not have joined it.
	if readReal(t, paths["cpuset"], "cpuset.cpus") == "" || readReal(t, paths["cpuset"], "cpuset.mems") == "" {
		t.Error("empty cpuset after Apply")
	}

	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{
			Limit: ptr[int64](64 << 20), Reservation: ptr[int64](32 << 20),
			Swappiness: ptr[uint64](10), DisableOOMKiller: ptr(true), Kernel: ptr[int64](-1),
		},
		CPU: &specs.LinuxCPU{
			Shares: ptr[uint64](512), Quota: ptr[int64](20000), Period: ptr[uint64](100000), Cpus: "0", Mems: "0",
		},
		Pids:    &specs.LinuxPids{Limit: ptr[int64](64)},
		BlockIO: &specs.LinuxBlockIO{},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "rw"},
		},
	}
	// A blkio weight needs CFQ or BFQ on some disk: with only mq-deadline
	// (the kernel's default here on some boots) there is no weight file.
	hasWeight := fileExists(paths["blkio"]+"/blkio.weight") || fileExists(paths["blkio"]+"/blkio.bfq.weight")
	if hasWeight {
		r.BlockIO.Weight = ptr[uint16](500)
	}
	hasSwap := fileExists(paths["memory"] + "/memory.memsw.limit_in_bytes")
	if hasSwap {
		r.Memory.Swap = ptr[int64](128 << 20)
	}
	blockDev := rootBlockDevice()
	if blockDev != "" {
		var major, minor int64
		if _, err := fmt.Sscanf(blockDev, "%d:%d", &major, &minor); err == nil {
			r.BlockIO.ThrottleReadBpsDevice = []specs.LinuxThrottleDevice{
				{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 1 << 20},
			}
		}
	}
	t.Logf("swap accounting: %v, blkio weight: %v, throttled device: %q", hasSwap, hasWeight, blockDev)
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	want := []struct{ controller, file, val string }{
		{"memory", "memory.limit_in_bytes", "67108864"},
		{"memory", "memory.soft_limit_in_bytes", "33554432"},
		{"memory", "memory.swappiness", "10"},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_quota_us", "20000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpuset", "cpuset.cpus", "0"},
		{"cpuset", "cpuset.mems", "0"},
		{"pids", "pids.max", "64"},
		{"devices", "devices.list", "c 1:3 rwm\nc 1:5 rw"},
	}
	if hasSwap {
		want = append(want, struct{ controller, file, val string }{"memory", "memory.memsw.limit_in_bytes", "134217728"})
	}
	if r.BlockIO.ThrottleReadBpsDevice != nil {
		want = append(want, struct{ controller, file, val string }{"blkio", "blkio.throttle.read_bps_device", blockDev + " 1048576"})
	}
	for _, w := range want {
		if got := readReal(t, paths[w.controller], w.file); got != w.val {
			t.Errorf("%s = %q, want %q", w.file, got, w.val)
		}
	}
	if oom := readReal(t, paths["memory"], "memory.oom_control"); !strings.Contains(oom, "oom_kill_disable 1") {
		t.Errorf("memory.oom_control = %q, want oom_kill_disable 1", oom)
	}
	if hasWeight {
		weight, err := readFile(paths["blkio"], "blkio.weight")
		if errors.Is(err, unix.ENOENT) {
			weight, err = readFile(paths["blkio"], "blkio.bfq.weight")
		}
		if err != nil || !strings.Contains(weight, "500") {
			t.Errorf("blkio weight = %q, %v; want 500", weight, err)
		}
	}

	if hasSwap {
		// Raising both limits only works memsw first; prove the kernel
		// would refuse the other order, then that Set gets it right.
		if err := writeFile(paths["memory"], "memory.limit_in_bytes", "268435456"); !errors.Is(err, unix.EINVAL) {
			t.Errorf("raising the limit above memsw: %v, want EINVAL", err)
		}
		for _, lim := range [][2]int64{{256 << 20, 512 << 20}, {32 << 20, 64 << 20}, {-1, -1}, {48 << 20, 96 << 20}} {
			err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(lim[0]), Swap: ptr(lim[1])}})
			if err != nil {
				t.Fatalf("Set memory %d/%d: %v", lim[0], lim[1], err)
			}
		}
		if got := readReal(t, paths["memory"], "memory.memsw.limit_in_bytes"); got != "100663296" {
			t.Errorf("memsw after raise and lower = %s", got)
		}
	}

	if _, ok := paths["hugetlb"]; !ok {
		err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}}})
		if !errors.Is(err, ErrControllerMissing) || !strings.Contains(err.Error(), "hugetlb") {
			t.Errorf("hugepage limit without hugetlb mounted = %v", err)
		}
	}

	ticker, ticks := startTicker(t)
	if err := m.Enter(ticker.pid()); err != nil {
		t.Fatal(err)
	}
	pids, err := m.Pids()
	if err != nil || !containsPid(pids, worker.pid()) || !containsPid(pids, ticker.pid()) {
		t.Fatalf("Pids() = %v, %v; want %d and %d", pids, err, worker.pid(), ticker.pid())
	}

	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if frozen, err := m.Frozen(); err != nil || !frozen {
		t.Errorf("Frozen() = %v, %v after Freeze", frozen, err)
	}
	if state := readReal(t, paths["freezer"], "freezer.state"); state != "FROZEN" {
		t.Errorf("freezer.state = %s", state)
	}
	if state := procState(t, worker.pid()); !strings.HasPrefix(state, "D") {
		t.Errorf("frozen worker state = %q, want D", state)
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
	if st.Memory.Usage == 0 || st.Memory.Limit != 48<<20 || st.Memory.Stat == nil {
		t.Errorf("memory stats %+v", st.Memory)
	}
	if st.CPU.UsageTotal == 0 || st.CPU.UsageUser == 0 || st.CPU.UsageTotal != st.CPU.UsageUser+st.CPU.UsageSystem {
		t.Errorf("cpu stats %+v, want the worker's busy loop counted", st.CPU)
	}
	if st.Pids.Current < 2 || st.Pids.Limit != 64 {
		t.Errorf("pids stats %+v", st.Pids)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 0 {
		t.Errorf("OOMKillCount() = %d, %v", n, err)
	}

	loaded := Load(paths)
	if !reflect.DeepEqual(loaded.Paths(), paths) {
		t.Errorf("Load(Paths()).Paths() = %v, want %v", loaded.Paths(), paths)
	}
	if pids, err := loaded.Pids(); err != nil || !containsPid(pids, worker.pid()) {
		t.Errorf("loaded Pids() = %v, %v", pids, err)
	}

	if err := loaded.Kill(); err != nil {
		t.Fatal(err)
	}
	worker.requireKilled(t)
	ticker.requireKilled(t)
	waitFor(t, 5*time.Second, "cgroup to empty", func() bool { p, err := m.Pids(); return err == nil && len(p) == 0 })

	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for c, dir := range paths {
		if fileExists(dir) {
			t.Errorf("%s directory %s still exists", c, dir)
		}
		if !fileExists(path.Dir(dir)) {
			t.Errorf("Destroy removed the parent %s", path.Dir(dir))
		}
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	if frozen, err := m.Frozen(); err != nil || frozen {
		t.Errorf("Frozen() of a removed cgroup = %v, %v; want false, nil", frozen, err)
	}
	if err := m.Kill(); err != nil {
		t.Errorf("Kill() of a removed cgroup = %v, want nil", err)
	}
}

// TestV1KillWithoutCgroupKill covers legacy hosts (and kernels before 5.14):
// no cgroup2 directory, so Kill freezes, signals each pid and thaws.
func TestV1KillWithoutCgroupKill(t *testing.T) {
	requireV1(t)
	m, err := New("/"+uniqueName(t)+"/c1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	cleanupCgroups(t, m, 1)
	ticker, _ := startTicker(t)
	if err := m.Apply(ticker.pid()); err != nil {
		t.Fatal(err)
	}
	legacy := maps.Clone(m.Paths())
	delete(legacy, unifiedKey)
	if err := Load(legacy).Kill(); err != nil {
		t.Fatal(err)
	}
	ticker.requireKilled(t)
	if frozen, _ := m.Frozen(); frozen {
		t.Error("cgroup left frozen by Kill")
	}
}

// TestRelativeAndEmptyCgroupsPath checks that relative paths, and the empty
// path runc turns into "<id>", land below this process's own cgroups (the
// memory one is /process_api/... on the development machine).
func TestRelativeAndEmptyCgroupsPath(t *testing.T) {
	requireRoot(t)
	own := procCgroups(t, os.Getpid())
	name := uniqueName(t)
	tests := []struct {
		cgroupsPath, id, below string
		parents                int
	}{
		{cgroupsPath: name + "/c1", id: "c1", below: name + "/c1", parents: 1},
		{cgroupsPath: "", id: name, below: name},
	}
	for _, tt := range tests {
		t.Run("path="+tt.cgroupsPath, func(t *testing.T) {
			m, err := New(tt.cgroupsPath, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			cleanupCgroups(t, m, tt.parents)
			p := startProcess(t, "sleep", "60")
			if err := m.Apply(p.pid()); err != nil {
				t.Fatal(err)
			}
			got := procCgroups(t, p.pid())
			for key, dir := range m.Paths() {
				want := path.Join(own[key], tt.below)
				if got[key] != want || !strings.HasSuffix(dir, want) {
					t.Errorf("%q: process in %q, Paths() %q; want %q", key, got[key], dir, want)
				}
			}
			if err := m.Kill(); err != nil {
				t.Fatal(err)
			}
			p.requireKilled(t)
			if err := m.Destroy(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestHierarchies: New knows the mount point of every hierarchy it put the
// container in, consistent with Paths; Load does not.
func TestHierarchies(t *testing.T) {
	m, err := New("/xstack-hier-test/c1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	hs := m.Hierarchies()
	if len(hs) == 0 {
		t.Fatal("no hierarchies")
	}
	dirs := map[string]bool{}
	for _, d := range m.Paths() {
		dirs[d] = true
	}
	for _, h := range hs {
		if !dirs[h.Dir] {
			t.Errorf("hierarchy %+v: dir is not one of Paths()", h)
		}
		if h.Dir != h.MountPoint+"/xstack-hier-test/c1" {
			t.Errorf("hierarchy %+v: dir is not the cgroupsPath under the mount point", h)
		}
		delete(dirs, h.Dir)
	}
	if len(dirs) != 0 {
		t.Errorf("Paths() has directories no hierarchy covers: %v", dirs)
	}
	if got := Load(m.Paths()).Hierarchies(); got != nil {
		t.Errorf("Load(...).Hierarchies() = %v, want nil", got)
	}
}

// TestForPid: the manager of a running process's cgroups has the same
// directories as the one that placed it there.
func TestForPid(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	m, err := New("/xstack-forpid-test/c1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Destroy()
		for _, h := range m.Hierarchies() {
			_ = os.Remove(filepath.Dir(h.Dir))
		}
	})
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := m.Enter(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	got, err := ForPid(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got.Paths(), m.Paths()) {
		t.Fatalf("ForPid paths %v\nwant %v", got.Paths(), m.Paths())
	}
	pids, err := got.Pids()
	if err != nil || !slices.Contains(pids, cmd.Process.Pid) {
		t.Fatalf("Pids = %v, %v; want the sleep %d", pids, err, cmd.Process.Pid)
	}
}
