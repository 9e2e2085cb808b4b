package shim_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestStartProtocol: `start` prints the address and nothing else (a bare
// unix:// address, or containerd 1.7's JSON bootstrap), returns while the
// shim keeps running (nothing holds its stdout), writes the same address
// to the bundle's `address` file, and the shim is a daemon in its own
// process group that is no child of the caller.
func TestStartProtocol(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		b := e.newBundle(t, newID("start"))
		s := e.startShim(t, b)
		out := strings.TrimSpace(s.start.Output)
		t.Logf("start printed %q in %v", s.start.Output, s.start.Elapsed)
		if !strings.HasPrefix(out, "{") && out != s.addr {
			t.Errorf("start printed %q, want only the address", s.start.Output)
		}
		if strings.Count(s.start.Output, "\n") > 1 {
			t.Errorf("start printed several lines: %q", s.start.Output)
		}
		a, err := os.ReadFile(filepath.Join(b.Dir, "address"))
		if err != nil {
			t.Fatalf("address file: %v", err)
		}
		if strings.TrimSpace(string(a)) != s.addr {
			t.Errorf("address file %q, start printed %q", a, s.addr)
		}
		if pp := procPPid(s.pid); pp == os.Getpid() {
			t.Errorf("the shim %d is a child of the caller", s.pid)
		}
		pgid, err := syscall.Getpgid(s.pid)
		if err != nil {
			t.Fatal(err)
		}
		if pgid == syscall.Getpgrp() {
			t.Errorf("the shim is in the caller's process group %d", pgid)
		}
		for _, fd := range []string{"0", "1", "2"} {
			l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", s.pid, fd))
			t.Logf("shim fd %s -> %s", fd, l)
		}
	})
}

// TestSocketSecurity (CVE-2020-15257): the shim listens on a path socket,
// never an abstract one (those are reachable from any container sharing
// the host network namespace); the socket is 0600 in a root-owned
// directory closed to group and others; another uid cannot use it.
func TestSocketSecurity(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		b := e.newBundle(t, newID("sec"))
		s := e.startShim(t, b)
		s.run(t, nil)
		path := socketPath(s.addr)
		if !filepath.IsAbs(path) {
			t.Fatalf("address %q is not a path socket", s.addr)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
			t.Errorf("%s is not a socket (mode %o)", path, st.Mode)
		}
		if perm := st.Mode & 0o777; perm != 0o600 || st.Uid != 0 {
			t.Errorf("socket %s: mode %o uid %d, want 0600 root", path, perm, st.Uid)
		}
		dir := filepath.Dir(path)
		if err := syscall.Stat(dir, &st); err != nil {
			t.Fatal(err)
		}
		// 0700 by design; containerd-shim-runc-v2 makes it 0600.
		t.Logf("socket dir %s: mode %o uid %d", dir, st.Mode&0o7777, st.Uid)
		if st.Mode&0o077 != 0 || st.Uid != 0 {
			t.Errorf("socket dir %s: mode %o uid %d, want root-owned and closed to group and others (0700)", dir, st.Mode&0o7777, st.Uid)
		}

		// No abstract socket belongs to the shim.
		inodes := socketInodes(t, s.pid)
		abstract, paths := unixSockets(t)
		for ino := range inodes {
			if name, ok := abstract[ino]; ok {
				t.Errorf("the shim holds abstract socket %q", name)
			}
		}
		found := false
		for ino := range inodes {
			if paths[ino] == path {
				found = true
			}
		}
		if !found {
			t.Errorf("the shim holds no socket bound to %s", path)
		}
		for ino, name := range abstract {
			if strings.Contains(name, b.ID) || strings.Contains(name, "containerd") || strings.Contains(name, filepath.Base(path)) {
				t.Errorf("abstract socket %q (inode %s) looks like a shim's", name, ino)
			}
		}

		// Another user is refused (the directory alone stops it; the
		// server also checks the peer's credentials).
		out := e.dialAs(t, s.addr, 65534, 65534)
		t.Logf("as uid 65534: %s", out)
		if !strings.HasPrefix(out, "refused") {
			t.Errorf("uid 65534 could use the shim: %s", out)
		}
		// uid 0 with another gid passes the directory and socket modes;
		// only the ttrpc same-user handshake (uid and gid) refuses it.
		out = e.dialAs(t, s.addr, 0, 65534)
		t.Logf("as uid 0 gid 65534: %s", out)
		if !strings.HasPrefix(out, "refused") {
			t.Errorf("uid 0 gid 65534 could use the shim: %s", out)
		}
	})
}

