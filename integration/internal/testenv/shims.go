package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ReferenceShim is the name of the reference containerd shim v2.
const ReferenceShim = "containerd-shim-runc-v2"

// Shims returns the shim names to test, from $XSTACK_SHIMS (default
// "containerd-shim-runc-v2,xshim").
func Shims() []string {
	return envList("XSTACK_SHIMS", ReferenceShim+",xshim")
}

// ShimRuntimes returns the OCI runtimes the shims drive, from
// $XSTACK_SHIM_RUNTIMES (default "runc,xrunc").
func ShimRuntimes() []string {
	return envList("XSTACK_SHIM_RUNTIMES", "runc,xrunc")
}

func envList(name, def string) []string {
	v := os.Getenv(name)
	if strings.TrimSpace(v) == "" {
		v = def
	}
	var out []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// ResolveShim finds the binary of a shim name: "xshim" is
// $XSTACK_BINDIR/xshim (an error saying how to build it when missing), an
// absolute path is used as is, any other name is looked up in $PATH.
func ResolveShim(name string) (string, error) {
	switch {
	case name == "xshim":
		p := filepath.Join(BinDir(), "xshim")
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			return "", fmt.Errorf("bin/xshim not built: run make build (looked for %s)", p)
		}
		return p, nil
	case filepath.IsAbs(name):
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("shim %s: %w", name, err)
		}
		return name, nil
	default:
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("shim %q not found in PATH: %w", name, err)
		}
		return filepath.Abs(p)
	}
}

// ShimCombo is one shim driving one OCI runtime.
type ShimCombo struct {
	ShimName    string // as given in XSTACK_SHIMS
	Shim        string // absolute path of the shim binary
	RuntimeName string // as given in XSTACK_SHIM_RUNTIMES
	Runtime     string // absolute path of the OCI runtime binary
}

// IsReference reports whether the shim is containerd-shim-runc-v2.
func (c ShimCombo) IsReference() bool {
	return filepath.Base(c.ShimName) == ReferenceShim
}

// SkipForShim skips the test for the shim called name, printing why. Use it
// only for documented limitations of a reference shim.
func (c ShimCombo) SkipForShim(t testing.TB, name, reason string) {
	t.Helper()
	if filepath.Base(c.ShimName) == name {
		t.Skipf("skipped for %s: %s", name, reason)
	}
}

// ForEachShimCombo runs fn once per shim in XSTACK_SHIMS and runtime in
// XSTACK_SHIM_RUNTIMES, as subtests named <shim>/<runtime>. A shim or
// runtime that cannot be found fails its subtest (never a skip).
func ForEachShimCombo(t *testing.T, fn func(t *testing.T, c ShimCombo)) {
	t.Helper()
	RequireRoot(t)
	for _, sn := range Shims() {
		t.Run(filepath.Base(sn), func(t *testing.T) {
			shim, err := ResolveShim(sn)
			if err != nil {
				t.Fatal(err)
			}
			for _, rn := range ShimRuntimes() {
				t.Run(filepath.Base(rn), func(t *testing.T) {
					rt, err := ResolveRuntime(rn)
					if err != nil {
						t.Fatal(err)
					}
					fn(t, ShimCombo{ShimName: sn, Shim: shim, RuntimeName: rn, Runtime: rt})
				})
			}
		})
	}
}
