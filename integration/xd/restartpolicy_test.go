package xd

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// inspectTask is the task part of xctl inspect.
func (d *daemon) inspectTask(id string) (restarts uint32, byUser bool, status string) {
	d.t.Helper()
	var recs []struct {
		Task *struct {
			Status        string `json:"status"`
			RestartCount  uint32 `json:"restart_count"`
			StoppedByUser bool   `json:"stopped_by_user"`
		} `json:"task"`
	}
	if err := json.Unmarshal([]byte(d.ok("inspect", id)), &recs); err != nil || len(recs) != 1 || recs[0].Task == nil {
		d.t.Fatalf("inspect %s: %v", id, err)
	}
	return recs[0].Task.RestartCount, recs[0].Task.StoppedByUser, recs[0].Task.Status
}

// waitRestarts waits until the container's policy restarted it n times.
func (d *daemon) waitRestarts(id string, n uint32) {
	d.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got, _, _ := d.inspectTask(id); got >= n {
			return
		}
		if time.Now().After(deadline) {
			got, _, status := d.inspectTask(id)
			d.t.Fatalf("%s restarted %d times (%s), want %d\n%s", id, got, status, n, d.logs())
		}
	}
}

// TestRestartPolicies: docker's --restart. on-failure:N restarts a failing
// container N times and keeps the log of every run; always restarts what
// exits 0 too, until a client stops it; unless-stopped brings back after
// xd's restart a container that died meanwhile, but not one stopped.
func TestRestartPolicies(t *testing.T) {
	d := newDaemon(t)
	d.importImage()

	d.ok("run", "-d", "--name", "flaky", "--restart", "on-failure:2", testImage, "sh", "-c", "echo run; exit 3")
	d.waitRestarts("flaky", 2)
	tk := d.waitStatus("flaky", xdv1.Status_STOPPED)
	time.Sleep(500 * time.Millisecond) // a third restart would come within 400 ms
	if n, _, status := d.inspectTask("flaky"); n != 2 || status != "stopped" || tk.ExitStatus != 3 {
		t.Errorf("flaky: %d restarts, %s, exit %d; want 2 restarts, stopped with 3", n, status, tk.ExitStatus)
	}
	if logs := d.ok("logs", "flaky"); logs != "run\nrun\nrun\n" {
		t.Errorf("flaky's log %q, want the three runs", logs)
	}

	d.ok("run", "-d", "--name", "looper", "--restart", "always", testImage, "sh", "-c", "sleep 0.1")
	d.waitRestarts("looper", 2)
	d.ok("stop", "-t", "1", "looper")
	stopped, byUser, _ := d.inspectTask("looper")
	time.Sleep(time.Second)
	if n, _, status := d.inspectTask("looper"); n != stopped || !byUser || status != "stopped" {
		t.Errorf("looper after stop: %d restarts then %d, stopped by user %v, %s; want it left stopped", stopped, n, byUser, status)
	}
	// A client's start begins the count again.
	d.ok("start", "looper")
	if n, byUser, _ := d.inspectTask("looper"); n != 0 || byUser {
		t.Errorf("looper started by a client: %d restarts, stopped by user %v", n, byUser)
	}
	d.ok("kill", "looper")

	// xd goes away; one container dies meanwhile, another was stopped.
	d.ok("run", "-d", "--name", "service", "--restart", "unless-stopped", testImage, "sleep", "1000")
	d.ok("run", "-d", "--name", "parked", "--restart", "unless-stopped", testImage, "sleep", "1000")
	service := d.waitStatus("service", xdv1.Status_RUNNING)
	d.waitStatus("parked", xdv1.Status_RUNNING)
	d.ok("stop", "-t", "1", "parked")
	d.signal(syscall.SIGKILL)
	syscall.Kill(int(service.Pid), syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); processAlive(int(service.Pid)) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	d.start()
	d.waitRestarts("service", 1)
	if back := d.waitStatus("service", xdv1.Status_RUNNING); back.Pid == service.Pid {
		t.Errorf("service still has pid %d", back.Pid)
	}
	if _, _, status := d.inspectTask("parked"); status != "stopped" {
		t.Errorf("parked is %s after xd's restart, want stopped", status)
	}

	// Removed, not restarted.
	d.ok("run", "-d", "--name", "removed", "--restart", "always", testImage, "sleep", "1000")
	d.waitStatus("removed", xdv1.Status_RUNNING)
	d.ok("rm", "-f", "removed")
	time.Sleep(300 * time.Millisecond)
	if ids := d.ok("ps", "-a", "-q"); strings.Contains(ids, "removed") {
		t.Errorf("rm -f of a container that always restarts: still listed\n%s", ids)
	}
	if strings.Contains(d.logs(), "restart policy:") {
		t.Errorf("xd's restart policy failed somewhere:\n%s", d.logs())
	}

	if _, errOut, code := d.xctl("run", "--rm", "--restart", "always", testImage, "true"); code == 0 || !strings.Contains(errOut, "--restart") {
		t.Errorf("run --rm --restart always: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := d.xctl("run", "-d", "--restart", "sometimes", testImage, "true"); code == 0 || !strings.Contains(errOut, `restart policy "sometimes"`) {
		t.Errorf("run --restart sometimes: exit %d, stderr %q", code, errOut)
	}
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}
