package metrics

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/xstack/xstack/pkg/runtime/cgroups"
)

// Tests against the host's real cgroupfs, as root. Every cgroup is created
// below a unique top-level name and removed again; every process started is
// killed and reaped by its pid.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func uniqueName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "xstack-metrics-test-" + hex.EncodeToString(b)
}

// burner is a shell that, once released, burns a little CPU in whatever
// cgroup it was moved to meanwhile, then execs sleep (keeping its pid).
type burner struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func startBurner(t *testing.T) *burner {
	t.Helper()
	cmd := exec.Command("sh", "-c", `read x; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 30`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		_ = cmd.Wait()
	})
	return &burner{cmd: cmd, stdin: stdin}
}

func (b *burner) pid() int { return b.cmd.Process.Pid }

// release lets the loop run and waits until it is done (sleep runs).
func (b *burner) release(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(b.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", b.pid()))
		if err == nil && strings.TrimSpace(string(comm)) == "sleep" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d did not finish its loop", b.pid())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func requireTypeURL(t *testing.T, msg any, want string) {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(msg)
	if err != nil {
		t.Fatal(err)
	}
	if a.GetTypeUrl() != want {
		t.Errorf("type URL %q, want %q", a.GetTypeUrl(), want)
	}
}

// TestMetricsRealV1 uses the host's v1 (or hybrid) hierarchies through a
// manager made by cgroups.New, as xrunc creates containers.
func TestMetricsRealV1(t *testing.T) {
	requireRoot(t)
	if cgroups.DetectMode() == cgroups.Unified {
		t.Skip("cgroup v2 host: no v1 hierarchies")
	}
	top := "/" + uniqueName(t)
	m, err := cgroups.New(top+"/c", "c")
	if err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("destroy: %v", err)
		}
		for _, dir := range paths {
			if err := unix.Rmdir(filepath.Dir(dir)); err != nil && err != unix.ENOENT {
				t.Errorf("rmdir %s: %v", filepath.Dir(dir), err)
			}
		}
	})
	for _, c := range []string{"memory", "pids", "cpuacct"} {
		if _, ok := paths[c]; !ok {
			t.Skipf("no %s hierarchy", c)
		}
	}

	b := startBurner(t) // its cleanup runs first, emptying the cgroup
	if err := m.Apply(b.pid()); err != nil {
		t.Fatal(err)
	}
	memLimit, pidsLimit := int64(64<<20), int64(32)
	if err := m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &memLimit},
		Pids:   &specs.LinuxPids{Limit: &pidsLimit},
	}); err != nil {
		t.Fatal(err)
	}
	b.release(t)

	msg, err := Metrics(m)
	if err != nil {
		t.Fatal(err)
	}
	requireTypeURL(t, msg, "io.containerd.cgroups.v1.Metrics")
	got, ok := msg.(*v1.Metrics)
	if !ok {
		t.Fatalf("got %T, want *v1.Metrics", msg)
	}
	t.Log(prototext.Format(got))
	if p := got.GetPids(); p == nil || p.Current < 1 || p.Limit != uint64(pidsLimit) {
		t.Errorf("pids %v, want current >= 1 and limit %d", p, pidsLimit)
	}
	if u := got.GetMemory().GetUsage(); u == nil || u.Limit != uint64(memLimit) || u.Usage == 0 {
		t.Errorf("memory usage %v, want limit %d and usage > 0", u, memLimit)
	}
	if u := got.GetCPU().GetUsage(); u == nil || u.Total == 0 || u.User+u.Kernel != u.Total {
		t.Errorf("cpu usage %v, want total > 0 = user + kernel", u)
	} else {
		var sum uint64
		for _, v := range u.PerCPU {
			sum += v
		}
		if len(u.PerCPU) == 0 || sum == 0 {
			t.Errorf("per_cpu %v, want the CPUs' usage", u.PerCPU)
		}
	}
	if got.GetCPU().GetThrottling() == nil {
		t.Error("no throttling stats")
	}
	if oc := got.GetMemoryOomControl(); oc == nil || oc.OomKill != 0 || oc.UnderOom != 0 {
		t.Errorf("oom control %v, want no OOM", oc)
	}
	if _, ok := paths["blkio"]; ok && got.GetBlkio() == nil {
		t.Error("blkio hierarchy but no blkio stats")
	}
	// memory.stat: the limit is inherited as hierarchical_memory_limit, and
	// the shell faulted pages in after it moved in. (rss may well be 0: the
	// shell's pages were charged before it moved, and charges stay put.)
	// The kernel flushes memcg event counters lazily (every ~2 s, or
	// after enough updates), so a few faults may not show at once.
	ms := got.GetMemory()
	for deadline := time.Now().Add(10 * time.Second); ms.GetPgFault() == 0 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		again, err := Metrics(m)
		if err != nil {
			t.Fatal(err)
		}
		ms = again.(*v1.Metrics).GetMemory()
	}
	if ms.GetHierarchicalMemoryLimit() != uint64(memLimit) || ms.GetPgFault() == 0 || ms.GetTotalPgFault() == 0 {
		t.Errorf("memory.stat not mapped: %v", ms)
	}
}

