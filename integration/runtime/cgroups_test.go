package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

func requireCgroupV1(t *testing.T) {
	t.Helper()
	if testenv.IsCgroupV2Only() || testenv.CgroupV1Dir("memory") == "" {
		t.Skip("cgroup v1 tests need the v1 memory/cpu/cpuset/pids/blkio hierarchies; this host is cgroup v2")
	}
}

// TestCgroupResources: linux.resources land in the v1 files at
// cgroupsPath, the init is in those cgroups, and delete removes them.
func TestCgroupResources(t *testing.T) {
	t.Parallel()
	requireCgroupV1(t)
	weight := blkioWeightSupported(t)
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		i64 := func(v int64) *int64 { return &v }
		u64 := func(v uint64) *uint64 { return &v }
		u16 := func(v uint16) *uint16 { return &v }
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			r := s.Linux.Resources
			r.Memory = &specs.LinuxMemory{Limit: i64(64 << 20), Reservation: i64(32 << 20)}
			r.CPU = &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0", Mems: "0"}
			r.Pids = &specs.LinuxPids{Limit: i64(100)}
			if weight {
				r.BlockIO = &specs.LinuxBlockIO{Weight: u16(500)}
			}
		}))
		c := rt.CreateStart(t, b)
		for _, tc := range []struct{ ctrl, file, want string }{
			{"memory", "memory.limit_in_bytes", "67108864"},
			{"memory", "memory.soft_limit_in_bytes", "33554432"},
			{"cpu", "cpu.shares", "512"},
			{"cpu", "cpu.cfs_quota_us", "50000"},
			{"cpu", "cpu.cfs_period_us", "100000"},
			{"cpuset", "cpuset.cpus", "0"},
			{"cpuset", "cpuset.mems", "0"},
			{"pids", "pids.max", "100"},
		} {
			got, err := testenv.ReadCgroupFile(tc.ctrl, b.CgroupsPath, tc.file)
			if err != nil || got != tc.want {
				t.Errorf("%s/%s: %q (%v), want %q", tc.ctrl, tc.file, got, err, tc.want)
			}
		}
		// blkio.weight is blkio.bfq.weight on kernels without CFQ.
		if weight {
			w, err := testenv.ReadCgroupFile("blkio", b.CgroupsPath, "blkio.weight")
			if err != nil {
				w, err = testenv.ReadCgroupFile("blkio", b.CgroupsPath, "blkio.bfq.weight")
			}
			if err != nil || !strings.HasPrefix(strings.TrimPrefix(w, "default "), "500") {
				t.Errorf("blkio weight: %q (%v), want 500", w, err)
			}
		}
		// The init is in every controller's cgroup at cgroupsPath.
		pid := c.Pid(t)
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		for _, ctrl := range []string{"memory", "cpu", "cpuset", "pids", "blkio", "devices", "freezer"} {
			found := false
			for _, l := range strings.Split(string(cg), "\n") {
				f := strings.SplitN(l, ":", 3)
				if len(f) == 3 && strings.Contains(","+f[1]+",", ","+ctrl+",") && f[2] == b.CgroupsPath {
					found = true
				}
			}
			if !found {
				t.Errorf("init not in %s:%s: %s", ctrl, b.CgroupsPath, cg)
			}
		}
		procs, _ := testenv.ReadCgroupFile("memory", b.CgroupsPath, "cgroup.procs")
		if !strings.Contains("\n"+procs+"\n", fmt.Sprintf("\n%d\n", pid)) {
			t.Errorf("memory cgroup.procs %q lacks init %d", procs, pid)
		}
		// Inside, the container sees its own cgroup's limit.
		if out := execOK(t, rt, c.ID, nil, "/xtest", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); strings.TrimSpace(out) != "67108864" {
			t.Errorf("memory limit seen inside: %q", out)
		}
		rt.MustRun(t, "delete", "--force", c.ID)
		for _, h := range testenv.CgroupHierarchies() {
			if _, err := os.Stat(filepath.Join(h, b.CgroupsPath)); err == nil {
				t.Errorf("cgroup %s%s left after delete", h, b.CgroupsPath)
			}
		}
	})
}

// TestPidsLimitBelowInitThreads: a created container whose pids.max is
// lower than its init's thread count still starts: the init (a Go program
// waiting on exec.fifo) makes every thread it needs before the limit
// applies.
func TestPidsLimitBelowInitThreads(t *testing.T) {
	t.Parallel()
	requireCgroupV1(t)
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		limit := int64(1)
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
		}), testenv.WithArgs("/bin/echo", "started"))
		c := rt.Create(t, b)
		// Give the created init's runtime time to want a thread (its
		// scheduler hands the waiting goroutine's P on after a while).
		time.Sleep(100 * time.Millisecond)
		if r := rt.Start(t, c.ID); r.Code != 0 {
			t.Fatalf("start: %s", r)
		}
		if out := c.WaitOutput(t, "started", shortWait); !strings.Contains(out, "started") {
			t.Errorf("output %q, stderr %q", out, c.ErrOutput(t))
		}
	})
}

