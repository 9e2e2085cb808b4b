package xd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xstack/xstack/pkg/runtime/proc"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// TestRuntimes runs the same container through every shim and OCI runtime
// xd can drive: xshim with xrunc (the default), xshim with runc, and
// containerd's own shim (io.containerd.runc.v2) with runc and with xrunc.
func TestRuntimes(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	xrunc := binary(t, "xrunc")
	for _, tc := range []struct {
		name string
		args []string
		need string
	}{
		{"xshim+xrunc", nil, ""},
		{"xshim+runc", []string{"--runtime-binary", "/usr/sbin/runc"}, "/usr/sbin/runc"},
		{"runc.v2+runc", []string{"--runtime", "io.containerd.runc.v2", "--runtime-binary", "/usr/sbin/runc"}, "/usr/bin/containerd-shim-runc-v2"},
		{"runc.v2+xrunc", []string{"--runtime", "io.containerd.runc.v2", "--runtime-binary", xrunc}, "/usr/bin/containerd-shim-runc-v2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.need != "" {
				if _, err := os.Stat(tc.need); err != nil {
					t.Skipf("skipped: %s not installed", tc.need)
				}
			}
			run := append(append([]string{"run", "--rm"}, tc.args...), testImage, "sh", "-c", "echo hi; exit 4")
			if out, errOut, code := d.xctl(run...); code != 4 || out != "hi\n" {
				t.Fatalf("run: exit %d stdout %q stderr %q", code, out, errOut)
			}
			name := "rt-" + strings.NewReplacer("+", "-", ".", "-").Replace(tc.name)
			detached := append(append([]string{"run", "-d", "--name", name}, tc.args...), testImage, "sleep", "1000")
			d.ok(detached...)
			tk := d.waitStatus(name, xdv1.Status_RUNNING)
			if out := d.ok("exec", name, "echo", "in"); out != "in\n" {
				t.Fatalf("exec: %q", out)
			}
			// The process tree tells the story: the container's init is a
			// child of a shim whose command line names the container.
			ppid := parentPid(t, int(tk.Pid))
			cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(ppid), "cmdline"))
			if !strings.Contains(string(cmdline), "\x00-id\x00"+name+"\x00") {
				t.Fatalf("parent %d of the container init is %q", ppid, strings.ReplaceAll(string(cmdline), "\x00", " "))
			}
			d.ok("kill", name)
			d.waitStatus(name, xdv1.Status_STOPPED)
			d.ok("rm", name)
		})
	}
}

func parentPid(t *testing.T, pid int) int {
	t.Helper()
	st, err := proc.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	return st.PPid
}

// TestSystemdUnit checks the unit file with systemd's own verifier.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("skipped: systemd-analyze not installed")
	}
	xd := binary(t, "xd")
	unit, err := os.ReadFile("../../contrib/systemd/xd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "KillMode=process", "Delegate=yes", "Restart=always"} {
		if !strings.Contains(string(unit), "\n"+want+"\n") {
			t.Errorf("unit lacks %s", want)
		}
	}
	// Verify the unit as `make install` writes it, with the built xd.
	dir := t.TempDir()
	installed := strings.Replace(string(unit), "ExecStart=/usr/local/bin/xd", "ExecStart="+xd, 1)
	path := filepath.Join(dir, "xd.service")
	if err := os.WriteFile(path, []byte(installed), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "xd.service") {
			t.Errorf("systemd-analyze: %s", line)
		}
	}
}

// TestConfigFile: xd's TOML config picks the default runtime and the OCI
// runtime its shim runs.
func TestConfigFile(t *testing.T) {
	if _, err := os.Stat("/usr/bin/containerd-shim-runc-v2"); err != nil {
		t.Skip("skipped: containerd-shim-runc-v2 not installed")
	}
	d := newDaemon(t, withConfig(`default_runtime = "io.containerd.runc.v2"
stop_timeout = "1s"
[runtimes."io.containerd.runc.v2"]
shim = "/usr/bin/containerd-shim-runc-v2"
binary = "/usr/sbin/runc"
`))
	if info := d.ok("info"); !strings.Contains(info, "io.containerd.runc.v2") {
		t.Fatalf("info does not show the configured default runtime:\n%s", info)
	}
	d.importImage()
	d.ok("run", "-d", "--name", "c", testImage, "sleep", "1000")
	tk := d.waitStatus("c", xdv1.Status_RUNNING)
	if tk.Runtime != "io.containerd.runc.v2" {
		t.Fatalf("task runtime %q", tk.Runtime)
	}
	cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(parentPid(t, int(tk.Pid))), "cmdline"))
	if !strings.HasPrefix(string(cmdline), "/usr/bin/containerd-shim-runc-v2\x00") {
		t.Fatalf("container's parent is %q", strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	// stop_timeout: sleep ignores SIGTERM, so stop takes the configured 1 s.
	start := time.Now()
	d.ok("stop", "c")
	if took := time.Since(start); took > 8*time.Second {
		t.Fatalf("stop took %v with stop_timeout 1s", took)
	}
	d.ok("rm", "c")
}
