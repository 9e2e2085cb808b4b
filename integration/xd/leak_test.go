package xd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// TestNoLeaks (containerd's CVE-2022-23471, CVE-2022-31030 and
// CVE-2025-64329 class): execs with output, terminals resized, clients
// that attach, follow logs or subscribe to events and are killed, stats
// and top, over and over: xd's and the shim's goroutines and file
// descriptors come back to where they were.
func TestNoLeaks(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	d.ok("run", "-d", "--name", "box", testImage, "sh", "-c", "echo started; exec sleep 1000")
	d.ok("run", "-d", "-t", "--name", "tty", testImage, "sleep", "1000")
	box := d.waitStatus("box", xdv1.Status_RUNNING)
	d.waitStatus("tty", xdv1.Status_RUNNING)
	tasks := xdv1.NewTasksClient(d.api())
	shim := shimOf(t, box.Pid)

	round := func() {
		if out := d.ok("exec", "box", "echo", "out"); out != "out\n" {
			t.Fatalf("exec output %q", out)
		}
		d.ok("exec", "-t", "box", "true")
		if _, err := tasks.Metrics(context.Background(), &xdv1.ContainerRequest{ContainerId: "box"}); err != nil {
			t.Fatalf("metrics: %v", err)
		}
		d.ok("top", "box")
		d.ok("logs", "box")
		for i := 0; i < 20; i++ {
			if _, err := tasks.ResizePty(context.Background(), &xdv1.ResizePtyRequest{ContainerId: "tty", Width: uint32(80 + i), Height: 24}); err != nil {
				t.Fatalf("resize: %v", err)
			}
		}
		// Clients that go away in the middle of a stream.
		for _, args := range [][]string{{"attach", "box"}, {"logs", "-f", "box"}, {"events"}} {
			killedClient(t, d, args...)
		}
	}
	round() // what is made once and kept (pools, the first of a kind) is made now
	xdBase, shimBase := d.usage(t), shimUsage(t, d, shim)
	for i := 0; i < 25; i++ {
		round()
	}
	// Streams of killed clients end when xd notices the closed connection.
	var xdNow, shimNow usage
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		xdNow, shimNow = d.usage(t), shimUsage(t, d, shim)
		if xdNow.within(xdBase, 3) && shimNow.within(shimBase, 2) || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("xd: %v, then %v; shim: %v, then %v", xdBase, xdNow, shimBase, shimNow)
	if !xdNow.within(xdBase, 3) {
		t.Errorf("xd: %v after 25 rounds, %v before", xdNow, xdBase)
	}
	if !shimNow.within(shimBase, 2) {
		t.Errorf("shim: %v after 25 rounds, %v before", shimNow, shimBase)
	}
}

// usage is a process's goroutines and open file descriptors.
type usage struct{ goroutines, fds int }

func (u usage) within(base usage, slack int) bool {
	return u.goroutines <= base.goroutines+slack && u.fds <= base.fds+slack
}

func (u usage) String() string { return fmt.Sprintf("%d goroutines, %d fds", u.goroutines, u.fds) }

// usage is xd's, as xctl info says.
func (d *daemon) usage(t *testing.T) usage {
	t.Helper()
	var info struct {
		Goroutines int `json:"goroutines"`
		OpenFds    int `json:"open_fds"`
	}
	if err := json.Unmarshal([]byte(d.ok("info", "--format", "json")), &info); err != nil || info.Goroutines == 0 || info.OpenFds == 0 {
		t.Fatalf("info: %+v, %v", info, err)
	}
	return usage{info.Goroutines, info.OpenFds}
}

// shimOf is the parent of a container's init.
func shimOf(t *testing.T, initPid uint32) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", initPid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	return ppid
}

var shimGoroutines = regexp.MustCompile(`msg=memory shim=\S+ pid=(\d+) .* goroutines=(\d+)`)

// shimUsage counts the shim's fds in /proc and has it log its goroutines
// (SIGUSR1) in its log, which xd copies into its own.
func shimUsage(t *testing.T, d *daemon, pid int) usage {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	before := len(shimGoroutines.FindAllString(d.logs(), -1))
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		all := shimGoroutines.FindAllStringSubmatch(d.logs(), -1)
		if len(all) > before {
			last := all[len(all)-1]
			if last[1] != strconv.Itoa(pid) {
				t.Fatalf("memory line of pid %s, want %d", last[1], pid)
			}
			n, _ := strconv.Atoi(last[2])
			return usage{n, len(fds)}
		}
	}
	t.Fatalf("shim %d logged no goroutine count", pid)
	return usage{}
}

// killedClient starts xctl with args, lets its stream begin, and kills it.
func killedClient(t *testing.T, d *daemon, args ...string) {
	t.Helper()
	cmd := exec.Command(binary(t, "xctl"), append([]string{"--address", d.address}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	cmd.Process.Kill()
	cmd.Wait()
}
