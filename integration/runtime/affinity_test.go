package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

const noAffinity = "runc 1.1.5 passes its caller's CPU affinity on to the container and ignores process.execCPUAffinity (both came with runc 1.2)"

// onlineCPUs returns the host's online CPU list and its first two CPUs,
// skipping the test on a host with fewer than two.
func onlineCPUs(t *testing.T) (list string, first, second int) {
	t.Helper()
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	list = strings.TrimSpace(string(b))
	first, second = -1, -1
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, _ := strconv.Atoi(lo)
		z := a
		if isRange {
			z, _ = strconv.Atoi(hi)
		}
		for c := a; c <= z && second < 0; c++ {
			if first < 0 {
				first = c
			} else {
				second = c
			}
		}
	}
	if second < 0 {
		t.Skipf("needs two online CPUs to tell affinities apart; this host has %s", list)
	}
	return list, first, second
}

// cpusAllowed is what a process of the container prints for its affinity.
var cpusAllowed = []string{"/bin/grep", "Cpus_allowed_list:", "/proc/self/status"}

func allowedList(out string) string {
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "Cpus_allowed_list:"))
}

// pinnedRun runs the runtime with args while it is pinned to one CPU, as
// a caller pinned with taskset (or a shim on housekeeping CPUs) runs it.
func pinnedRun(t *testing.T, rt *testenv.Runtime, cpu int, args ...string) testenv.Result {
	t.Helper()
	taskset := &testenv.Runtime{Name: "taskset", Path: "/usr/bin/taskset"}
	full := append([]string{"-c", strconv.Itoa(cpu), rt.Path}, rt.GlobalArgs()...)
	return taskset.Exec(t, testenv.Opts{NoGlobal: true}, append(full, args...)...)
}

// TestCPUAffinity: a container's processes do not inherit the affinity of
// a pinned runtime caller, and process.execCPUAffinity sets the affinity
// an exec'd process starts with and the one it runs with.
func TestCPUAffinity(t *testing.T) {
	t.Parallel()
	online, first, second := onlineCPUs(t)
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		rt.SkipIf(t, "runc", noAffinity)
		// config.json's execCPUAffinity is for exec'd processes only.
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Process.ExecCPUAffinity = &specs.CPUAffinity{Final: strconv.Itoa(second)}
		}))
		b.Save(t)
		if r := pinnedRun(t, rt, first, "run", "--detach", "--bundle", b.Dir, b.ID); r.Code != 0 {
			t.Fatalf("run -d pinned to CPU %d: %s\nlog: %s", first, r, rt.LastError(t))
		}
		pid := rt.MustState(t, b.ID).Pid
		status := readFile(t, "/proc/"+strconv.Itoa(pid)+"/status")
		_, line, found := strings.Cut(status, "Cpus_allowed_list:")
		line, _, _ = strings.Cut(line, "\n")
		if got := strings.TrimSpace(line); !found || got != online {
			t.Errorf("init started by a runtime pinned to CPU %d runs on %q, want every online CPU (%s)", first, got, online)
		}

		// Without --process, exec takes config.json's affinity.
		if got := allowedList(execOK(t, rt, b.ID, nil, cpusAllowed...)); got != strconv.Itoa(second) {
			t.Errorf("exec with config.json's execCPUAffinity.final %d: runs on %s", second, got)
		}

		process := func(name string, a *specs.CPUAffinity) string {
			p := specs.Process{Args: cpusAllowed, Env: []string{"PATH=/bin"}, Cwd: "/", ExecCPUAffinity: a}
			data, _ := json.Marshal(p)
			f := filepath.Join(b.Dir, name+".json")
			if err := os.WriteFile(f, data, 0o644); err != nil {
				t.Fatal(err)
			}
			return f
		}
		for _, tc := range []struct {
			name     string
			affinity *specs.CPUAffinity
			want     string
		}{
			{"none", nil, online},
			{"final", &specs.CPUAffinity{Final: strconv.Itoa(first)}, strconv.Itoa(first)},
			{"initial and final", &specs.CPUAffinity{Initial: strconv.Itoa(first), Final: strconv.Itoa(second)}, strconv.Itoa(second)},
		} {
			f := process(tc.name, tc.affinity)
			r := pinnedRun(t, rt, first, "exec", "--process", f, b.ID)
			if r.Code != 0 {
				t.Errorf("%s: exec failed: %s\nlog: %s", tc.name, r, rt.LastError(t))
				continue
			}
			if got := allowedList(r.Stdout); got != tc.want {
				t.Errorf("%s: exec from a runtime pinned to CPU %d runs on %s, want %s", tc.name, first, got, tc.want)
			}
		}

		// CPUs the kernel cannot give: a clear error naming the field.
		for _, tc := range []struct {
			affinity *specs.CPUAffinity
			want     string
		}{
			{&specs.CPUAffinity{Initial: "1000"}, "process.execCPUAffinity.initial"},
			{&specs.CPUAffinity{Final: "1000"}, "process.execCPUAffinity.final"},
			{&specs.CPUAffinity{Final: "3-1"}, "process.execCPUAffinity.final"},
		} {
			r := execIn(t, rt, b.ID, []string{"--process", process("bad", tc.affinity)})
			if r.Code == 0 || !strings.Contains(rt.ErrorText(t, r), tc.want) {
				t.Errorf("exec with %+v: %s, want an error naming %s", *tc.affinity, r, tc.want)
			}
		}
		if st := rt.MustState(t, b.ID); st.Status != "running" {
			t.Errorf("after the failed execs the container is %s", st.Status)
		}
	})
}
