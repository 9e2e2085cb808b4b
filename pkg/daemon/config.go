package daemon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/xstack/xstack/pkg/units"
)

// Runtime names. The shim of RuntimeXshim is xshim, which xd launches
// itself instead of running its start action.
const (
	RuntimeXshim  = "io.xstack.xshim.v1"
	RuntimeRuncV2 = "io.containerd.runc.v2"
)

// Config is xd's configuration (TOML). Every key has a default.
type Config struct {
	Root     string `toml:"root"`
	State    string `toml:"state"`
	Address  string `toml:"address"`
	LogLevel string `toml:"log_level"`
	// DefaultRuntime is used for containers created without one.
	DefaultRuntime string                   `toml:"default_runtime"`
	Runtimes       map[string]RuntimeConfig `toml:"runtimes"`
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout Duration `toml:"stop_timeout"`
	// ShimDebug starts shims with -debug.
	ShimDebug bool `toml:"shim_debug"`
	// CgroupParent holds the containers' cgroups: <parent>/<namespace>/<id>.
	CgroupParent string `toml:"cgroup_parent"`
	// LogMaxSize is how large a container's log file grows before it is
	// rotated ("20MiB"); 0 keeps it whole.
	LogMaxSize ByteSize `toml:"log_max_size"`
	// LogMaxFiles is how many files of a container's log are kept, the
	// one being written included.
	LogMaxFiles int `toml:"log_max_files"`
}

// RuntimeConfig names a shim binary and the OCI runtime it runs.
type RuntimeConfig struct {
	// Shim is the shim binary (absolute path or a name in PATH).
	Shim string `toml:"shim"`
	// Binary is the OCI runtime the shim runs; empty = the shim's default
	// (xrunc beside xshim; runc for containerd-shim-runc-v2).
	Binary string `toml:"binary"`
}

// Duration is a time.Duration written as "10s" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// ByteSize is a size written as "20MiB" or "512k" in TOML.
type ByteSize int64

// UnmarshalText parses a size as docker's flags take it.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := units.ParseSize(string(text))
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// DefaultConfig is xd's configuration without a file.
func DefaultConfig() Config {
	return Config{
		Root:           "/var/lib/xd",
		State:          "/run/xd",
		Address:        "/run/xd/xd.sock",
		LogLevel:       "info",
		DefaultRuntime: RuntimeXshim,
		Runtimes: map[string]RuntimeConfig{
			RuntimeXshim:  {Shim: "xshim"},
			RuntimeRuncV2: {Shim: "containerd-shim-runc-v2"},
		},
		StopTimeout:  Duration{10 * time.Second},
		CgroupParent: "/xd",
		// As docker's local log driver: at most 100 MiB a container.
		LogMaxSize:  20 << 20,
		LogMaxFiles: 5,
	}
}

// LoadConfig reads path over the defaults; keys the file omits keep them,
// unknown keys are an error.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if path == "" {
		return cfg, nil
	}
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		return cfg, fmt.Errorf("config %s: unknown key %q", path, undecoded[0].String())
	}
	if cfg.LogMaxFiles < 1 {
		return cfg, fmt.Errorf("config %s: log_max_files %d: a log keeps at least the file being written", path, cfg.LogMaxFiles)
	}
	if !filepath.IsAbs(cfg.CgroupParent) || filepath.Clean(cfg.CgroupParent) != cfg.CgroupParent {
		return cfg, fmt.Errorf("config %s: cgroup_parent %q must be an absolute cgroup path", path, cfg.CgroupParent)
	}
	defaults := DefaultConfig()
	for name, rt := range defaults.Runtimes {
		if _, ok := cfg.Runtimes[name]; !ok {
			cfg.Runtimes[name] = rt
		}
	}
	return cfg, nil
}

// resolveShim finds a runtime's shim binary: an absolute path as is, a
// name beside xd's own binary first (an installed or built set stays
// together), then in PATH.
func resolveShim(name string) (string, error) {
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("shim %s: %w", name, err)
		}
		return name, nil
	}
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(beside); err == nil {
			return beside, nil
		}
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("shim %s not found beside xd or in PATH", name)
	}
	return filepath.Abs(path)
}
