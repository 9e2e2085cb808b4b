package xd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

func TestRunRemove(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	out, errOut, code := d.xctl("run", "--rm", testImage, "echo", "hello")
	if code != 0 || out != "hello\n" {
		t.Fatalf("run --rm echo hello: exit %d stdout %q stderr %q", code, out, errOut)
	}
	// Exit codes pass through; flags after the image belong to the command.
	out, errOut, code = d.xctl("run", "--rm", testImage, "sh", "-c", "echo out; echo err >&2; exit 3")
	if code != 3 || out != "out\n" || errOut != "err\n" {
		t.Fatalf("run exit 3: exit %d stdout %q stderr %q", code, out, errOut)
	}
	if left := strings.TrimSpace(d.ok("ps", "-a", "-q")); left != "" {
		t.Fatalf("--rm left containers: %q", left)
	}
	if snaps, _ := os.ReadDir(filepath.Join(d.state, "bundles", "default")); len(snaps) != 0 {
		t.Fatalf("--rm left bundles: %v", snaps)
	}
}

func TestRunStdin(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	out, errOut, code := d.xctlIn([]byte("line one\nline two\n"), "run", "--rm", "-i", testImage, "sh", "-c", "wc -l; cat /etc/hostname >/dev/null")
	if code != 0 || strings.TrimSpace(out) != "2" {
		t.Fatalf("run -i wc -l: exit %d stdout %q stderr %q", code, out, errOut)
	}
}

