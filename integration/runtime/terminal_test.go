package runtime_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

func withTerminal(on bool) testenv.BundleOption {
	return testenv.WithSpec(func(s *specs.Spec) { s.Process.Terminal = on })
}

// receivePTY waits for the runtime to send the pty master.
func receivePTY(t *testing.T, cs *testenv.ConsoleSocket) *os.File {
	t.Helper()
	f, name, err := cs.Receive(shortWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if name == "" {
		t.Errorf("console socket message has no name payload")
	}
	return f
}

// TestTerminalCreate: create --console-socket hands over one pty master;
// the container's stdio is that terminal and it is interactive.
func TestTerminalCreate(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t, withTerminal(true), testenv.WithArgs("/bin/sh"))
		cs := testenv.NewConsoleSocket(t)
		c := rt.Create(t, b, "--console-socket", cs.Path)
		master := receivePTY(t, cs)
		term := testenv.NewTermReader(master)
		rt.MustRun(t, "start", c.ID)
		// The shell computes MARK$((40+2)) so the answer cannot be the
		// terminal echoing our input.
		fmt.Fprintf(master, "/xtest isatty; echo MARK$((40+2))\n")
		out, err := term.WaitFor("MARK42", shortWait)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "echo MARK$((40+2))") {
			t.Errorf("terminal did not echo the input: %q", out)
		}
		for _, want := range []string{"0=1", "1=1", "2=1"} {
			if !strings.Contains(out, want) {
				t.Errorf("isatty: %q lacks %s", out, want)
			}
		}
		// /dev/console is the container's pty.
		fmt.Fprintf(master, "/xtest stat /dev/console; /xtest stat /proc/self/fd/0; echo END$((1+1))\n")
		out, err = term.WaitFor("END2", shortWait)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, `"rdev":"136:`) {
			t.Errorf("/dev/console or stdin is not a pts (major 136): %q", out)
		}
		fmt.Fprintf(master, "exit 3\n")
		rt.WaitStatus(t, c.ID, "stopped", shortWait)
	})
}

// TestTerminalExec: exec -t --console-socket into a running container.
func TestTerminalExec(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t)
		c := rt.CreateStart(t, b)
		for _, flag := range []string{"-t", "--tty"} {
			cs := testenv.NewConsoleSocket(t)
			done := make(chan testenv.Result, 1)
			go func() {
				done <- rt.Run(t, "exec", flag, "--console-socket", cs.Path, "-d", c.ID, "/bin/sh")
			}()
			master := receivePTY(t, cs)
			term := testenv.NewTermReader(master)
			if r := <-done; r.Code != 0 {
				t.Fatalf("exec %s: %s", flag, r)
			}
			fmt.Fprintf(master, "/xtest isatty; echo MARK$((40+2)); exit\n")
			out, err := term.WaitFor("MARK42", shortWait)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"0=1", "1=1", "2=1"} {
				if !strings.Contains(out, want) {
					t.Errorf("exec %s isatty: %q lacks %s", flag, out, want)
				}
			}
			select {
			case <-term.Done():
			case <-time.After(shortWait):
				t.Errorf("pty not hung up after the exec'd shell exited")
			}
		}
		// Without a tty, the exec'd process has none.
		if out := execOK(t, rt, c.ID, nil, "/xtest", "isatty"); out != "0=0\n1=0\n2=0\n" {
			t.Errorf("exec without -t: %q", out)
		}
	})
}

// TestTerminalRun: run with terminal:true from a real terminal is
// interactive and propagates the exit code.
func TestTerminalRun(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t, withTerminal(true), testenv.WithArgs("/bin/sh"))
		master, slave, err := testenv.OpenPTY()
		if err != nil {
			t.Fatal(err)
		}
		defer master.Close()
		term := testenv.NewTermReader(master)
		done := make(chan testenv.Result, 1)
		go func() {
			done <- rt.Exec(t, testenv.Opts{Stdin: slave, Stdout: slave, Stderr: slave}, "run", "--bundle", b.Dir, b.ID)
			slave.Close()
		}()
		fmt.Fprintf(master, "/xtest isatty; echo MARK$((40+2)); exit 3\n")
		out, err := term.WaitFor("MARK42", shortWait)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"0=1", "1=1", "2=1"} {
			if !strings.Contains(out, want) {
				t.Errorf("isatty: %q lacks %s", out, want)
			}
		}
		select {
		case r := <-done:
			if r.Code != 3 {
				t.Errorf("run with a terminal: want exit 3, got %s", r)
			}
		case <-time.After(shortWait):
			t.Fatal("run did not return after the shell exited")
		}
	})
}

// TestTerminalErrors: terminal and console socket must agree.
func TestTerminalErrors(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t, withTerminal(true))
		_, r := rt.TryCreate(t, b)
		if r.Code != 1 || !strings.Contains(rt.ErrorText(t, r), "console socket") {
			t.Errorf("create terminal:true without --console-socket: %s\nlog: %s", r, rt.LastError(t))
		}
		b2 := testenv.NewBundle(t, withTerminal(false))
		cs := testenv.NewConsoleSocket(t)
		_, r = rt.TryCreate(t, b2, "--console-socket", cs.Path)
		if r.Code != 1 || !strings.Contains(rt.ErrorText(t, r), "console socket") {
			t.Errorf("create terminal:false with --console-socket: %s\nlog: %s", r, rt.LastError(t))
		}
		if d, _ := os.ReadDir(rt.Root); len(d) != 0 {
			t.Errorf("failed creates left state: %v", d)
		}
	})
}