// TestPidsLimit: pids.max is enforced.
func TestPidsLimit(t *testing.T) {
	t.Parallel()
	requireCgroupV1(t)
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		script := "for i in 1 2 3 4 5 6 7 8 9 10; do /xtest sleep 30 & done; echo spawned; kill $(jobs -p)"
		for _, tc := range []struct {
			limit   int64
			spawned bool
		}{{5, false}, {50, true}} {
			limit := tc.limit
			b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
				s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
			}), testenv.WithArgs("/bin/sh", "-c", script))
			r := runFG(t, rt, b)
			spawned := strings.Contains(r.Stdout, "spawned")
			if spawned != tc.spawned {
				t.Errorf("pids.max %d: spawned 10 processes = %v, want %v (%s)", tc.limit, spawned, tc.spawned, r)
			}
			if !tc.spawned && !strings.Contains(r.Stderr, "can't fork") {
				t.Errorf("pids.max %d: no fork failure: %s", tc.limit, r)
			}
		}
	})
}

// TestUpdate: update changes a running container's limits, from
// --resources (stdin or a file, as containerd's shim and podman pass it)
// and from the per-resource flags; a stopped container is refused.
func TestUpdate(t *testing.T) {
	t.Parallel()
	requireCgroupV1(t)
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t)
		c := rt.CreateStart(t, b)
		check := func(what, ctrl, file, want string) {
			t.Helper()
			if got, err := testenv.ReadCgroupFile(ctrl, b.CgroupsPath, file); err != nil || got != want {
				t.Errorf("after %s: %s/%s = %q (%v), want %q", what, ctrl, file, got, err, want)
			}
		}
		r := rt.Exec(t, testenv.Opts{Stdin: strings.NewReader(`{"pids":{"limit":42},"memory":{"limit":134217728}}`)}, "update", "--resources", "-", c.ID)
		if r.Code != 0 {
			t.Fatalf("update --resources -: %s", r)
		}
		check("--resources -", "pids", "pids.max", "42")
		check("--resources -", "memory", "memory.limit_in_bytes", "134217728")

		file := filepath.Join(t.TempDir(), "res.json")
		if err := os.WriteFile(file, []byte(`{"cpu":{"shares":256}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		rt.MustRun(t, "update", "--resources="+file, c.ID)
		check("--resources=FILE", "cpu", "cpu.shares", "256")
		check("--resources=FILE (untouched)", "pids", "pids.max", "42")

		rt.MustRun(t, "update", "--pids-limit", "7", "--memory", "64m", "--cpu-quota", "20000", c.ID)
		check("flags", "pids", "pids.max", "7")
		check("flags", "memory", "memory.limit_in_bytes", "67108864")
		check("flags", "cpu", "cpu.cfs_quota_us", "20000")

		if r := rt.Exec(t, testenv.Opts{Stdin: strings.NewReader(`{"pids":`)}, "update", "-r", "-", c.ID); r.Code == 0 {
			t.Errorf("update with broken JSON succeeded: %s", r)
		}
		rt.Kill(t, c.ID, "KILL")
		rt.WaitStatus(t, c.ID, "stopped", 10*time.Second)
		if r := rt.Run(t, "update", "--pids-limit", "9", c.ID); r.Code == 0 {
			t.Errorf("update of a stopped container succeeded: %s", r)
		}
		if r := rt.Run(t, "update", "--pids-limit", "9", "no-such-container"); r.Code == 0 || !strings.Contains(rt.ErrorText(t, r), "does not exist") {
			t.Errorf("update of a missing container: %s", r)
		}
	})
}

// blkioWeightSupported tells whether a v1 blkio cgroup has a weight file:
// only with the CFQ or BFQ I/O scheduler on some disk (mq-deadline, the
// default on some boots here, has none).
func blkioWeightSupported(t *testing.T) bool {
	probe := filepath.Join(testenv.CgroupV1Dir("blkio"), "xstack-weight-probe-"+testenv.RandHex(4))
	if err := os.Mkdir(probe, 0o755); err != nil {
		t.Fatalf("blkio probe: %v", err)
	}
	defer os.Remove(probe)
	for _, f := range []string{"blkio.weight", "blkio.bfq.weight"} {
		if _, err := os.Stat(filepath.Join(probe, f)); err == nil {
			return true
		}
	}
	t.Logf("no blkio weight file (no CFQ/BFQ scheduler): the weight is not tested")
	return false
}