func TestDetachedLifecycle(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	id := strings.TrimSpace(d.ok("run", "-d", "--name", "web", testImage, "sh", "-c", "echo started; echo oops >&2; exec sleep 1000"))
	if id != "web" {
		t.Fatalf("run -d printed %q, want the name", id)
	}
	tk := d.waitStatus("web", xdv1.Status_RUNNING)
	if tk.Pid == 0 {
		t.Fatal("running task without pid")
	}
	ps := d.ok("ps")
	if !strings.Contains(ps, "web") || !strings.Contains(ps, "Up") {
		t.Fatalf("ps does not show web up:\n%s", ps)
	}
	// The log keeps both streams.
	deadline := time.Now().Add(5 * time.Second)
	var logs, logsErr string
	for time.Now().Before(deadline) {
		logs, logsErr, _ = d.xctl("logs", "web")
		if strings.Contains(logs, "started") && strings.Contains(logsErr, "oops") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if logs != "started\n" || logsErr != "oops\n" {
		t.Fatalf("logs: stdout %q stderr %q", logs, logsErr)
	}
	if out := d.ok("exec", "web", "hostname"); out != "web\n" {
		t.Fatalf("exec hostname = %q", out)
	}
	if _, _, code := d.xctl("exec", "web", "sh", "-c", "exit 5"); code != 5 {
		t.Fatalf("exec exit code %d, want 5", code)
	}
	var inspected []map[string]any
	if err := json.Unmarshal([]byte(d.ok("inspect", "web")), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("inspect: %v %v", inspected, err)
	}
	// Its processes (TestStatsAndTop looks closer at them and at stats).
	if top := d.ok("top", "web"); !strings.Contains(top, strconv.Itoa(int(tk.Pid))) {
		t.Fatalf("top does not list the init %d:\n%s", tk.Pid, top)
	}
	// pause and resume
	d.ok("pause", "web")
	d.waitStatus("web", xdv1.Status_PAUSED)
	d.ok("unpause", "web")
	d.waitStatus("web", xdv1.Status_RUNNING)

	if _, errOut, code := d.xctl("rm", "web"); code == 0 || !strings.Contains(errOut, "running") {
		t.Fatalf("rm of a running container: exit %d stderr %q", code, errOut)
	}
	// sleep as pid 1 ignores SIGTERM: stop escalates to SIGKILL.
	d.ok("stop", "-t", "1", "web")
	tk = d.waitStatus("web", xdv1.Status_STOPPED)
	if tk.ExitStatus != 137 {
		t.Fatalf("stopped with %d, want 137", tk.ExitStatus)
	}
	if out, _, code := d.xctl("wait", "web"); code != 137 || strings.TrimSpace(out) != "137" {
		t.Fatalf("wait: exit %d stdout %q", code, out)
	}
	psa := d.ok("ps", "-a")
	if !strings.Contains(psa, "Exited (137)") {
		t.Fatalf("ps -a does not show the exit:\n%s", psa)
	}
	if _, errOut, code := d.xctl("kill", "web"); code == 0 || !strings.Contains(errOut, "not running") {
		t.Fatalf("kill of a stopped container: exit %d stderr %q", code, errOut)
	}
	// A stopped container starts again.
	d.ok("start", "web")
	d.waitStatus("web", xdv1.Status_RUNNING)
	d.ok("kill", "web")
	d.waitStatus("web", xdv1.Status_STOPPED)
	d.ok("rm", "web")
	if out := strings.TrimSpace(d.ok("ps", "-a", "-q")); out != "" {
		t.Fatalf("rm left %q", out)
	}
}

func TestRunOptions(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "file"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"env", []string{"-e", "FOO=bar", "-e", "PATH=/bin", testImage, "sh", "-c", "echo $FOO $PATH"}, "bar /bin"},
		{"user by name", []string{"-u", "app", testImage, "sh", "-c", "echo $(id -u):$(id -g):$(id -G)"}, "1000:1000:1000 10"},
		{"user numeric", []string{"-u", "4242:4343", testImage, "sh", "-c", "echo $(id -u):$(id -g)"}, "4242:4343"},
		{"workdir", []string{"-w", "/tmp", testImage, "pwd"}, "/tmp"},
		{"hostname", []string{"--hostname", "box1", testImage, "hostname"}, "box1"},
		{"volume ro", []string{"-v", host + ":/data:ro", testImage, "sh", "-c", "cat /data/file; touch /data/x 2>/dev/null || echo denied"}, "from host\ndenied"},
		{"read-only", []string{"--read-only", testImage, "sh", "-c", "touch /x 2>/dev/null || echo denied"}, "denied"},
		{"net none", []string{"--net", "none", testImage, "sh", "-c", "ls /sys/class/net | tr '\\n' ' '"}, "lo"},
		{"memory", []string{"--memory", "64m", testImage, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}, "67108864"},
		{"pids", []string{"--pids-limit", "42", testImage, "cat", "/sys/fs/cgroup/pids/pids.max"}, "42"},
		{"cpus", []string{"--cpus", "0.5", testImage, "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"}, "50000"},
		{"entrypoint", []string{"--entrypoint", "/bin/echo", testImage, "a", "b"}, "a b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", "--rm"}, tc.args...)
			out, errOut, code := d.xctl(args...)
			if code != 0 || strings.TrimSpace(out) != tc.want {
				t.Fatalf("xctl %v: exit %d stdout %q (want %q) stderr %q", args, code, out, tc.want, errOut)
			}
		})
	}
}

func TestImportFormats(t *testing.T) {
	d := newDaemon(t)
	oci, docker := images(t)
	for _, archive := range []string{oci, docker} {
		out := d.ok("images", "import", archive)
		if !strings.Contains(out, testImage) {
			t.Fatalf("import %s printed %q", archive, out)
		}
	}
	ls := d.ok("images", "ls")
	if !strings.Contains(ls, testImage) {
		t.Fatalf("images ls:\n%s", ls)
	}
	d.ok("images", "tag", testImage, "xstack.local/other:v1")
	if out := d.ok("run", "--rm", "xstack.local/other:v1", "echo", "tagged"); out != "tagged\n" {
		t.Fatalf("run tagged image: %q", out)
	}
	d.ok("images", "rm", "xstack.local/other:v1")
	d.ok("images", "rm", testImage)
	if out := strings.TrimSpace(d.ok("images", "ls", "-q")); out != "" {
		t.Fatalf("images left: %q", out)
	}
	// Nothing references the blobs and layers any more: collected.
	blobs, _ := os.ReadDir(filepath.Join(d.root, "content", "blobs", "sha256"))
	if len(blobs) != 0 {
		t.Fatalf("%d blobs left after removing every image", len(blobs))
	}
}

