package runtime_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/xstack/xstack/integration/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// runOK runs the bundle in the foreground with `run` and returns the
// container's stdout; it fails the test unless the exit code is 0.
func runOK(t *testing.T, rt *testenv.Runtime, b *testenv.Bundle, extra ...string) string {
	t.Helper()
	r := runFG(t, rt, b, extra...)
	if r.Code != 0 {
		t.Fatalf("%s\nlast log error: %s", r, rt.LastError(t))
	}
	return r.Stdout
}

// runFG runs the bundle in the foreground with `run`.
func runFG(t *testing.T, rt *testenv.Runtime, b *testenv.Bundle, extra ...string) testenv.Result {
	t.Helper()
	b.Save(t)
	args := append([]string{"run", "--bundle", b.Dir}, extra...)
	return rt.Run(t, append(args, b.ID)...)
}

// xtestRun makes a bundle running `/xtest args...` (after the options) and
// returns its output.
func xtestRun(t *testing.T, rt *testenv.Runtime, args []string, opts ...testenv.BundleOption) string {
	t.Helper()
	b := testenv.NewBundle(t, append([]testenv.BundleOption{testenv.WithArgs(append([]string{"/xtest"}, args...)...)}, opts...)...)
	return runOK(t, rt, b)
}

// kv parses "key=value" lines.
func kv(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// statOut is /xtest stat's JSON.
type statOut struct {
	Type    string `json:"type"`
	Mode    string `json:"mode"`
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	Rdev    string `json:"rdev"`
	Target  string `json:"target"`
	FSMagic string `json:"fsmagic"`
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
}

func parseStat(t *testing.T, out string) statOut {
	t.Helper()
	var s statOut
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &s); err != nil {
		t.Fatalf("bad stat output %q: %v", out, err)
	}
	return s
}

// execIn runs `exec [flags...] id cmd...`.
func execIn(t *testing.T, rt *testenv.Runtime, id string, flags []string, cmd ...string) testenv.Result {
	t.Helper()
	args := append(append([]string{"exec"}, flags...), id)
	return rt.Run(t, append(args, cmd...)...)
}

// execOK is execIn that fails the test unless the exit code is 0, and
// returns stdout.
func execOK(t *testing.T, rt *testenv.Runtime, id string, flags []string, cmd ...string) string {
	t.Helper()
	r := execIn(t, rt, id, flags, cmd...)
	if r.Code != 0 {
		t.Fatalf("%s\nlast log error: %s", r, rt.LastError(t))
	}
	return r.Stdout
}

const (
	shortWait = 10 * time.Second
)

// Filesystem magic numbers (statfs f_type) as /xtest stat prints them.
const (
	magicTmpfs  = "0x1021994"
	magicProc   = "0x9fa0"
	magicSysfs  = "0x62656572"
	magicDevpts = "0x1cd1"
	magicMqueue = "0x19800202"
	magicCgroup = "0x27e0eb"
)
