package runtime_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestSpec: `spec` writes a valid default config.json in the cwd or
// --bundle, and refuses to overwrite one.
func TestSpec(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		dir := testenv.TempDir(t, 0o755)
		r := rt.Exec(t, testenv.Opts{NoGlobal: true, Dir: dir}, "spec")
		if r.Code != 0 {
			t.Fatalf("spec: %s", r)
		}
		cfg := filepath.Join(dir, "config.json")
		data, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var s specs.Spec
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("config.json is not a runtime-spec config: %v\n%s", err, data)
		}
		if !strings.HasPrefix(s.Version, "1.") || s.Process == nil || len(s.Process.Args) == 0 ||
			s.Root == nil || s.Root.Path != "rootfs" || s.Linux == nil {
			t.Errorf("incomplete default spec: %+v", s)
		}
		ns := map[specs.LinuxNamespaceType]bool{}
		for _, n := range s.Linux.Namespaces {
			ns[n.Type] = true
		}
		for _, want := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace} {
			if !ns[want] {
				t.Errorf("default spec lacks the %s namespace", want)
			}
		}
		dests := map[string]string{}
		for _, m := range s.Mounts {
			dests[m.Destination] = m.Type
		}
		for d, typ := range map[string]string{"/proc": "proc", "/dev": "tmpfs", "/dev/pts": "devpts", "/sys": "sysfs"} {
			if dests[d] != typ {
				t.Errorf("default spec mount %s: type %q, want %q", d, dests[d], typ)
			}
		}
		if len(s.Linux.MaskedPaths) == 0 || len(s.Linux.ReadonlyPaths) == 0 {
			t.Errorf("default spec has no masked or readonly paths")
		}

		// A second spec refuses to overwrite and leaves the file alone.
		if err := os.WriteFile(cfg, []byte("{\"mine\":1}"), 0o644); err != nil {
			t.Fatal(err)
		}
		r = rt.Exec(t, testenv.Opts{NoGlobal: true, Dir: dir}, "spec")
		if r.Code != 1 || !strings.Contains(r.Stderr, "config.json") || !strings.Contains(r.Stderr, "exists") {
			t.Errorf("spec over an existing config.json: want exit 1 naming config.json and \"exists\", got %s", r)
		}
		if b, _ := os.ReadFile(cfg); string(b) != "{\"mine\":1}" {
			t.Errorf("existing config.json overwritten: %q", b)
		}

		// --bundle / -b write elsewhere than the cwd.
		for _, flag := range []string{"--bundle", "-b"} {
			other := testenv.TempDir(t, 0o755)
			r = rt.Exec(t, testenv.Opts{NoGlobal: true, Dir: dir}, "spec", flag, other)
			if r.Code != 0 {
				t.Fatalf("spec %s: %s", flag, r)
			}
			var s2 specs.Spec
			b, err := os.ReadFile(filepath.Join(other, "config.json"))
			if err != nil || json.Unmarshal(b, &s2) != nil || s2.Process == nil {
				t.Errorf("spec %s DIR: no valid config.json in DIR: %v", flag, err)
			}
		}
	})
}

// TestSpecRuns: the config written by `spec`, made non-interactive, runs a
// container.
func TestSpecRuns(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t)
		os.Remove(filepath.Join(b.Dir, "config.json"))
		rt.MustRun(t, "spec", "--bundle", b.Dir)
		data, _ := os.ReadFile(filepath.Join(b.Dir, "config.json"))
		var s specs.Spec
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatal(err)
		}
		s.Process.Terminal = false
		s.Process.Args = []string{"/xtest", "hostname"}
		s.Linux.CgroupsPath = b.CgroupsPath
		b.Spec = &s
		out := runOK(t, rt, b)
		if strings.TrimSpace(out) != s.Hostname {
			t.Errorf("hostname %q, want %q", out, s.Hostname)
		}
	})
}

// TestFeatures: `features` prints runtime-spec features JSON.
func TestFeatures(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		r := rt.MustRun(t, "features")
		var f features.Features
		if err := json.Unmarshal([]byte(r.Stdout), &f); err != nil {
			t.Fatalf("features is not JSON: %v\n%s", err, r.Stdout)
		}
		if !strings.HasPrefix(f.OCIVersionMin, "1.0") || !strings.HasPrefix(f.OCIVersionMax, "1.") {
			t.Errorf("ociVersionMin %q ociVersionMax %q", f.OCIVersionMin, f.OCIVersionMax)
		}
		has := func(list []string, want ...string) {
			t.Helper()
			set := map[string]bool{}
			for _, x := range list {
				set[x] = true
			}
			for _, w := range want {
				if !set[w] {
					t.Errorf("features lacks %q in %q", w, list)
				}
			}
		}
		has(f.Hooks, "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
		has(f.MountOptions, "ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec", "private", "rprivate", "rslave", "rshared", "relatime", "strictatime")
		if f.Linux == nil {
			t.Fatal("features has no linux object")
		}
		has(f.Linux.Namespaces, "cgroup", "ipc", "mount", "network", "pid", "user", "uts")
		has(f.Linux.Capabilities, "CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_RAW", "CAP_KILL")
		if f.Linux.Cgroup == nil || f.Linux.Cgroup.V1 == nil || !*f.Linux.Cgroup.V1 {
			t.Errorf("features linux.cgroup.v1 is not true: %+v", f.Linux.Cgroup)
		}
		if rt.Is("runc") {
			return // runc 1.1.5 predates linux.memoryPolicy
		}
		if f.Linux.MemoryPolicy == nil {
			t.Fatal("features has no linux.memoryPolicy")
		}
		has(f.Linux.MemoryPolicy.Modes, "MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_PREFERRED", "MPOL_LOCAL")
		has(f.Linux.MemoryPolicy.Flags, "MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES")
		if nd := f.Linux.NetDevices; nd == nil || nd.Enabled == nil || !*nd.Enabled {
			t.Errorf("features linux.netDevices is not enabled: %+v", nd)
		}
	})
}