// TestLogsFollow: `logs -f` streams what a running container writes and
// ends when its output does.
func TestLogsFollow(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	d.ok("run", "-d", "--name", "talker", testImage, "sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.2; done")
	out, errOut, code := d.xctl("logs", "-f", "talker")
	if code != 0 || out != "line 1\nline 2\nline 3\n" {
		t.Fatalf("logs -f: exit %d stdout %q stderr %q", code, out, errOut)
	}
	// The log outlives the task.
	d.waitStatus("talker", xdv1.Status_STOPPED)
	if out := d.ok("logs", "talker"); out != "line 1\nline 2\nline 3\n" {
		t.Fatalf("logs after exit: %q", out)
	}
	// Started again, it logs on after its first run, as docker's.
	d.ok("start", "-a", "talker")
	if out := d.ok("logs", "talker"); out != strings.Repeat("line 1\nline 2\nline 3\n", 2) {
		t.Fatalf("logs after a second run: %q", out)
	}
}

// TestLogsTailSinceTimestamps: docker's logs -n, --since and -t, on a
// log of both streams, and with -f on a container still talking.
func TestLogsTailSinceTimestamps(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	// The two streams are read apart: the pauses keep their order in the log.
	d.ok("run", "--name", "both", testImage, "sh", "-c", "echo out1; sleep 0.1; echo err1 >&2; sleep 1.2; echo out2; sleep 0.1; echo err2 >&2; sleep 0.1; printf last")
	if out, errOut, _ := d.xctl("logs", "--tail", "2", "both"); out != "last" || errOut != "err2\n" {
		t.Errorf("logs --tail 2: stdout %q stderr %q, want the last two lines", out, errOut)
	}
	if out, errOut, _ := d.xctl("logs", "-n", "0", "both"); out != "" || errOut != "" {
		t.Errorf("logs -n 0: stdout %q stderr %q, want nothing", out, errOut)
	}
	if out, errOut, _ := d.xctl("logs", "--since", "10m", "both"); out != "out1\nout2\nlast" || errOut != "err1\nerr2\n" {
		t.Errorf("logs --since 10m: stdout %q stderr %q, want all", out, errOut)
	}
	out := d.ok("logs", "-t", "both")
	lines := strings.Split(out, "\n")
	if len(lines) != 3 {
		t.Fatalf("logs -t: %q, want three stamped lines", out)
	}
	var stamps []time.Time
	for i, want := range []string{"out1", "out2", "last"} {
		stamp, text, _ := strings.Cut(lines[i], " ")
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil || text != want || time.Since(at) > time.Minute {
			t.Fatalf("logs -t line %d: %q (%v), want a recent time and %q", i, lines[i], err, want)
		}
		stamps = append(stamps, at)
	}
	if gap := stamps[1].Sub(stamps[0]); gap < time.Second {
		t.Errorf("logs -t: out2 stamped %v after out1, want the 1.2 s sleep between", gap)
	}
	// Each line is stamped with the time it was logged: --since with the
	// stamp of out2 keeps it and what follows.
	if out := d.ok("logs", "--since", stamps[1].Format(time.RFC3339Nano), "both"); out != "out2\nlast" {
		t.Errorf("logs --since %s: %q", stamps[1].Format(time.RFC3339Nano), out)
	}
	if _, errOut, code := d.xctl("logs", "--tail", "some", "both"); code == 0 || !strings.Contains(errOut, "--tail") {
		t.Errorf("logs --tail some: exit %d stderr %q, want a usage error", code, errOut)
	}
	if _, errOut, code := d.xctl("logs", "--since", "yesterday", "both"); code == 0 || !strings.Contains(errOut, "--since") {
		t.Errorf("logs --since yesterday: exit %d stderr %q, want a usage error", code, errOut)
	}

	// -f with a tail: the last line logged, then everything new.
	d.ok("run", "-d", "--name", "talker", testImage, "sh", "-c", "echo a; echo b; sleep 1; echo c")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(d.ok("logs", "talker"), "b") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if out := d.ok("logs", "-f", "-n", "1", "talker"); out != "b\nc\n" {
		t.Errorf("logs -f -n 1: %q, want b then c", out)
	}
}

