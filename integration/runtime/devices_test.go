package runtime_test

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestDefaultDevices: the devices every container gets, with the right
// numbers and modes, and the standard /dev symlinks and mounts.
func TestDefaultDevices(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		paths := []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
			"/dev/ptmx", "/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/pts", "/dev/shm"}
		script := ""
		for _, p := range paths {
			script += "echo \"" + p + " $(/xtest lstat " + p + ")\"\n"
			script += "echo \"" + p + "-L $(/xtest stat " + p + ")\"\n"
		}
		script += "echo \"null-wr $(/xtest open-wr /dev/null)\"\n"
		script += "echo \"zero $(/bin/dd if=/dev/zero bs=4 count=1 2>/dev/null | /bin/wc -c)\"\n"
		out := runOK(t, rt, testenv.NewBundle(t, testenv.WithArgs("/bin/sh", "-c", script)))
		lines := kvSpace(out)
		for p, rdev := range map[string]string{
			"/dev/null": "1:3", "/dev/zero": "1:5", "/dev/full": "1:7", "/dev/random": "1:8",
			"/dev/urandom": "1:9", "/dev/tty": "5:0",
		} {
			st := parseStat(t, lines[p])
			if st.Type != "char" || st.Rdev != rdev || st.Mode != "0666" || st.UID != 0 || st.GID != 0 {
				t.Errorf("%s: %+v, want char %s mode 0666 root:root", p, st, rdev)
			}
		}
		for p, target := range map[string]string{
			"/dev/ptmx": "pts/ptmx", "/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
			"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
		} {
			st := parseStat(t, lines[p])
			if st.Type != "symlink" || st.Target != target {
				t.Errorf("%s: %+v, want a symlink to %s", p, st, target)
			}
		}
		if st := parseStat(t, lines["/dev/ptmx-L"]); st.Type != "char" || st.Rdev != "5:2" {
			t.Errorf("/dev/ptmx does not resolve to the pts ptmx (5:2): %+v", st)
		}
		if st := parseStat(t, lines["/dev/pts-L"]); st.FSMagic != magicDevpts {
			t.Errorf("/dev/pts: %+v", st)
		}
		if st := parseStat(t, lines["/dev/shm-L"]); st.FSMagic != magicTmpfs || st.Mode != "1777" {
			t.Errorf("/dev/shm: %+v", st)
		}
		if lines["null-wr"] != "ok" || lines["zero"] != "4" {
			t.Errorf("default devices not usable: null-wr %q zero %q", lines["null-wr"], lines["zero"])
		}
	})
}

// TestSpecDevices: linux.devices creates nodes with the given numbers,
// mode and owner; the devices cgroup decides access.
func TestSpecDevices(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		mode := func(m os.FileMode) *os.FileMode { return &m }
		id := func(u uint32) *uint32 { return &u }
		// 240:0 is in the "local/experimental" range with no driver:
		// open gives ENXIO when the devices cgroup allows it, EPERM
		// when it denies it, and touches no hardware either way.
		major, minor := int64(240), int64(0)
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{
				{Path: "/dev/xfull", Type: "c", Major: 1, Minor: 7, FileMode: mode(0o640), UID: id(1000), GID: id(1001)},
				{Path: "/dev/xexp", Type: "c", Major: major, Minor: minor, FileMode: mode(0o600), UID: id(0), GID: id(0)},
				{Path: "/dev/sub/xzero", Type: "c", Major: 1, Minor: 5, FileMode: mode(0o666)},
			}
		}), testenv.WithArgs("/bin/sh", "-c", `
echo "xfull $(/xtest stat /dev/xfull)"
echo "xexp $(/xtest stat /dev/xexp)"
echo "xzero $(/xtest stat /dev/sub/xzero)"
echo "exp-rd $(/xtest open-rd /dev/xexp)"`))
		lines := kvSpace(runOK(t, rt, b))
		st := parseStat(t, lines["xfull"])
		if st.Type != "char" || st.Rdev != "1:7" || st.Mode != "0640" || st.UID != 1000 || st.GID != 1001 {
			t.Errorf("/dev/xfull: %+v, want char 1:7 0640 1000:1001", st)
		}
		if st := parseStat(t, lines["xexp"]); st.Type != "char" || st.Rdev != "240:0" || st.Mode != "0600" || st.UID != 0 {
			t.Errorf("/dev/xexp: %+v, want char 240:0 0600 root", st)
		}
		if st := parseStat(t, lines["xzero"]); st.Type != "char" || st.Rdev != "1:5" {
			t.Errorf("/dev/sub/xzero: %+v", st)
		}
		// Not in the devices cgroup allow list: EPERM.
		if lines["exp-rd"] != "EPERM" {
			t.Errorf("open of a device the cgroup denies: %q, want EPERM", lines["exp-rd"])
		}
		b2 := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			s.Linux.Devices = b.Spec.Linux.Devices
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
				specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "r"})
		}), testenv.WithArgs("/bin/sh", "-c", `echo "exp-rd $(/xtest open-rd /dev/xexp)"; echo "exp-wr $(/xtest open-wr /dev/xexp)"`))
		lines = kvSpace(runOK(t, rt, b2))
		if lines["exp-rd"] != "ENXIO" || lines["exp-wr"] != "EPERM" {
			t.Errorf("cgroup allow c 240:0 r: read %q write %q, want ENXIO (allowed, no driver) EPERM (denied)", lines["exp-rd"], lines["exp-wr"])
		}
		// The cgroup rule is visible from the host.
		c := rt.Create(t, testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) { s.Linux.Resources.Devices = b2.Spec.Linux.Resources.Devices })))
		list, err := testenv.ReadCgroupFile("devices", c.Bundle.CgroupsPath, "devices.list")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(list+"\n", "c 240:0 r\n") {
			t.Errorf("devices.list lacks c 240:0 r: %q", list)
		}
		if strings.Contains(list, "a *:* rwm") {
			t.Errorf("devices.list allows everything: %q", list)
		}
	})
}
