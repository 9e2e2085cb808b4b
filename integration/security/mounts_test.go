package security_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestMountTargetOnHost (CVE-2019-18837): a mount target that is a dangling
// symlink out of the rootfs gets created inside the rootfs, never on the
// host (crun created empty files on the host this way).
func TestMountTargetOnHost(t *testing.T) {
	checkCVE(t, "CVE-2019-18837 mount target created on the host", refFixed, func(t *testing.T, rt *testenv.Runtime) []string {
		host := testenv.TempDir(t, 0o755)
		file, dir := filepath.Join(host, "resolv.conf"), filepath.Join(host, "dir")
		src := filepath.Join(testenv.TempDir(t, 0o755), "src")
		mustDo(t, os.WriteFile(src, []byte("nameserver 127.0.0.1\n"), 0o644))
		b := testenv.NewBundle(t, testenv.WithRootfs(func(root string) {
			mustDo(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
			mustDo(t, os.Symlink(file, filepath.Join(root, "etc/resolv.conf")))
			mustDo(t, os.Symlink("../../../../../../.."+dir, filepath.Join(root, "mnt/evil")))
		}), testenv.WithSpec(func(s *specs.Spec) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: src, Options: []string{"bind", "ro"}},
				specs.Mount{Destination: "/mnt/evil/sub", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
			)
		}), testenv.WithArgs("/xtest", "exit", "0"))
		r := rt.RunBundle(t, b)
		t.Logf("run: exit %d", r.Code)
		return hostEntries(host)
	})
}

// TestSymlinkMountDestination (CVE-2021-30465, deterministic variant): a
// mount destination that is a symlink pointing out of the rootfs,
// absolute or by ../, resolves inside the rootfs; nothing reaches the host
// dir, and the host mount table is unchanged.
func TestSymlinkMountDestination(t *testing.T) {
	checkCVE(t, "CVE-2021-30465 symlinked mount destination", refFixed, func(t *testing.T, rt *testenv.Runtime) []string {
		host := testenv.TempDir(t, 0o755)
		b := testenv.NewBundle(t, testenv.WithRootfs(func(root string) {
			mustDo(t, os.Symlink(host, filepath.Join(root, "mnt/evil-abs")))
			mustDo(t, os.Symlink("../../../../../../../.."+host, filepath.Join(root, "mnt/evil-rel")))
		}), testenv.WithSpec(func(s *specs.Spec) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/mnt/evil-abs", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
				specs.Mount{Destination: "/mnt/evil-rel/sub", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
			)
		}), testenv.WithArgs("/bin/sh", "-c", "/xtest write /mnt/evil-abs/pwned x; /xtest write /mnt/evil-rel/sub/pwned x"))
		r := rt.RunBundle(t, b)
		t.Logf("run: exit %d", r.Code)
		findings := hostEntries(host)
		if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), host) {
			findings = append(findings, "the host mount table has a mount at "+host)
		}
		return findings
	})
}

// TestMaskedPathsDevNull (CVE-2025-31133): masked paths are bind mounts of
// the container's /dev/null; with no /dev tmpfs in the spec and
// rootfs/dev/null a symlink, runc 1.1.5 binds the symlink's target over the
// masked path instead. Here the target is a marker file in the rootfs (the
// real exploit points it at a procfs file such as core_pattern). Every
// masked file must read as the null device or the create must fail.
func TestMaskedPathsDevNull(t *testing.T) {
	checkCVE(t, "CVE-2025-31133 masked paths via /dev/null", refVulnerable, func(t *testing.T, rt *testenv.Runtime) []string {
		b := testenv.NewBundle(t, testenv.WithRootfs(func(root string) {
			mustDo(t, os.WriteFile(filepath.Join(root, "etc/marker"), []byte("marker\n"), 0o644))
			mustDo(t, os.MkdirAll(filepath.Join(root, "dev"), 0o755))
			os.Remove(filepath.Join(root, "dev/null"))
			mustDo(t, os.Symlink("/etc/marker", filepath.Join(root, "dev/null")))
		}), testenv.WithWritableRoot(), testenv.WithSpec(func(s *specs.Spec) {
			s.Mounts = withoutDev(s.Mounts)
			s.Linux.MaskedPaths = []string{"/proc/timer_list", "/proc/keys"}
		}), testenv.WithArgs("/bin/sh", "-c", "(/xtest stat /proc/timer_list; /xtest stat /proc/keys) >/stat.out 2>&1"))
		r := rt.RunBundle(t, b)
		if r.Code != 0 {
			t.Logf("refused: %s", rt.ErrorText(t, r))
			return nil
		}
		out, err := os.ReadFile(filepath.Join(b.Rootfs, "stat.out"))
		mustDo(t, err)
		marker, _ := os.ReadFile(filepath.Join(b.Rootfs, "etc/marker"))
		t.Logf("masked paths: %s; marker now %q", out, marker)
		var findings []string
		for i, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			st := testenv.ParseXtestStat(t, l)
			if st.Type != "char" || st.Rdev != "1:3" {
				findings = append(findings, fmt.Sprintf("masked path %d is a %s of %d bytes (the marker), not the null device", i, st.Type, st.Size))
			}
		}
		return findings
	})
}

// withoutDev drops the spec's mounts at /dev and below, so that the
// runtime works on the rootfs's own /dev.
func withoutDev(ms []specs.Mount) []specs.Mount {
	var out []specs.Mount
	for _, m := range ms {
		if m.Destination != "/dev" && !strings.HasPrefix(m.Destination, "/dev/") {
			out = append(out, m)
		}
	}
	return out
}

// hostEntries reports every entry that appeared in a host dir that only a
// runtime escaping the rootfs could write to.
func hostEntries(dir string) []string {
	var findings []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != dir {
			findings = append(findings, "created on the host: "+p)
		}
		return nil
	})
	return findings
}
