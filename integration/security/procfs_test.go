package security_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestProcSysSymlink (CVE-2019-19921, CVE-2023-27561, CVE-2023-28642):
// /proc or /sys in the rootfs is a symlink, so procfs or sysfs would be
// mounted elsewhere and masking and label writes misdirected. create must
// refuse it, and nothing may be mounted at the symlink's target.
func TestProcSysSymlink(t *testing.T) {
	checkCVE(t, "CVE-2019-19921 /proc or /sys a symlink", refFixed, func(t *testing.T, rt *testenv.Runtime) []string {
		var findings []string
		for _, dir := range []string{"proc", "sys"} {
			for _, target := range []string{"/bad-" + dir, "../../../bad-" + dir} {
				b := testenv.NewBundle(t, testenv.WithRootfs(func(root string) {
					mustDo(t, os.RemoveAll(filepath.Join(root, dir)))
					mustDo(t, os.Mkdir(filepath.Join(root, "bad-"+dir), 0o755))
					mustDo(t, os.Symlink(target, filepath.Join(root, dir)))
				}), testenv.WithArgs("/xtest", "stat", "/bad-"+dir))
				r := rt.RunBundle(t, b)
				if r.Code == 0 {
					st := testenv.ParseXtestStat(t, r.Stdout)
					findings = append(findings, fmt.Sprintf("/%s -> %s was accepted; /bad-%s has fs magic %s", dir, target, dir, st.FSMagic))
				}
			}
		}
		return findings
	})
}

// TestProcMount (CVE-2019-16884): an image volume mounted over /proc
// would plant fake /proc/self/attr files, so the runtime's label writes
// land on a tmpfs. create must refuse anything but procfs at /proc.
func TestProcMount(t *testing.T) {
	checkCVE(t, "CVE-2019-16884 a volume over /proc", refFixed, func(t *testing.T, rt *testenv.Runtime) []string {
		return refusedMounts(t, rt, map[string]func(s *specs.Spec){
			"tmpfs at /proc": func(s *specs.Spec) {
				for i := range s.Mounts {
					if s.Mounts[i].Destination == "/proc" {
						s.Mounts[i] = tmpfsMount("/proc")
					}
				}
			},
			"bind at /proc": func(s *specs.Spec) {
				for i := range s.Mounts {
					if s.Mounts[i].Destination == "/proc" {
						s.Mounts[i] = specs.Mount{Destination: "/proc", Type: "bind", Source: testenv.TempDir(t, 0o755), Options: []string{"rbind"}}
					}
				}
			},
		})
	})
}

// TestProcWritesRedirected (CVE-2025-52881 a/b): a mount below /proc
// (/proc/self/attr, /proc/sysrq-trigger, /proc/sys/net under a sysctl)
// could redirect the runtime's own /proc writes (labels, sysctls) to a
// tmpfs or to another procfs file. create must refuse each one; runc 1.1.5
// accepts them.
func TestProcWritesRedirected(t *testing.T) {
	checkCVE(t, "CVE-2025-52881 /proc writes redirected", refVulnerable, func(t *testing.T, rt *testenv.Runtime) []string {
		return refusedMounts(t, rt, map[string]func(s *specs.Spec){
			"tmpfs at /proc/self/attr": func(s *specs.Spec) { s.Mounts = append(s.Mounts, tmpfsMount("/proc/self/attr")) },
			"bind over /proc/sysrq-trigger": func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/proc/sysrq-trigger", Type: "bind", Source: "/dev/null", Options: []string{"bind"}})
			},
			"tmpfs at /proc/sys/net with a net sysctl": func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, tmpfsMount("/proc/sys/net"))
				s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
			},
		})
	})
}

// refusedMounts runs a short container for each spec edit and reports the
// edits the runtime accepted.
func refusedMounts(t *testing.T, rt *testenv.Runtime, edits map[string]func(s *specs.Spec)) []string {
	t.Helper()
	var findings []string
	for name, edit := range edits {
		b := testenv.NewBundle(t, testenv.WithSpec(edit), testenv.WithArgs("/xtest", "exit", "0"))
		if r := rt.RunBundle(t, b); r.Code == 0 {
			findings = append(findings, name+" was accepted")
		}
	}
	sort.Strings(findings)
	return findings
}

func tmpfsMount(dst string) specs.Mount {
	return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
