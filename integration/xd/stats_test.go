package xd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// TestStatsAndTop checks what `xctl stats` and `xctl top` report of a
// busy container with a memory limit and an idle one running as a user.
func TestStatsAndTop(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	d.ok("run", "-d", "--name", "busy", "--memory", "64m", testImage, "sh", "-c", "while :; do :; done")
	d.ok("run", "-d", "--name", "idle", "-u", "1000:1000", testImage, "sleep", "1000")
	idle := d.waitStatus("idle", xdv1.Status_RUNNING)
	d.waitStatus("busy", xdv1.Status_RUNNING)

	var rows []struct {
		ID            string         `json:"id"`
		CPUPercent    float64        `json:"cpu_percent"`
		MemoryUsage   uint64         `json:"memory_usage"`
		MemoryLimit   uint64         `json:"memory_limit"`
		MemoryPercent float64        `json:"memory_percent"`
		Pids          uint64         `json:"pids"`
		Metrics       map[string]any `json:"metrics"`
	}
	out := d.ok("stats", "--no-stream", "--format", "json", "busy", "idle")
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 2 || rows[0].ID != "busy" || rows[1].ID != "idle" {
		t.Fatalf("stats --format json busy idle: %v\n%s", err, out)
	}
	busy, still := rows[0], rows[1]
	// A loop on one CPU is near 100% of one; the margins are for a
	// loaded machine.
	if busy.CPUPercent < 20 || busy.CPUPercent > 110 || still.CPUPercent > 20 {
		t.Errorf("CPU: busy %.1f%%, idle %.1f%%; want about 100%% and 0%%", busy.CPUPercent, still.CPUPercent)
	}
	if busy.MemoryLimit != 64<<20 || busy.MemoryUsage == 0 || busy.MemoryPercent <= 0 {
		t.Errorf("busy memory %d / %d (%.2f%%), want a usage against 64 MiB", busy.MemoryUsage, busy.MemoryLimit, busy.MemoryPercent)
	}
	if host := memTotalOfHost(t); still.MemoryLimit != host {
		t.Errorf("idle memory limit %d, want the host's %d (no limit set)", still.MemoryLimit, host)
	}
	for _, r := range rows {
		if r.Pids != 1 || r.Metrics["memory"] == nil || r.Metrics["pids"] == nil {
			t.Errorf("%s: pids %d and metrics %v; want 1 and the cgroup's metrics", r.ID, r.Pids, r.Metrics)
		}
	}

	// Without names: every running container, as a table.
	table := d.ok("stats", "--no-stream")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "CONTAINER ID") || !strings.HasPrefix(lines[1], "busy ") ||
		!strings.HasPrefix(lines[2], "idle ") || !strings.Contains(lines[1], "/ 64MiB") {
		t.Errorf("stats --no-stream:\n%s", table)
	}
	if _, errOut, code := d.xctl("stats", "--no-stream", "idle", "nope"); code == 0 || !strings.Contains(errOut, `"nope"`) {
		t.Errorf("stats of an unknown container: exit %d, stderr %q", code, errOut)
	}
	// Streaming: a table every second until interrupted.
	stream := exec.Command(binary(t, "xctl"), "--address", d.address, "stats", "idle")
	var streamed bytes.Buffer
	stream.Stdout = &streamed
	if err := stream.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	stream.Process.Signal(os.Interrupt)
	stream.Wait()
	if n := strings.Count(streamed.String(), "CONTAINER ID"); n < 2 {
		t.Errorf("stats streamed %d tables in 2.5 s, want 2:\n%s", n, streamed.String())
	}

	// top: the init as the user it runs as, an exec as root under its id.
	d.ok("exec", "-d", "-u", "0", "idle", "sleep", "500")
	var procs []struct {
		UID       uint32    `json:"uid"`
		Pid       uint32    `json:"pid"`
		PPid      uint32    `json:"ppid"`
		StartedAt time.Time `json:"started_at"`
		CPUTime   int64     `json:"cpu_time_ns"`
		ExecID    string    `json:"exec_id"`
		Command   string    `json:"command"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out = d.ok("top", "--format", "json", "idle")
		if err := json.Unmarshal([]byte(out), &procs); err != nil {
			t.Fatalf("top --format json: %v\n%s", err, out)
		}
		if len(procs) == 2 && procs[1].Command == "sleep 500" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(procs) != 2 {
		t.Fatalf("top idle: %d processes, want the init and the exec:\n%s", len(procs), out)
	}
	init, ex := procs[0], procs[1]
	if init.Pid != idle.Pid || init.UID != 1000 || init.Command != "sleep 1000" || init.ExecID != "" ||
		time.Since(init.StartedAt) > time.Minute || time.Since(init.StartedAt) < 0 {
		t.Errorf("top: init %+v, want pid %d, uid 1000, sleep 1000, started just now", init, idle.Pid)
	}
	if ex.UID != 0 || ex.Command != "sleep 500" || !strings.HasPrefix(ex.ExecID, "exec-") || ex.PPid == init.Pid {
		t.Errorf("top: exec %+v, want root's sleep 500 under its exec id, a child of the shim", ex)
	}
	busyTop := d.ok("top", "busy")
	if !strings.HasPrefix(busyTop, "UID ") || !strings.Contains(busyTop, "sh -c while :; do :; done") {
		t.Errorf("top busy:\n%s", busyTop)
	}
	var busyProcs []struct {
		CPUTime int64 `json:"cpu_time_ns"`
	}
	if err := json.Unmarshal([]byte(d.ok("top", "--format", "json", "busy")), &busyProcs); err != nil || len(busyProcs) != 1 || busyProcs[0].CPUTime <= 0 {
		t.Errorf("top busy: %+v, %v; want one process with CPU time", busyProcs, err)
	}
}

// memTotalOfHost is MemTotal of /proc/meminfo in bytes.
func memTotalOfHost(t *testing.T) uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}
