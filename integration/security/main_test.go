package security_test

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/xstack/xstack/integration/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, printVerdicts) }

// reference is what Debian 12's runc 1.1.5+ds1-1+deb12u1 is known to do
// against a flaw, from its changelog and upstream's advisories.
type reference int

const (
	// refFixed: runc 1.1.5 was never affected or carries the fix; the
	// probe must find nothing in it.
	refFixed reference = iota
	// refVulnerable: runc 1.1.5 has no fix; the probe must find the flaw
	// in it, or the test is one that cannot fail.
	refVulnerable
	// refRace: runc 1.1.5 has no fix, but the flaw is a race that a
	// bounded run may or may not win; what it found is reported only.
	refRace
)

// probe sets up one exploit's precondition against rt and returns what it
// found unsafe, one line per finding; none means the runtime held. Setup
// failures are test failures (t.Fatal), not findings.
type probe func(t *testing.T, rt *testenv.Runtime) []string

var (
	verdictMu sync.Mutex
	verdicts  = map[string]map[string]string{} // CVE -> runtime -> verdict
)

func record(cve, runtime, verdict string) {
	verdictMu.Lock()
	defer verdictMu.Unlock()
	if verdicts[cve] == nil {
		verdicts[cve] = map[string]string{}
	}
	verdicts[cve][runtime] = verdict
}

// printVerdicts prints which runtime fell for which flaw: the table the
// closing note of the CVE suite quotes.
func printVerdicts() {
	verdictMu.Lock()
	defer verdictMu.Unlock()
	if len(verdicts) == 0 {
		return
	}
	var cves []string
	for c := range verdicts {
		cves = append(cves, c)
	}
	sort.Strings(cves)
	fmt.Println("CVE regression suite verdicts:")
	for _, c := range cves {
		var parts []string
		for _, rt := range testenv.Runtimes() {
			if v, ok := verdicts[c][rt]; ok {
				parts = append(parts, rt+": "+v)
			}
		}
		fmt.Printf("  %-44s %s\n", c, strings.Join(parts, "; "))
	}
}

var (
	runcVersionOnce sync.Once
	runcIs115       bool
)

// isRunc115 reports whether rt is the runc 1.1.5 the references describe.
func isRunc115(rt *testenv.Runtime) bool {
	if !rt.Is("runc") {
		return false
	}
	runcVersionOnce.Do(func() {
		out, err := exec.Command(rt.Path, "--version").Output()
		runcIs115 = err == nil && strings.HasPrefix(string(out), "runc version 1.1.5")
	})
	return runcIs115
}

// checkCVE runs p against every runtime. A runtime other than runc 1.1.5
// must come out clean; runc 1.1.5 must do what ref says.
func checkCVE(t *testing.T, cve string, ref reference, p probe) {
	t.Helper()
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		findings := p(t, rt)
		verdict := "safe"
		if len(findings) > 0 {
			verdict = "VULNERABLE"
		}
		record(cve, rt.Name, verdict)
		switch {
		case !isRunc115(rt):
			for _, f := range findings {
				t.Errorf("%s: %s", cve, f)
			}
		case ref == refFixed:
			for _, f := range findings {
				t.Errorf("%s: runc 1.1.5 carries the fix, yet: %s", cve, f)
			}
		case ref == refVulnerable && len(findings) == 0:
			t.Errorf("%s: runc 1.1.5 has no fix, but the probe found nothing: this test cannot fail", cve)
		default:
			for _, f := range findings {
				t.Logf("%s: runc 1.1.5 (no fix), as expected: %s", cve, f)
			}
		}
	})
}

// hostMarker creates a host file standing for a host secret, with mode
// 0600, and returns its path.
func hostMarker(t *testing.T) string {
	t.Helper()
	p := testenv.TempDir(t, 0o700) + "/marker"
	if err := os.WriteFile(p, []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
