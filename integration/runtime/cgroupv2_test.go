package runtime_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/integration/internal/testenv"
)

const cgroup2Magic = "0x63677270"

// v2Host makes rt see a pure cgroup v2 host: every invocation runs in a
// private mount namespace where /sys/fs/cgroup is the cgroup2 hierarchy
// this (hybrid) machine mounts at /sys/fs/cgroup/unified. It returns the
// host path of that hierarchy.
func v2Host(t *testing.T, rt *testenv.Runtime) string {
	t.Helper()
	const unified = "/sys/fs/cgroup/unified"
	var sfs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &sfs); err == nil && fmt.Sprintf("%#x", sfs.Type) == cgroup2Magic {
		return "/sys/fs/cgroup" // already a v2 host
	}
	if err := unix.Statfs(unified, &sfs); err != nil || fmt.Sprintf("%#x", sfs.Type) != cgroup2Magic {
		t.Skipf("skipping: no cgroup2 hierarchy at %s to build a v2 view from", unified)
	}
	dir := filepath.Join(testenv.TempDir(t, 0o755), "v2")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Named like the runtime so rt.Is still works.
	wrapper := filepath.Join(dir, filepath.Base(rt.Path))
	script := fmt.Sprintf("#!/bin/sh\nexec unshare --mount --propagation private sh -c 'mount --bind %s /sys/fs/cgroup && exec \"$0\" \"$@\"' %s \"$@\"\n", unified, rt.Path)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	rt.Path = wrapper
	return unified
}

// TestCgroupV2: on a cgroup v2 host the container gets one directory in
// the unified hierarchy at its cgroupsPath, sees it as /sys/fs/cgroup,
// pause/resume use cgroup.freeze, ps and kill --all find its processes
// there, limits are written (hugetlb is the controller this machine's
// cgroup2 tree has), and delete removes the directory.
func TestCgroupV2(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		root := v2Host(t, rt)
		limit := uint64(2 << 20)
		b := testenv.NewBundle(t, testenv.WithArgs("/bin/sh", "-c", "/xtest sleep 3600 & exec /xtest sleep 3600"), testenv.WithSpec(func(s *specs.Spec) {
			if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
				if b, _ := os.ReadFile(filepath.Join(root, "cgroup.controllers")); strings.Contains(string(b), "hugetlb") {
					s.Linux.Resources.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: limit}}
				}
			}
		}))
		dir := filepath.Join(root, b.CgroupsPath)
		c := rt.CreateStart(t, b)
		pid := c.Pid(t)

		procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			t.Fatalf("container cgroup %s: %v", dir, err)
		}
		if !strings.Contains("\n"+string(procs), "\n"+strconv.Itoa(pid)+"\n") {
			t.Errorf("init %d not in %s/cgroup.procs: %q", pid, dir, procs)
		}
		own, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if !strings.Contains(string(own), "0::"+b.CgroupsPath+"\n") {
			t.Errorf("/proc/%d/cgroup = %q, want 0::%s", pid, own, b.CgroupsPath)
		}
		if len(b.Spec.Linux.Resources.HugepageLimits) > 0 {
			got, err := os.ReadFile(filepath.Join(dir, "hugetlb.2MB.max"))
			if err != nil || strings.TrimSpace(string(got)) != strconv.FormatUint(limit, 10) {
				t.Errorf("hugetlb.2MB.max = %q, %v; want %d", got, err, limit)
			}
		}
		st := parseStat(t, execOK(t, rt, c.ID, nil, "/xtest", "stat", "/sys/fs/cgroup"))
		if st.FSMagic != cgroup2Magic {
			t.Errorf("/sys/fs/cgroup inside is %s, want cgroup2", st.FSMagic)
		}

		var pids []int
		if err := json.Unmarshal([]byte(rt.MustRun(t, "ps", "--format", "json", c.ID).Stdout), &pids); err != nil || len(pids) < 2 {
			t.Errorf("ps: %v, %v; want the init and its child", pids, err)
		}

		rt.MustRun(t, "pause", c.ID)
		if f, _ := os.ReadFile(filepath.Join(dir, "cgroup.freeze")); strings.TrimSpace(string(f)) != "1" {
			t.Errorf("cgroup.freeze = %q after pause", f)
		}
		if st, _, err := rt.State(t, c.ID); err != nil || st.Status != "paused" {
			t.Errorf("status %q (%v) after pause", st.Status, err)
		}
		rt.MustRun(t, "resume", c.ID)
		if f, _ := os.ReadFile(filepath.Join(dir, "cgroup.freeze")); strings.TrimSpace(string(f)) != "0" {
			t.Errorf("cgroup.freeze = %q after resume", f)
		}

		rt.MustRun(t, "kill", "--all", c.ID, "KILL")
		for _, p := range pids {
			if !testenv.WaitProcGone(p, shortWait) {
				t.Errorf("process %d survived kill --all", p)
			}
		}
		rt.MustRun(t, "delete", c.ID)
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("cgroup %s still there after delete: %v", dir, err)
		}
	})
}

// TestCgroupV2Devices: on cgroup v2 the device rules are an eBPF program on
// the container's cgroup: a spec device without an allow rule cannot be
// opened, the default devices and an allowed spec device can, and root in
// the container cannot mknod its way around the filter.
func TestCgroupV2Devices(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		v2Host(t, rt)
		u := func(v uint32) *uint32 { return &v }
		mode := os.FileMode(0o666)
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{
				// Devices that any root process may open, unlike kmsg or
				// port whose open checks capabilities first.
				{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &mode, UID: u(0), GID: u(0)},
				{Path: "/dev/xtun", Type: "c", Major: 10, Minor: 200, FileMode: &mode, UID: u(0), GID: u(0)},
			}
			misc, tun := int64(10), int64(200)
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
				specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &misc, Minor: &tun, Access: "rw"})
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_MKNOD")
			s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_MKNOD")
			s.Process.Capabilities.Permitted = append(s.Process.Capabilities.Permitted, "CAP_MKNOD")
		}), testenv.WithWritableRoot())
		c := rt.CreateStart(t, b)
		for _, tc := range []struct {
			path string
			want string
		}{
			{"/dev/null", "ok"},
			{"/dev/xtun", "ok"},
			{"/dev/fuse", "EPERM"},
		} {
			if got := strings.TrimSpace(execOK(t, rt, c.ID, nil, "/xtest", "open-rd", tc.path)); got != tc.want {
				t.Errorf("open %s: %s, want %s", tc.path, got, tc.want)
			}
		}
		// mknod is allowed (default rule), opening the new node is not.
		out := execOK(t, rt, c.ID, nil, "/bin/sh", "-c", "mknod /tmp/fuse2 c 10 229 && /xtest open-rd /tmp/fuse2")
		if !strings.Contains(out, "EPERM") {
			t.Errorf("a node made inside for a denied device: %q, want EPERM on open", out)
		}
	})
}