// TestMetricsRealV2 uses the hybrid host's cgroup2 tree
// (/sys/fs/cgroup/unified), where no memory, pids, cpu or io controller can
// be enabled: those are bound to the v1 hierarchies. What a cgroup there
// still has is the core cpu.stat (usage_usec, user_usec, system_usec),
// cgroup.procs, and whichever controllers the root does list (here only
// hugetlb, which is not mounted as v1). So Metrics must give the CPU usage,
// no Pids (there is no pids.current; the processes are only listed in
// cgroup.procs, which Manager.Pids reads), and no Memory or Io.
func TestMetricsRealV2(t *testing.T) {
	requireRoot(t)
	if cgroups.DetectMode() != cgroups.Hybrid {
		t.Skip("not a hybrid host")
	}
	dir := filepath.Join("/sys/fs/cgroup/unified", uniqueName(t))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Rmdir(dir); err != nil {
			t.Errorf("rmdir %s: %v", dir, err)
		}
	})
	b := startBurner(t) // its cleanup runs first, emptying the cgroup
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(b.pid())), 0o644); err != nil {
		t.Fatal(err)
	}
	b.release(t)

	m := cgroups.Load(map[string]string{"": dir})
	msg, err := Metrics(m)
	if err != nil {
		t.Fatal(err)
	}
	requireTypeURL(t, msg, "io.containerd.cgroups.v2.Metrics")
	got, ok := msg.(*v2.Metrics)
	if !ok {
		t.Fatalf("got %T, want *v2.Metrics", msg)
	}
	t.Log(prototext.Format(got))
	content, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	enabled := strings.Fields(string(content))
	t.Logf("cgroup.controllers: %q", enabled)

	if c := got.GetCPU(); c == nil || c.UsageUsec == 0 || c.UserUsec+c.SystemUsec == 0 {
		t.Errorf("cpu %v, want usage > 0", c)
	}
	if slices.Contains(enabled, "cpu") {
		t.Log("cpu controller enabled: throttling keys present")
	} else if c := got.GetCPU(); c.NrPeriods != 0 || c.NrThrottled != 0 || c.ThrottledUsec != 0 {
		t.Errorf("throttling %v without the cpu controller", c)
	}
	for _, tc := range []struct {
		controller string
		present    bool
	}{
		{"pids", got.GetPids() != nil},
		{"memory", got.GetMemory() != nil},
		{"memory", got.GetMemoryEvents() != nil},
		{"io", got.GetIo() != nil},
	} {
		if want := slices.Contains(enabled, tc.controller); tc.present != want {
			t.Errorf("%s stats present = %v, controller enabled = %v", tc.controller, tc.present, want)
		}
	}
	if !slices.Contains(enabled, "pids") {
		// The process count is in cgroup.procs only.
		pids, err := m.Pids()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(pids, b.pid()) {
			t.Errorf("cgroup.procs lists %v, want %d", pids, b.pid())
		}
		if _, err := os.Stat(filepath.Join(dir, "pids.current")); !os.IsNotExist(err) {
			t.Errorf("pids.current without the pids controller: %v", err)
		}
	}
	if slices.Contains(enabled, "hugetlb") {
		sizes, _ := filepath.Glob("/sys/kernel/mm/hugepages/hugepages-*kB")
		if len(got.GetHugetlb()) != len(sizes) {
			t.Errorf("hugetlb %v, want one entry per page size %v", got.GetHugetlb(), sizes)
		}
		// An unset hugetlb.<size>.max reads "max" or, on this kernel, the
		// page-aligned MaxInt64; either is passed on as read, as containerd
		// does.
		for _, h := range got.GetHugetlb() {
			if (h.Max != cgroups.Unlimited && h.Max != v1NoLimit) || h.Current != 0 {
				t.Errorf("hugetlb %v, want no limit and unused", h)
			}
		}
	} else if len(got.GetHugetlb()) != 0 {
		t.Errorf("hugetlb %v without the controller", got.GetHugetlb())
	}
}
