package runtime_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// nsOf returns the namespace links of a host pid.
func nsOf(t *testing.T, pid int) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, n := range []string{"cgroup", "ipc", "mnt", "net", "pid", "user", "uts"} {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, n))
		if err != nil {
			t.Fatal(err)
		}
		m[n] = l
	}
	return m
}

// TestNamespacesCreated: each namespace in the spec is new; the others are
// the host's.
func TestNamespacesCreated(t *testing.T) {
	t.Parallel()
	host := nsOf(t, os.Getpid())
	all := []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace,
		specs.IPCNamespace, specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace}
	short := map[specs.LinuxNamespaceType]string{
		specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
		specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user", specs.CgroupNamespace: "cgroup",
	}
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		for _, tc := range []struct {
			name string
			ns   []specs.LinuxNamespaceType
		}{
			{"default", []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace}},
			{"all", all},
			{"mount only", []specs.LinuxNamespaceType{specs.MountNamespace}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				opts := []testenv.BundleOption{testenv.WithSpec(func(s *specs.Spec) {
					s.Linux.Namespaces = nil
					for _, n := range tc.ns {
						if n != specs.UserNamespace {
							s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: n})
						}
					}
					if len(tc.ns) < 5 {
						// Without a net namespace, sysfs cannot be
						// mounted fresh; without pid, proc shows the
						// host: keep only what works.
						s.Mounts = s.Mounts[:1]
						s.Linux.MaskedPaths = nil
						s.Linux.ReadonlyPaths = nil
						s.Hostname = ""
					}
				})}
				want := map[string]bool{}
				for _, n := range tc.ns {
					want[short[n]] = true
					if n == specs.UserNamespace {
						opts = append(opts, testenv.WithUserNS(300000, 300000))
					}
				}
				b := testenv.NewBundle(t, opts...)
				c := rt.CreateStart(t, b)
				got := nsOf(t, c.Pid(t))
				for n, hostLink := range host {
					if want[n] && got[n] == hostLink {
						t.Errorf("%s: namespace %s not created (same as host %s)", tc.name, n, hostLink)
					}
					if !want[n] && got[n] != hostLink {
						t.Errorf("%s: namespace %s created but not asked for", tc.name, n)
					}
				}
				// The view from inside agrees with the host's.
				in := kv(execOK(t, rt, c.ID, nil, "/xtest", "ns"))
				for n := range host {
					if in[n] != got[n] {
						t.Errorf("inside ns %s = %s, host sees %s", n, in[n], got[n])
					}
				}
				if want["pid"] {
					if m := kv(execOK(t, rt, c.ID, nil, "/bin/sh", "-c", "echo pid1=$(cat /proc/1/comm)")); m["pid1"] != "xtest" {
						t.Errorf("pid 1 in the container is %q, want xtest", m["pid1"])
					}
				}
				if want["cgroup"] {
					cg := execOK(t, rt, c.ID, nil, "/xtest", "cgroup")
					for _, l := range strings.Split(strings.TrimSpace(cg), "\n") {
						if !strings.HasSuffix(l, ":/") {
							t.Errorf("cgroup ns: %q is not the root", l)
						}
					}
				}
			})
		}
	})
}

// TestUserNamespace: uid/gid mappings; root inside is the mapped uid
// outside; the rootfs owned by the mapped ids is root-owned inside.
func TestUserNamespace(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		const hostID = 400000
		b := testenv.NewBundle(t, testenv.WithUserNS(hostID, hostID+1000))
		c := rt.CreateStart(t, b)
		pid := c.Pid(t)
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, l := range strings.Split(string(status), "\n") {
			f := strings.Fields(l)
			if len(f) > 1 && f[0] == "Uid:" && f[1] != strconv.Itoa(hostID) {
				t.Errorf("host uid of init %s, want %d", l, hostID)
			}
			if len(f) > 1 && f[0] == "Gid:" && f[1] != strconv.Itoa(hostID+1000) {
				t.Errorf("host gid of init %s, want %d", l, hostID+1000)
			}
		}
		m := kv(execOK(t, rt, c.ID, nil, "/xtest", "id"))
		if m["uid"] != "0" || m["gid"] != "0" {
			t.Errorf("id inside: %v", m)
		}
		maps := execOK(t, rt, c.ID, nil, "/xtest", "uidmap")
		for _, want := range []string{fmt.Sprintf("uid_map 0 %d 65536", hostID), fmt.Sprintf("gid_map 0 %d 65536", hostID+1000)} {
			if !strings.Contains(maps, want) {
				t.Errorf("maps %q lack %q", maps, want)
			}
		}
		st := parseStat(t, execOK(t, rt, c.ID, nil, "/xtest", "stat", "/xtest"))
		if st.UID != 0 || st.GID != 0 {
			t.Errorf("rootfs file owned by %d:%d inside, want 0:0", st.UID, st.GID)
		}
		st = parseStat(t, execOK(t, rt, c.ID, nil, "/xtest", "stat", "/home/user"))
		if st.UID != 1000 || st.GID != 1000 {
			t.Errorf("/home/user owned by %d:%d inside, want 1000:1000", st.UID, st.GID)
		}
		// Full capabilities inside its own namespace only.
		if out := execOK(t, rt, c.ID, nil, "/xtest", "open-wr", "/proc/sys/kernel/hostname"); strings.TrimSpace(out) == "ok" {
			t.Errorf("userns root can write host sysctls")
		}
	})
}