// TestProcessTree (ps -ef --forest): the shim's command line names the
// container id, and the container's init is the shim's child.
func TestProcessTree(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		b := e.newBundle(t, newID("tree"))
		s := e.startShim(t, b)
		pid := int(s.run(t, nil))
		s.exec(t, "e1", nil, false, "/bin/sleep", "3600")
		epid := int(s.startTask(t, "e1"))
		out, err := exec.Command("ps", "-ef", "--forest").Output()
		if err != nil {
			t.Fatalf("ps -ef --forest: %v", err)
		}
		type row struct {
			ppid int
			cmd  string
		}
		rows := map[int]row{}
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) < 8 {
				continue
			}
			p, err1 := strconv.Atoi(f[1])
			pp, err2 := strconv.Atoi(f[2])
			if err1 != nil || err2 != nil {
				continue
			}
			rows[p] = row{pp, strings.Join(f[7:], " ")}
			if p == s.pid || pp == s.pid || p == pid || p == epid {
				lines = append(lines, l)
			}
		}
		t.Logf("ps -ef --forest:\n%s", strings.Join(lines, "\n"))
		shimRow, ok := rows[s.pid]
		if !ok {
			t.Fatalf("shim %d not in ps output", s.pid)
		}
		if !strings.Contains(shimRow.cmd, b.ID) {
			t.Errorf("shim command line %q does not name the container %s", shimRow.cmd, b.ID)
		}
		if r := rows[pid]; r.ppid != s.pid {
			t.Errorf("init %d has ppid %d, want the shim %d", pid, r.ppid, s.pid)
		}
		if r := rows[epid]; r.ppid != s.pid {
			t.Errorf("exec %d has ppid %d, want the shim %d", epid, r.ppid, s.pid)
		}
	})
}

// socketInodes lists the socket inodes among the fds of pid.
func socketInodes(t *testing.T, pid int) map[string]bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	return out
}

// unixSockets reads /proc/net/unix: inode -> name, for abstract ("@...")
// and path sockets.
func unixSockets(t *testing.T) (abstract, paths map[string]string) {
	t.Helper()
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	abstract, paths = map[string]string{}, map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode [Path]
		fl := strings.Fields(sc.Text())
		if len(fl) < 8 {
			continue
		}
		ino, name := fl[6], fl[7]
		if strings.HasPrefix(name, "@") {
			abstract[ino] = name
		} else {
			paths[ino] = name
		}
	}
	return abstract, paths
}

// TestShimEnvironment: xshim's server runs with one P (GOMAXPROCS=1,
// whatever the daemon gave: here 2, as containerd sets it), and keeps that
// to itself: the runtime it runs gets the daemon's environment without it.
func TestShimEnvironment(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		if e.c.IsReference() {
			t.Skip("skipped for the reference shim: the one-P server is xshim's")
		}
		dir := t.TempDir()
		envFile := filepath.Join(dir, "runtime-env")
		wrapper := filepath.Join(dir, "runtime")
		script := fmt.Sprintf("#!/bin/sh\nenv >> %s\nexec %s \"$@\"\n", envFile, e.c.Runtime)
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		b := e.newBundle(t, newID("env"), withArgs("/bin/true"))
		o := e.opts()
		o.BinaryName = wrapper
		s, err := e.tryStartShim(t, b, o)
		if err != nil {
			t.Fatal(err)
		}
		s.create(t, nil, false)
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", s.pid))
		if err != nil {
			t.Fatal(err)
		}
		shimEnv := strings.Split(string(environ), "\x00")
		if !slices.Contains(shimEnv, "GOMAXPROCS=1") || slices.Contains(shimEnv, "GOMAXPROCS=2") {
			t.Errorf("the shim started with GOMAXPROCS other than 1: %q", shimEnv)
		}
		if !slices.Contains(shimEnv, "TTRPC_ADDRESS="+e.ttrpcAddr) {
			t.Errorf("the shim lost the daemon's environment: %q", shimEnv)
		}
		runtimeEnv, err := os.ReadFile(envFile)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(runtimeEnv), "\n")
		if !slices.Contains(lines, "TTRPC_ADDRESS="+e.ttrpcAddr) || slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "GOMAXPROCS=") }) {
			t.Errorf("the runtime's environment is not the daemon's without GOMAXPROCS:\n%s", runtimeEnv)
		}
	})
}
