package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		body    string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{name: "empty file keeps every default", body: "", check: func(t *testing.T, c Config) {
			if c.Root != "/var/lib/xd" || c.State != "/run/xd" || c.Address != "/run/xd/xd.sock" || c.DefaultRuntime != RuntimeXshim {
				t.Fatalf("defaults: %+v", c)
			}
			if c.StopTimeout.Duration != 10*time.Second || len(c.Runtimes) != 2 || c.LogMaxSize != 20<<20 || c.LogMaxFiles != 5 {
				t.Fatalf("defaults: %+v", c)
			}
		}},
		{name: "log rotation", body: "log_max_size = \"512k\"\nlog_max_files = 2\n", check: func(t *testing.T, c Config) {
			if c.LogMaxSize != 512<<10 || c.LogMaxFiles != 2 {
				t.Fatalf("log rotation: %d bytes, %d files", c.LogMaxSize, c.LogMaxFiles)
			}
		}},
		{name: "log kept whole", body: "log_max_size = \"0\"\n", check: func(t *testing.T, c Config) {
			if c.LogMaxSize != 0 || c.LogMaxFiles != 5 {
				t.Fatalf("log kept whole: %d bytes, %d files", c.LogMaxSize, c.LogMaxFiles)
			}
		}},
		{name: "bad log size", body: "log_max_size = \"big\"\n", wantErr: "invalid size \"big\""},
		{name: "no log file", body: "log_max_files = 0\n", wantErr: "log_max_files 0"},
		{name: "overrides", body: "root = \"/data/xd\"\nstop_timeout = \"3s\"\ndefault_runtime = \"io.containerd.runc.v2\"\n[runtimes.\"io.containerd.runc.v2\"]\nshim = \"/opt/shim\"\nbinary = \"/usr/bin/crun\"\n", check: func(t *testing.T, c Config) {
			if c.Root != "/data/xd" || c.State != "/run/xd" || c.StopTimeout.Duration != 3*time.Second {
				t.Fatalf("overrides: %+v", c)
			}
			if rt := c.Runtimes[RuntimeRuncV2]; rt.Shim != "/opt/shim" || rt.Binary != "/usr/bin/crun" {
				t.Fatalf("runtime: %+v", rt)
			}
			if _, ok := c.Runtimes[RuntimeXshim]; !ok {
				t.Fatal("a file naming one runtime dropped the default one")
			}
		}},
		{name: "unknown key", body: "rooot = \"/x\"\n", wantErr: "unknown key \"rooot\""},
		{name: "relative cgroup parent", body: "cgroup_parent = \"xd\"\n", wantErr: "cgroup_parent"},
		{name: "unclean cgroup parent", body: "cgroup_parent = \"/a/../b\"\n", wantErr: "cgroup_parent"},
		{name: "bad duration", body: "stop_timeout = \"soon\"\n", wantErr: "soon"},
		{name: "not toml", body: "root = \n", wantErr: "config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadConfig(write(strings.ReplaceAll(tc.name, " ", "_")+".toml", tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.toml")); err == nil {
		t.Fatal("a missing config file is not reported")
	}
	if c, err := LoadConfig(""); err != nil || c.Root != "/var/lib/xd" {
		t.Fatalf("no file: %+v %v", c, err)
	}
}

func TestResolveShim(t *testing.T) {
	if _, err := resolveShim("/nonexistent/xshim"); err == nil {
		t.Fatal("missing absolute shim accepted")
	}
	if _, err := resolveShim("no-such-shim-binary-xd"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing shim: %v", err)
	}
	if p, err := resolveShim("sh"); err != nil || !filepath.IsAbs(p) {
		t.Fatalf("sh from PATH: %q %v", p, err)
	}
}