// TestJoinNamespacePath: a namespace given by path is joined, not created.
func TestJoinNamespacePath(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		p := testenv.NewNetNS(t)
		ino, err := testenv.NsInode(p)
		if err != nil {
			t.Fatal(err)
		}
		b := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			for i, n := range s.Linux.Namespaces {
				if n.Type == specs.NetworkNamespace {
					s.Linux.Namespaces[i].Path = p
				}
			}
		}))
		c := rt.CreateStart(t, b)
		got := nsOf(t, c.Pid(t))["net"]
		if got != fmt.Sprintf("net:[%d]", ino) {
			t.Errorf("container net ns %s, want the test's net:[%d]", got, ino)
		}
		// Two containers joining the same path share it.
		b2 := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) { s.Linux.Namespaces = b.Spec.Linux.Namespaces }))
		c2 := rt.CreateStart(t, b2)
		if got2 := nsOf(t, c2.Pid(t))["net"]; got2 != got {
			t.Errorf("second container net ns %s, want %s", got2, got)
		}
		// Joining a namespace of another container through /proc.
		b3 := testenv.NewBundle(t, testenv.WithSpec(func(s *specs.Spec) {
			for i, n := range s.Linux.Namespaces {
				if n.Type == specs.UTSNamespace {
					s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/uts", c.Pid(t))
				}
			}
			s.Hostname = ""
		}))
		c3 := rt.CreateStart(t, b3)
		if a, b := nsOf(t, c.Pid(t))["uts"], nsOf(t, c3.Pid(t))["uts"]; a != b {
			t.Errorf("uts by /proc path: %s vs %s", a, b)
		}
		if h := execOK(t, rt, c3.ID, nil, "/xtest", "hostname"); h != "xtest\n" {
			t.Errorf("joined uts ns hostname %q", h)
		}
	})
}

// TestJoinPodNamespaces: a second container joins the pid, ipc, uts and
// net namespaces of a first one by /proc path, as the containers of a
// Kubernetes pod join its sandbox; with a user namespace, the user
// namespace too. Its processes see the first container's, it runs as root
// of the shared user namespace, and an exec into it lands in the same set.
func TestJoinPodNamespaces(t *testing.T) {
	t.Parallel()
	shared := []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.NetworkNamespace}
	for _, userns := range []bool{false, true} {
		name := "without user namespace"
		if userns {
			name = "with user namespace"
		}
		t.Run(name, func(t *testing.T) {
			testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
				const hostID = 410000
				var opts []testenv.BundleOption
				if userns {
					opts = append(opts, testenv.WithUserNS(hostID, hostID))
				}
				sandbox := rt.CreateStart(t, testenv.NewBundle(t, opts...))
				spid := sandbox.Pid(t)
				types := shared
				if userns {
					types = append(append([]specs.LinuxNamespaceType(nil), shared...), specs.UserNamespace)
				}
				app := testenv.NewBundle(t, append(opts, testenv.WithSpec(func(s *specs.Spec) {
					s.Hostname = ""
					for _, typ := range types {
						path := fmt.Sprintf("/proc/%d/ns/%s", spid, map[specs.LinuxNamespaceType]string{
							specs.PIDNamespace: "pid", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts",
							specs.NetworkNamespace: "net", specs.UserNamespace: "user"}[typ])
						found := false
						for i, n := range s.Linux.Namespaces {
							if n.Type == typ {
								s.Linux.Namespaces[i].Path = path
								found = true
							}
						}
						if !found {
							s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: typ, Path: path})
						}
					}
					// With a user namespace the mappings stay: they
					// are the sandbox's (runc 1.1 insists on them).
				}))...)
				c := rt.CreateStart(t, app)
				want, got := nsOf(t, spid), nsOf(t, c.Pid(t))
				for _, n := range []string{"pid", "ipc", "uts", "net"} {
					if got[n] != want[n] {
						t.Errorf("%s namespace %s, want the sandbox's %s", n, got[n], want[n])
					}
				}
				if userns && got["user"] != want["user"] {
					t.Errorf("user namespace %s, want the sandbox's %s", got["user"], want["user"])
				}
				if got["mnt"] == want["mnt"] {
					t.Errorf("the app shares the sandbox's mount namespace")
				}
				// The sandbox's init is pid 1 of the shared pid namespace.
				ps := execOK(t, rt, c.ID, nil, "/bin/ps", "-o", "pid,args")
				if !strings.Contains(ps, "1 /xtest sleep 3600") {
					t.Errorf("the app does not see the sandbox's pid 1:\n%s", ps)
				}
				id := kv(execOK(t, rt, c.ID, nil, "/xtest", "id"))
				if id["uid"] != "0" {
					t.Errorf("exec runs as uid %s inside, want 0", id["uid"])
				}
				if userns {
					status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.Pid(t)))
					if !strings.Contains(string(status), fmt.Sprintf("Uid:\t%d\t", hostID)) {
						t.Errorf("app init is not host uid %d:\n%s", hostID, status)
					}
				}
			})
		})
	}
}

