package daemon

import (
	"os"
	"os/exec"
	"testing"
)

func TestProcParent(t *testing.T) {
	ppid, state, err := procParent(os.Getpid())
	if err != nil || ppid != os.Getppid() || state == "Z" {
		t.Fatalf("procParent(self) = %d %q %v, want %d", ppid, state, err, os.Getppid())
	}
	// A command name with spaces and parentheses does not shift the fields.
	dir := t.TempDir()
	odd := dir + "/a) b (c"
	if err := os.Symlink("/bin/sleep", odd); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(odd, "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if ppid, _, err := procParent(cmd.Process.Pid); err != nil || ppid != os.Getpid() {
		t.Fatalf("procParent(%q) = %d %v, want %d", odd, ppid, err, os.Getpid())
	}
	if _, _, err := procParent(1 << 30); err == nil {
		t.Fatal("a pid that does not exist has a parent")
	}
}
