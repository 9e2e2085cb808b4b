package security_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestInheritableCaps (CVE-2022-29162, crun's CVE-2022-27650): with no
// inheritable or ambient capabilities in the spec, neither the init nor an
// `exec --cap` process may get any, or a file with inheritable file caps
// would gain privileges on execve.
func TestInheritableCaps(t *testing.T) {
	checkCVE(t, "CVE-2022-29162 inheritable capabilities", refFixed, func(t *testing.T, rt *testenv.Runtime) []string {
		var findings []string
		check := func(what, out string) {
			caps := testenv.ParseKV(out)
			for _, set := range []string{"CapInh", "CapAmb"} {
				if v, err := strconv.ParseUint(caps[set], 16, 64); err != nil || v != 0 {
					findings = append(findings, fmt.Sprintf("%s: %s=%q, want 0", what, set, caps[set]))
				}
			}
		}
		c := rt.CreateStart(t, testenv.NewBundle(t))
		check("init", xtestExec(t, rt, c.ID, "caps"))
		r := rt.ExecIn(t, c.ID, []string{"--cap", "CAP_NET_RAW"}, "/xtest", "caps")
		if r.Code != 0 {
			t.Fatalf("%s\nlast log error: %s", r, rt.LastError(t))
		}
		check("exec --cap CAP_NET_RAW", r.Stdout)
		return findings
	})
}

// TestSupplementaryGroups (CVE-2023-25173): the process gets exactly its
// gid and additionalGids, never the runtime's own groups, so a file that
// denies its group (0604 root:1000) stays unreadable to a member.
func TestSupplementaryGroups(t *testing.T) {
	checkCVE(t, "CVE-2023-25173 supplementary groups", refFixed, func(t *testing.T, rt *testenv.Runtime) []string {
		b := testenv.NewBundle(t, testenv.WithRootfs(func(root string) {
			p := filepath.Join(root, "etc/denied")
			mustDo(t, os.WriteFile(p, []byte("no\n"), 0o604))
			mustDo(t, os.Chown(p, 0, 1000))
			mustDo(t, os.Chmod(p, 0o604))
		}), testenv.WithSpec(func(s *specs.Spec) {
			s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1001}}
		}))
		c := rt.CreateStart(t, b)
		var findings []string
		id := testenv.ParseKV(xtestExec(t, rt, c.ID, "id"))
		if id["gid"] != "1000" || id["groups"] != "1000,1001" && id["groups"] != "1001" {
			findings = append(findings, fmt.Sprintf("process has gid %s groups %q, want gid 1000 and groups 1001 (and 1000)", id["gid"], id["groups"]))
		}
		if out := xtestExec(t, rt, c.ID, "open-rd", "/etc/denied"); out == "ok" {
			findings = append(findings, "a 0604 root:1000 file was readable by a member of group 1000")
		}
		return findings
	})
}

// TestHugeUIDs (CVE-2024-40635, CVE-2026-46680, crun's CVE-2026-30892):
// numeric users that do not fit, or that wrap to 0 when truncated to 32
// bits, must be refused, never run as root; a numeric user is never looked
// up as a name in the image's /etc/passwd (where "4294967296" maps to 0).
func TestHugeUIDs(t *testing.T) {
	checkCVE(t, "CVE-2024-40635 class: huge or negative uids", refVulnerable, func(t *testing.T, rt *testenv.Runtime) []string {
		b := testenv.NewBundle(t, testenv.WithRootfs(func(root string) {
			f, err := os.OpenFile(filepath.Join(root, "etc/passwd"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
			mustDo(t, err)
			defer f.Close()
			for _, name := range []string{"4294967296", "99999999999", "2147483648"} {
				fmt.Fprintf(f, "%s:x:0:0:wraps to root:/:/bin/sh\n", name)
			}
		}))
		c := rt.CreateStart(t, b)
		var findings []string
		for _, u := range []string{
			"4294967296", "4294967296:4294967296", "99999999999", "-1", "-1:-1",
			"4294967295", "2147483648:2147483648", "18446744073709551616", "1000:-1",
		} {
			r := rt.ExecIn(t, c.ID, []string{"--user", u}, "/xtest", "id")
			if r.Code != 0 {
				continue // refused
			}
			id := testenv.ParseKV(r.Stdout)
			want, _ := strconv.ParseUint(strings.SplitN(u, ":", 2)[0], 10, 32)
			if id["uid"] == "0" || id["uid"] != strconv.FormatUint(want, 10) {
				findings = append(findings, fmt.Sprintf("exec --user %s ran as uid=%s gid=%s", u, id["uid"], id["gid"]))
			}
		}
		// The same numbers in config.json cannot even be decoded.
		for _, uid := range []string{"4294967296", "-1"} {
			bad := testenv.NewBundle(t, testenv.WithArgs("/xtest", "id"))
			raw, err := os.ReadFile(filepath.Join(bad.Dir, "config.json"))
			mustDo(t, err)
			bad.WriteConfig(t, []byte(strings.Replace(string(raw), `"uid": 0`, `"uid": `+uid, 1)))
			r := rt.Run(t, "run", "--bundle", bad.Dir, bad.ID)
			if r.Code == 0 {
				findings = append(findings, fmt.Sprintf("config.json user.uid %s was accepted: %s", uid, strings.TrimSpace(r.Stdout)))
			}
		}
		return findings
	})
}

// TestPtraceDuringExec (CVE-2016-9962): while `exec` joins the container,
// the runtime's process in it must not be ptrace-able nor have its fds
// readable by a container process: it is non-dumpable until it execs the
// user's program. A watcher in the container tries both on every new pid
// while the host runs exec many times.
func TestPtraceDuringExec(t *testing.T) {
	checkCVE(t, "CVE-2016-9962 ptrace of the runtime during exec", refFixed, func(t *testing.T, rt *testenv.Runtime) []string {
		c := rt.CreateStart(t, testenv.NewBundle(t, testenv.WithArgs("/xtest", "ptrace-watch", "120")))
		waitOutput(t, c, "ready")
		start := time.Now()
		for i := 0; i < 40; i++ {
			rt.ExecIn(t, c.ID, nil, "/xtest", "exit", "0")
		}
		t.Logf("40 execs in %v", time.Since(start))
		rt.MustRun(t, "kill", c.ID, "KILL")
		rt.WaitStatus(t, c.ID, "stopped", 10*time.Second)
		var findings []string
		out := c.Output(t)
		// A watcher that saw none of the execs proves nothing.
		if seen := strings.Count(out, "new "); seen < 10 {
			t.Fatalf("the watcher saw only %d new processes during 40 execs", seen)
		} else {
			t.Logf("the watcher saw %d new processes", seen)
		}
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) < 3 || f[0] != "attach" && f[0] != "fd" {
				continue
			}
			// The user's program, once exec'd, is the container's own.
			if f[2] != "/xtest" {
				findings = append(findings, "the watcher got at the runtime: "+l)
			}
		}
		return findings
	})
}

func waitOutput(t *testing.T, c *testenv.Container, want string) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(c.Output(t), want) {
			return
		}
	}
	t.Fatalf("container never printed %q: %q", want, c.Output(t))
}