// TestNoPidNamespace: without a pid namespace the container's init has an
// ordinary host pid and is not pid 1; kill --all and delete still find
// every process through the cgroup.
func TestNoPidNamespace(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t, testenv.WithArgs("/bin/sh", "-c", "/xtest sleep 3600 & exec /xtest sleep 3600"), testenv.WithSpec(func(s *specs.Spec) {
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.PIDNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns
		}))
		c := rt.CreateStart(t, b)
		pid := c.Pid(t)
		out := kv(execOK(t, rt, c.ID, nil, "/xtest", "pid"))
		if out["pid"] == "1" {
			t.Errorf("exec'd process is pid 1 without a pid namespace: %v", out)
		}
		if nsOf(t, pid)["pid"] != nsOf(t, os.Getpid())["pid"] {
			t.Errorf("init is not in the host pid namespace")
		}
		var pids []int
		if err := json.Unmarshal([]byte(rt.MustRun(t, "ps", "--format", "json", c.ID).Stdout), &pids); err != nil || len(pids) < 2 {
			t.Fatalf("ps: %v %v", pids, err)
		}
		rt.MustRun(t, "delete", "--force", c.ID)
		for _, p := range pids {
			if !testenv.WaitProcGone(p, shortWait) {
				t.Errorf("process %d survived delete --force", p)
			}
		}
	})
}

// TestTimeNamespace: a new time namespace with linux.timeOffsets: the init
// and every exec'd process share it, its offsets are the spec's, and the
// boottime offset shows in /proc/uptime.
func TestTimeNamespace(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		rt.SkipIf(t, "runc", "runc 1.1.5 predates time namespaces (runc 1.2)")
		const boottime = 100000 // seconds: far above this host's uptime
		for _, userns := range []bool{false, true} {
			opts := []testenv.BundleOption{testenv.WithSpec(func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
				s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 86400}, "boottime": {Secs: boottime}}
			})}
			if userns {
				opts = append(opts, testenv.WithUserNS(100000, 100000))
			}
			c := rt.CreateStart(t, testenv.NewBundle(t, opts...))
			offsets := execOK(t, rt, c.ID, nil, "/xtest", "cat", "/proc/self/timens_offsets")
			if !strings.Contains(offsets, "monotonic") || !strings.Contains(offsets, "86400") || !strings.Contains(offsets, fmt.Sprint(boottime)) {
				t.Errorf("userns=%v: timens_offsets %q", userns, offsets)
			}
			up := strings.Fields(execOK(t, rt, c.ID, nil, "/xtest", "cat", "/proc/uptime"))
			if secs, err := strconv.ParseFloat(up[0], 64); err != nil || secs < boottime {
				t.Errorf("userns=%v: container uptime %v, want above the boottime offset %d", userns, up, boottime)
			}
			initNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/time", c.Pid(t)))
			if err != nil {
				t.Fatal(err)
			}
			self, _ := os.Readlink("/proc/self/ns/time")
			execNS := kv(execOK(t, rt, c.ID, nil, "/xtest", "ns"))["time"]
			if initNS == self || execNS != initNS {
				t.Errorf("userns=%v: time namespaces: host %s, init %s, exec %s", userns, self, initNS, execNS)
			}
		}
	})
}
