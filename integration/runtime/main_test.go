package runtime_test

import (
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
	return rt.RunBundle(t, b, extra...)
}

// xtestRun makes a bundle running `/xtest args...` (after the options) and
// returns its output.
func xtestRun(t *testing.T, rt *testenv.Runtime, args []string, opts ...testenv.BundleOption) string {
	t.Helper()
	b := testenv.NewBundle(t, append([]testenv.BundleOption{testenv.WithArgs(append([]string{"/xtest"}, args...)...)}, opts...)...)
	return runOK(t, rt, b)
}

func kv(out string) map[string]string { return testenv.ParseKV(out) }

type statOut = testenv.XtestStat

func parseStat(t *testing.T, out string) statOut {
	t.Helper()
	return testenv.ParseXtestStat(t, out)
}

// execIn runs `exec [flags...] id cmd...`.
func execIn(t *testing.T, rt *testenv.Runtime, id string, flags []string, cmd ...string) testenv.Result {
	t.Helper()
	return rt.ExecIn(t, id, flags, cmd...)
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
