package devicefilter

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func dev(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	d := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: access}
	if major >= 0 {
		d.Major = &major
	}
	if minor >= 0 {
		d.Minor = &minor
	}
	return d
}

func TestParseRuleErrors(t *testing.T) {
	for _, d := range []specs.LinuxDeviceCgroup{
		{Type: "x"},
		{Type: "c", Access: "rwx"},
		{Type: "c", Access: "rwmr"},
		dev(true, "c", 1<<33, 0, "r"),
	} {
		if _, err := program([]specs.LinuxDeviceCgroup{d}); err == nil || !strings.HasPrefix(err.Error(), "device rule:") {
			t.Errorf("program(%+v) error = %v, want a device rule error", d, err)
		}
	}
}

// cgroup2Root finds the cgroup v2 hierarchy: /sys/fs/cgroup on a v2 host,
// /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Root(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("attaching a device filter needs root")
	}
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return p
		}
	}
	t.Skip("no cgroup2 hierarchy mounted")
	return ""
}

// TestFilterInKernel attaches filters to a fresh cgroup and has a shell in
// that cgroup open devices: the kernel's verdicts must be the rules'.
func TestFilterInKernel(t *testing.T) {
	root := cgroup2Root(t)
	base := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	tests := []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		want  map[string]bool // probe -> allowed
	}{
		{"deny all", base, map[string]bool{"r null": false, "w null": false, "r zero": false}},
		{"allow null rw", append(base, dev(true, "c", 1, 3, "rw")), map[string]bool{"r null": true, "w null": true, "r zero": false, "mknod null": false}},
		{"allow null read only", append(base, dev(true, "c", 1, 3, "r")), map[string]bool{"r null": true, "w null": false}},
		{"major wildcard", append(base, dev(true, "c", 1, -1, "rwm")), map[string]bool{"r null": true, "r zero": true, "mknod null": true, "r tty": false}},
		{"later deny wins", append(base, dev(true, "c", -1, -1, "rwm"), dev(false, "c", 1, 5, "w")), map[string]bool{"r zero": true, "w zero": false, "w null": true}},
		{"later allow wins", append(base, dev(false, "c", 1, 3, "rwm"), dev(true, "c", 1, 3, "r")), map[string]bool{"r null": true, "w null": false}},
		{"allow all then deny all", []specs.LinuxDeviceCgroup{{Allow: true}, {Allow: false}}, map[string]bool{"r null": false}},
		{"block rule does not allow char", append(base, dev(true, "b", 1, 3, "rwm")), map[string]bool{"r null": false}},
		// cgroup v1 keeps one exception per device and merges the accesses
		// of its allow rules: an O_RDWR open needs both at once.
		{"allows of one device merge", append(base, dev(true, "c", 1, 3, "r"), dev(true, "c", 1, 3, "w")), map[string]bool{"rw null": true, "r null": true, "w null": true, "rw zero": false}},
		{"a deny between keeps them apart", append(base, dev(true, "c", 1, 3, "r"), dev(false, "c", 1, 3, "r"), dev(true, "c", 1, 3, "w")), map[string]bool{"rw null": false, "r null": false, "w null": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, err := os.MkdirTemp(root, "xstack-devfilter-")
			if err != nil {
				t.Fatal(err)
			}
			defer os.Remove(dir)
			if err := Apply(dir, tt.rules); err != nil {
				t.Fatal(err)
			}
			// Applying twice replaces, never stacks, the filter.
			if err := Apply(dir, tt.rules); err != nil {
				t.Fatal(err)
			}
			cg, err := os.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			ids, err := attached(int(cg.Fd()))
			cg.Close()
			if err != nil || len(ids) != 1 {
				t.Errorf("after two Applies: programs %v (%v), want exactly one", ids, err)
			}
			for probe, want := range tt.want {
				if got := tryInCgroup(t, dir, probe); got != want {
					t.Errorf("%s: allowed=%v, want %v", probe, got, want)
				}
			}
		})
	}
}

// tryInCgroup runs "r DEV", "w DEV", "rw DEV" or "mknod DEV" (DEV a /dev name) in a
// shell started inside the cgroup and reports whether it was allowed.
func tryInCgroup(t *testing.T, dir, probe string) bool {
	t.Helper()
	op, name, _ := strings.Cut(probe, " ")
	var script string
	switch op {
	case "r":
		script = fmt.Sprintf(": < /dev/%s", name)
	case "w":
		script = fmt.Sprintf(": > /dev/%s", name)
	case "rw":
		script = fmt.Sprintf(": <> /dev/%s", name)
	case "mknod":
		var st unix.Stat_t
		if err := unix.Stat("/dev/"+name, &st); err != nil {
			t.Fatal(err)
		}
		node := filepath.Join(t.TempDir(), name)
		script = fmt.Sprintf("mknod %s c %d %d", node, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	default:
		t.Fatalf("bad probe %q", probe)
	}
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	out, err := cmd.CombinedOutput()
	if err != nil && !strings.Contains(string(out), "ermission denied") && !strings.Contains(string(out), "ot permitted") {
		t.Fatalf("%s: %v: %s", probe, err, out)
	}
	return err == nil
}

// TestVerifierLog: a program the kernel refuses is reported with the
// verifier's reason.
func TestVerifierLog(t *testing.T) {
	cgroup2Root(t)
	// Reads r6, which nothing set.
	bad := []insn{{op: opMovReg, dst: r0, src: 6}, {op: opExit}}
	if fd, err := load(encode(bad)); err == nil {
		unix.Close(fd)
		t.Fatal("the kernel accepted a read of an uninitialized register")
	} else if !strings.Contains(err.Error(), "verifier:") {
		t.Errorf("error %q does not carry the verifier's log", err)
	}
}