// TestOOM: a container that outgrows its memory limit is OOM-killed and
// inspect says so.
func TestOOM(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	// A shell variable of 64 MiB in a 16 MiB cgroup (no swap to escape to).
	_, _, code := d.xctl("run", "--name", "hog", "--memory", "16m", testImage, "sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#x}")
	if code != 137 {
		t.Fatalf("the hog exited %d, want 137 (SIGKILL by the OOM killer)", code)
	}
	var inspected []struct {
		Task struct {
			OOMKilled bool   `json:"oom_killed"`
			Status    string `json:"status"`
		} `json:"task"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := d.ok("inspect", "hog")
		if err := json.Unmarshal([]byte(out), &inspected); err != nil || len(inspected) != 1 {
			t.Fatalf("inspect: %v\n%s", err, out)
		}
		if inspected[0].Task.OOMKilled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inspect does not report the OOM kill:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.ok("rm", "hog")
}

// TestAttachRestart: xctl attach joins a running container (its stdin
// too, when created with -i) and exits with its status; restart stops a
// running container and starts it again, and starts a stopped one.
func TestAttachRestart(t *testing.T) {
	d := newDaemon(t)
	d.importImage()
	d.ok("run", "-d", "-i", "--name", "shell", testImage, "sh")
	d.waitStatus("shell", xdv1.Status_RUNNING)
	out, errOut, code := d.xctlIn([]byte("echo hi from $0\nexit 3\n"), "attach", "shell")
	if code != 3 || out != "hi from sh\n" {
		t.Errorf("attach with stdin: exit %d, stdout %q, stderr %q; want 3 and the shell's answer", code, out, errOut)
	}
	if _, errOut, code := d.xctl("attach", "shell"); code == 0 || !strings.Contains(errOut, "not running") {
		t.Errorf("attach to a stopped container: exit %d, stderr %q", code, errOut)
	}
	d.ok("run", "-d", "--name", "ticker", testImage, "sh", "-c", "sleep 1; echo tick; exit 4")
	if out, errOut, code := d.xctl("attach", "ticker"); code != 4 || out != "tick\n" {
		t.Errorf("attach: exit %d, stdout %q, stderr %q; want 4 and tick", code, out, errOut)
	}

	d.ok("run", "-d", "--name", "server", testImage, "sleep", "1000")
	first := d.waitStatus("server", xdv1.Status_RUNNING)
	if out := d.ok("restart", "-t", "1", "server"); out != "server\n" {
		t.Errorf("restart printed %q", out)
	}
	again := d.waitStatus("server", xdv1.Status_RUNNING)
	if again.Pid == first.Pid || again.Pid == 0 {
		t.Errorf("after restart pid %d, before %d: want a new init", again.Pid, first.Pid)
	}
	d.ok("kill", "server")
	d.waitStatus("server", xdv1.Status_STOPPED)
	d.ok("restart", "server")
	if third := d.waitStatus("server", xdv1.Status_RUNNING); third.Pid == again.Pid {
		t.Errorf("restart of a stopped container kept pid %d", third.Pid)
	}
	if _, errOut, code := d.xctl("restart", "nope"); code == 0 || !strings.Contains(errOut, `"nope"`) {
		t.Errorf("restart of an unknown container: exit %d, stderr %q", code, errOut)
	}
}
