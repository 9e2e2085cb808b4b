package shim_test

// Helper modes of the test binary. The survival tests need a "daemon" that
// can be SIGKILLed (the test process cannot kill itself), and the security
// test needs a client with other credentials; both re-execute the test
// binary with $XSTACK_SHIMTEST_HELPER set (see TestMain).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/runc/options"

	"github.com/xstack/xstack/integration/internal/testenv"
)

const (
	helperConfigEnv = "XSTACK_SHIMTEST_CONFIG"
	helperAddrEnv   = "XSTACK_SHIMTEST_ADDR"
	helperNSEnv     = "XSTACK_SHIMTEST_NS"
)

// daemonConfig tells the daemon helper what to run.
type daemonConfig struct {
	TTRPCAddr  string
	Containers []daemonContainer
}

// daemonContainer is one container the daemon helper starts.
type daemonContainer struct {
	Cmd         shimCmd
	BinaryName  string
	RuntimeRoot string
	Rootfs      []daemonMount
}

type daemonMount struct {
	Type, Source string
	Options      []string
}

// daemonReport is what the daemon helper prints per container.
type daemonReport struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	ShimPid int    `json:"shim_pid"`
	InitPid int    `json:"init_pid"`
}

func runHelper(mode string) error {
	switch mode {
	case "daemon":
		return helperDaemon()
	case "dial":
		return helperDial()
	}
	return fmt.Errorf("unknown helper mode %q", mode)
}

// helperDaemon plays containerd: it serves events, drains each bundle's
// log FIFO, starts each shim, creates and starts its container, prints one
// JSON report per container and a line "ready", then waits to be killed.
func helperDaemon() error {
	b, err := os.ReadFile(os.Getenv(helperConfigEnv))
	if err != nil {
		return err
	}
	var cfg daemonConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return err
	}
	if _, err := newEventServer(cfg.TTRPCAddr); err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	for _, c := range cfg.Containers {
		if _, err := newFifoReader(filepath.Join(c.Cmd.Bundle, "log")); err != nil {
			return err
		}
		o := &options.Options{BinaryName: c.BinaryName, Root: c.RuntimeRoot}
		res, err := c.Cmd.runStart(o)
		if err != nil {
			return err
		}
		client, err := dialShim(res.Address, nil)
		if err != nil {
			return err
		}
		tc := taskapi.NewTTRPCTaskClient(client)
		ctx, cancel := context.WithTimeout(nsContext(context.Background(), c.Cmd.NS), rpcTimeout)
		cr, err := tc.Connect(ctx, &taskapi.ConnectRequest{ID: c.Cmd.ID})
		if err != nil {
			cancel()
			return fmt.Errorf("Connect: %w", err)
		}
		a, err := optionsAny(o)
		if err != nil {
			cancel()
			return err
		}
		req := &taskapi.CreateTaskRequest{ID: c.Cmd.ID, Bundle: c.Cmd.Bundle, Options: a}
		for _, m := range c.Rootfs {
			req.Rootfs = append(req.Rootfs, &types.Mount{Type: m.Type, Source: m.Source, Options: m.Options})
		}
		r, err := tc.Create(ctx, req)
		if err != nil {
			cancel()
			return fmt.Errorf("Create: %w", err)
		}
		if _, err := tc.Start(ctx, &taskapi.StartRequest{ID: c.Cmd.ID}); err != nil {
			cancel()
			return fmt.Errorf("Start: %w", err)
		}
		cancel()
		if err := enc.Encode(daemonReport{ID: c.Cmd.ID, Address: res.Address, ShimPid: int(cr.ShimPid), InitPid: int(r.Pid)}); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	select {}
}

// helperDial connects to $XSTACK_SHIMTEST_ADDR and calls Connect; it prints
// "connected shim_pid=N" or "refused: ERROR".
func helperDial() error {
	client, err := dialShim(os.Getenv(helperAddrEnv), nil)
	if err != nil {
		fmt.Printf("refused: dial: %v\n", err)
		return nil
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(nsContext(context.Background(), os.Getenv(helperNSEnv)), 5*time.Second)
	defer cancel()
	cr, err := taskapi.NewTTRPCTaskClient(client).Connect(ctx, &taskapi.ConnectRequest{})
	if err != nil {
		fmt.Printf("refused: Connect: %v\n", err)
		return nil
	}
	fmt.Printf("connected shim_pid=%d\n", cr.ShimPid)
	return nil
}

// daemonProc is a running daemon helper.
type daemonProc struct {
	cmd     *exec.Cmd
	reports map[string]daemonReport
	stderr  *os.File
}

// startDaemonHelper runs the daemon helper (in its own process group) for
// the bundles and waits for its reports.
func (e *env) startDaemonHelper(t *testing.T, bundles ...*bundle) *daemonProc {
	t.Helper()
	cfg := daemonConfig{TTRPCAddr: e.ttrpcAddr}
	for _, b := range bundles {
		c := daemonContainer{
			Cmd: shimCmd{
				Shim: e.c.Shim, NS: e.ns, ID: b.ID, Address: e.address,
				Publish: e.publish, Bundle: b.Dir, TTRPCAddr: e.ttrpcAddr,
			},
			BinaryName:  e.c.Runtime,
			RuntimeRoot: e.runtimeRoot,
		}
		for _, m := range b.Rootfs {
			c.Rootfs = append(c.Rootfs, daemonMount{Type: m.Type, Source: m.Source, Options: m.Options})
		}
		cfg.Containers = append(cfg.Containers, c)
	}
	cfgPath := filepath.Join(e.dir, "daemon-"+testenv.RandHex(4)+".json")
	if err := writeJSON(cfgPath, cfg); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.CreateTemp(e.dir, "daemon-stderr-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=daemon", helperConfigEnv+"="+cfgPath)
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{cmd: cmd, reports: map[string]daemonReport{}, stderr: stderr}
	t.Cleanup(func() {
		d.kill()
		stderr.Close()
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, out)
	}()
	timeout := time.After(time.Duration(len(bundles)) * startTimeout)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("daemon helper exited before it was ready: %s", d.stderrText())
			}
			if l == "ready" {
				return d
			}
			var r daemonReport
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("daemon helper printed %q: %v", l, err)
			}
			d.reports[r.ID] = r
		case <-timeout:
			t.Fatalf("daemon helper not ready: %s", d.stderrText())
		}
	}
}

func (d *daemonProc) stderrText() string {
	b, _ := os.ReadFile(d.stderr.Name())
	return strings.TrimSpace(string(b))
}

// kill SIGKILLs the helper's process group and reaps it.
func (d *daemonProc) kill() {
	if d.cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	d.cmd.Wait()
}

// dialAs runs the dial helper with credentials uid:gid against addr.
func (e *env) dialAs(t *testing.T, addr string, uid, gid uint32) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary lives in a private temp dir that uid 65534 may not
	// traverse: run a copy from a world-readable place.
	cp := filepath.Join(os.TempDir(), "xst-dial-"+testenv.RandHex(4))
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cp, data, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(cp)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cp)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), helperEnv+"=dial", helperAddrEnv+"="+addr, helperNSEnv+"="+e.ns)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("dial helper as %d:%d: %v", uid, gid, err)
	}
	if err != nil {
		t.Fatalf("dial helper as %d:%d failed: %v\n%s", uid, gid, err, out)
	}
	return strings.TrimSpace(string(out))
}
