package xd

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestInteractiveTTY runs `xctl run --rm -it IMAGE sh` on a real pty, as a
// user at a terminal would: the window size reaches the container, what is
// typed reaches its shell, and the shell's exit code is xctl's.
func TestInteractiveTTY(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	master, slave, err := testenv.OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary(t, "xctl"), "--address", d.address, "run", "--rm", "-it", "--name", "term", testImage, "sh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	out := testenv.NewTermReader(master)

	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(out.String(), what) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("terminal never showed %q; it shows %q", what, out.String())
	}
	// The shell's prompt, then a command typed at it.
	waitFor("# ")
	master.Write([]byte("stty size; echo sum-$((40+2)); tty\r"))
	waitFor("33 101")
	waitFor("sum-42")
	waitFor("/dev/pts/0")
	master.Write([]byte("exit 7\r"))
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 7 {
			t.Fatalf("xctl exited with %v, want 7; terminal: %q", err, out.String())
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("xctl did not exit; terminal: %q", out.String())
	}
	if left := strings.TrimSpace(d.ok("ps", "-a", "-q")); left != "" {
		t.Fatalf("--rm left %q", left)
	}
}

// TestNamespaces: the same name in two namespaces is two containers, and
// every command, streaming ones included, stays in its namespace.
func TestNamespaces(t *testing.T) {
	d := newDaemon(t)
	oci, _ := images(t)
	d.ok("-n", "team", "images", "import", oci)
	if _, errOut, code := d.xctl("run", "--rm", testImage, "true"); code == 0 || !strings.Contains(errOut, "not found") {
		t.Fatalf("image of namespace team visible in default: exit %d %q", code, errOut)
	}
	d.importImage()
	d.ok("-n", "team", "run", "-d", "--name", "web", testImage, "sh", "-c", "echo team; exec sleep 1000")
	d.ok("run", "-d", "--name", "web", testImage, "sh", "-c", "echo default; exec sleep 1000")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (d.ok("-n", "team", "logs", "web") == "" || d.ok("logs", "web") == "") {
		time.Sleep(50 * time.Millisecond)
	}
	if got := d.ok("-n", "team", "logs", "web"); got != "team\n" {
		t.Fatalf("team logs: %q", got)
	}
	if got := d.ok("logs", "web"); got != "default\n" {
		t.Fatalf("default logs: %q", got)
	}
	if got := d.ok("-n", "team", "exec", "web", "echo", "in-team"); got != "in-team\n" {
		t.Fatalf("exec in team: %q", got)
	}
	d.ok("-n", "team", "rm", "-f", "web")
	if out := strings.TrimSpace(d.ok("ps", "-q")); out != "web" {
		t.Fatalf("removing team/web touched default: %q", out)
	}
	if _, errOut, code := d.xctl("-n", "../etc", "ps"); code == 0 || !strings.Contains(errOut, "namespace") {
		t.Fatalf("hostile namespace: exit %d %q", code, errOut)
	}
}
