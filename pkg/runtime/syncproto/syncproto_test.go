package syncproto

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/cgroups"
)

// pair returns both ends as *Conn; the child's *os.File is turned into a
// Conn through NewConn as the init does.
func pair(t *testing.T) (parent, child *Conn) {
	t.Helper()
	p, c, err := NewPair()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.FcntlInt(c.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	child = NewConn(fd)
	t.Cleanup(func() {
		p.Close()
		child.Close()
	})
	return p, child
}

func sampleConfig() *InitConfig {
	oom := 100
	return &InitConfig{
		Mode: ModeCreate,
		ID:   "ctr-1",
		Container: &Container{
			OCIVersion:          "1.0.2",
			ReadonlyRoot:        true,
			Hostname:            "h",
			Annotations:         map[string]string{"a": "b"},
			Mounts:              []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
			StartContainerHooks: []specs.Hook{{Path: "/bin/true"}},
		},
		CreateHooks:  true,
		Process:      &specs.Process{Args: []string{"sh", "-c", "echo hi"}, Cwd: "/", Env: []string{"A=1"}, OOMScoreAdj: &oom},
		Bundle:       "/b",
		Rootfs:       "/b/rootfs",
		NoPivot:      true,
		NoNewKeyring: true,
		ConsoleFd:    -1,
		FifoFd:       4,
		PreserveFds:  2,
		Cgroups:      []cgroups.Hierarchy{{MountPoint: "/sys/fs/cgroup/memory", Dir: "/sys/fs/cgroup/memory/x"}, {MountPoint: "/sys/fs/cgroup/unified", Dir: "/sys/fs/cgroup/unified/x", Unified: true}},
		NewCgroupNS:  true,
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConfigRoundTrip: SendConfig/ExpectConfig carry the whole config.
func TestConfigRoundTrip(t *testing.T) {
	p, c := pair(t)
	want := sampleConfig()
	if err := p.SendConfig(want); err != nil {
		t.Fatal(err)
	}
	got, fds, err := c.ExpectConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(fds) != 0 {
		t.Fatalf("got fds %v without sending any", fds)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestNewPairCloseOnExec(t *testing.T) {
	p, c, err := NewPair()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer c.Close()
	for name, fd := range map[string]int{"parent": p.Fd(), "child": int(c.Fd())} {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			t.Fatal(err)
		}
		if flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s end is not close-on-exec", name)
		}
		typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil || typ != unix.SOCK_SEQPACKET {
			t.Errorf("%s end type = %d, %v; want SOCK_SEQPACKET", name, typ, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    Message
	}{
		{"pid", Message{Type: TypePid, Pid: 4242}},
		{"mapped", Message{Type: TypeMapped}},
		{"config", Message{Type: TypeConfig, Config: mustJSON(t, sampleConfig())}},
		{"config exec", Message{Type: TypeConfig, Config: mustJSON(t, &InitConfig{Mode: ModeExec, ID: "c", Process: &specs.Process{Args: []string{"ls"}, Cwd: "/"}, ConsoleFd: 3, FifoFd: -1})}},
		{"booted", Message{Type: TypeBooted}},
		{"hooks", Message{Type: TypeHooks}},
		{"hooks-done", Message{Type: TypeHooksDone}},
		{"ready", Message{Type: TypeReady}},
		{"run", Message{Type: TypeRun}},
		{"done", Message{Type: TypeDone}},
		{"error", Message{Type: TypeError, Error: "mount /proc: permission denied\n\"quoted\" ü"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := pair(t)
			for _, dir := range []struct {
				name     string
				from, to *Conn
			}{{"parent to child", p, c}, {"child to parent", c, p}} {
				m := tt.m
				if err := dir.from.Send(&m); err != nil {
					t.Fatalf("%s: Send: %v", dir.name, err)
				}
				got, fds, err := dir.to.Recv()
				if err != nil {
					t.Fatalf("%s: Recv: %v", dir.name, err)
				}
				if len(fds) != 0 {
					t.Errorf("%s: got fds %v", dir.name, fds)
				}
				if !reflect.DeepEqual(*got, tt.m) {
					t.Errorf("%s: got %+v, want %+v", dir.name, *got, tt.m)
				}
			}
		})
	}
}

func TestWireFormat(t *testing.T) {
	// The C constructor writes the pid message by hand; pin the JSON shape.
	p, c := pair(t)
	if _, err := unix.Write(c.Fd(), []byte(`{"type":"pid","pid":77}`)); err != nil {
		t.Fatal(err)
	}
	m, _, err := p.Expect(TypePid)
	if err != nil || m.Pid != 77 {
		t.Fatalf("Expect(pid) = %+v, %v", m, err)
	}
	if err := p.Send(&Message{Type: TypeRun}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, err := unix.Read(c.Fd(), buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != `{"type":"run"}` {
		t.Errorf("run message on the wire = %s", got)
	}
}

// TestBareMessages: bare-type messages skip encoding/json; they must read
// and write exactly as it would, and everything else must still go
// through it.
func TestBareMessages(t *testing.T) {
	for _, m := range []Message{
		{Type: TypePid}, {Type: TypeMapped}, {Type: TypeBooted}, {Type: TypePlaced}, {Type: TypeConfig},
		{Type: TypeHooks}, {Type: TypeHooksDone}, {Type: TypeReady}, {Type: TypeRun}, {Type: TypeDone}, {Type: TypeError},
		{Type: TypePid, Pid: 7}, {Type: TypeError, Error: `no "such" file`}, {Type: TypeConfig, Config: json.RawMessage(`{"mode":"exec"}`)},
		{Type: `odd"type`}, {Type: "Ready"}, {Type: ""},
	} {
		got, err := encode(&m)
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		want, _ := json.Marshal(&m)
		if string(got) != string(want) {
			t.Errorf("encode %+v = %s, want %s", m, got, want)
		}
		back, err := decode(got)
		if err != nil || back.Type != m.Type || back.Pid != m.Pid || back.Error != m.Error || string(back.Config) != string(m.Config) {
			t.Errorf("decode %s = %+v, %v; want %+v", got, back, err, m)
		}
	}
	for _, in := range []string{`{"type":"ready","pid":1}`, `{"type":"re\u0061dy"}`, `{"type":"ready"} `, ` {"type":"ready"}`} {
		got, err := decode([]byte(in))
		var want Message
		werr := json.Unmarshal([]byte(in), &want)
		if (err == nil) != (werr == nil) || (err == nil && !reflect.DeepEqual(*got, want)) {
			t.Errorf("decode %s = %+v, %v; encoding/json: %+v, %v", in, got, err, want, werr)
		}
	}
}

func TestMessagesKeepBoundaries(t *testing.T) {
	p, c := pair(t)
	seq := []Message{{Type: TypeReady}, {Type: TypePid, Pid: 1}, {Type: TypeError, Error: "x"}, {Type: TypeDone}}
	for i := range seq {
		if err := c.Send(&seq[i]); err != nil {
			t.Fatal(err)
		}
	}
	c.Close() // queued messages are still delivered, then EOF
	for i := range seq {
		got, _, err := p.Recv()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !reflect.DeepEqual(*got, seq[i]) {
			t.Errorf("message %d = %+v, want %+v", i, *got, seq[i])
		}
	}
	if _, _, err := p.Recv(); err != io.EOF {
		t.Errorf("after the queue: %v, want io.EOF", err)
	}
}

func fstat(t *testing.T, fd int) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatalf("fstat %d: %v", fd, err)
	}
	return st
}

func TestFdPassing(t *testing.T) {
	tests := []struct {
		name string
		n    int
	}{
		{"one fd", 1},
		{"two fds", 2},
		{"eight fds", 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := pair(t)
			var files []*os.File
			var sent []int
			for i := 0; i < tt.n; i++ {
				f, err := os.Create(filepath.Join(t.TempDir(), fmt.Sprintf("f%d", i)))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				files = append(files, f)
				sent = append(sent, int(f.Fd()))
			}
			if err := p.Send(&Message{Type: TypeConfig, Config: mustJSON(t, &InitConfig{ConsoleFd: -1, FifoFd: -1})}, sent...); err != nil {
				t.Fatal(err)
			}
			m, fds, err := c.Recv()
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				for _, fd := range fds {
					unix.Close(fd)
				}
			}()
			if m.Type != TypeConfig {
				t.Errorf("type %q", m.Type)
			}
			if len(fds) != tt.n {
				t.Fatalf("received %d fds, want %d", len(fds), tt.n)
			}
			for i, fd := range fds {
				flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
				if err != nil {
					t.Fatalf("fd %d: %v", fd, err)
				}
				if flags&unix.FD_CLOEXEC == 0 {
					t.Errorf("received fd %d is not close-on-exec", fd)
				}
				want, got := fstat(t, sent[i]), fstat(t, fd)
				if want.Dev != got.Dev || want.Ino != got.Ino {
					t.Errorf("fd %d is %d/%d, want %d/%d (same order as sent)", i, got.Dev, got.Ino, want.Dev, want.Ino)
				}
				if fd == sent[i] {
					t.Errorf("received fd number equals the sent one")
				}
				// It is the same open file description: the offset is shared.
				if _, err := unix.Write(fd, []byte("xy")); err != nil {
					t.Fatal(err)
				}
				if off, _ := files[i].Seek(0, io.SeekCurrent); off != 2 {
					t.Errorf("offset through the original = %d, want 2", off)
				}
			}
		})
	}
}

func TestFdPassingPipe(t *testing.T) {
	p, c := pair(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := c.Send(&Message{Type: TypeReady}, int(w.Fd())); err != nil {
		t.Fatal(err)
	}
	_, fds, err := p.Expect(TypeReady)
	if err != nil {
		t.Fatal(err)
	}
	if len(fds) != 1 {
		t.Fatalf("fds %v", fds)
	}
	if _, err := unix.Write(fds[0], []byte("through the passed fd")); err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[0])
	w.Close()
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "through the passed fd" {
		t.Fatalf("read %q, %v", b, err)
	}
}

func bigConfig(size int) *InitConfig {
	cfg := sampleConfig()
	cfg.Container.Annotations = map[string]string{}
	val := strings.Repeat("v", 1000)
	for i := 0; len(cfg.Container.Annotations)*1020 < size; i++ {
		cfg.Container.Annotations[fmt.Sprintf("org.example.key.%06d", i)] = val
	}
	return cfg
}

func TestLargeMessage(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		reverse bool // child sends
	}{
		{"just over 64 KiB", 65 << 10, false},
		{"1 MiB from the parent", 1 << 20, false},
		{"3.5 MiB from the parent", 3<<20 + 512<<10, false},
		{"100 KiB from the child", 100 << 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := pair(t)
			from, to := p, c
			if tt.reverse {
				from, to = c, p
			}
			cfg := bigConfig(tt.size)
			want := Message{Type: TypeConfig, Config: mustJSON(t, cfg)}
			// One packet into an empty queue never blocks: send first.
			if serr := from.Send(&want); serr != nil {
				if os.Geteuid() != 0 && (errors.Is(serr, unix.EMSGSIZE) || errors.Is(serr, unix.ENOBUFS)) {
					// Without CAP_NET_ADMIN the buffer is capped by net.core.wmem_max.
					t.Skipf("skipping: not root and the socket buffer is too small: %v", serr)
				}
				t.Fatalf("Send: %v", serr)
			}
			got, _, err := to.Recv()
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			var gotCfg InitConfig
			if err := json.Unmarshal(got.Config, &gotCfg); err != nil {
				t.Fatal(err)
			}
			if len(gotCfg.Container.Annotations) != len(cfg.Container.Annotations) {
				t.Fatalf("got %d annotations, want %d", len(gotCfg.Container.Annotations), len(cfg.Container.Annotations))
			}
			if !reflect.DeepEqual(*got, want) {
				t.Fatal("large message differs after the round trip")
			}
			// The next message is still framed correctly.
			if err := from.Send(&Message{Type: TypeDone}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := to.Expect(TypeDone); err != nil {
				t.Fatalf("message after the large one: %v", err)
			}
		})
	}
}

func TestTooLargeMessageRefused(t *testing.T) {
	p, c := pair(t)
	m := Message{Type: TypeConfig, Config: mustJSON(t, bigConfig(maxMessage+4<<10))}
	if b, err := json.Marshal(&m); err != nil || len(b) <= maxMessage {
		t.Fatalf("test message is %d bytes (%v), want more than %d", len(b), err, maxMessage)
	}
	if err := p.Send(&m); err != nil {
		if errors.Is(err, unix.EMSGSIZE) || errors.Is(err, unix.ENOBUFS) {
			t.Skipf("skipping: the socket buffer cannot hold %d bytes without CAP_NET_ADMIN: %v", maxMessage, err)
		}
		t.Fatalf("Send: %v", err)
	}
	_, _, err := c.Recv()
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("Recv = %v, want a too-large error", err)
	}
}

func TestEOF(t *testing.T) {
	tests := []struct {
		name  string
		close func(p, c *Conn)
		recv  func(p, c *Conn) error
		want  error
	}{
		{"child sees parent close", func(p, c *Conn) { p.Close() }, func(p, c *Conn) error { _, _, err := c.Recv(); return err }, io.EOF},
		{"parent sees child close", func(p, c *Conn) { c.Close() }, func(p, c *Conn) error { _, _, err := p.Recv(); return err }, io.EOF},
		{"Expect maps EOF", func(p, c *Conn) { c.Close() }, func(p, c *Conn) error { _, _, err := p.Expect(TypeReady); return err }, ErrChildExited},
		{"EOF repeats", func(p, c *Conn) { c.Close() }, func(p, c *Conn) error {
			p.Recv()
			_, _, err := p.Recv()
			return err
		}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := pair(t)
			tt.close(p, c)
			if err := tt.recv(p, c); err != tt.want {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEOFWhileBlocked(t *testing.T) {
	p, c := pair(t)
	errc := make(chan error, 1)
	go func() {
		_, _, err := p.Recv()
		errc <- err
	}()
	c.Close()
	if err := <-errc; err != io.EOF {
		t.Fatalf("blocked Recv returned %v, want io.EOF", err)
	}
}

func openFds(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestExpect(t *testing.T) {
	tests := []struct {
		name    string
		send    Message
		withFd  bool
		expect  string
		wantErr string // exact text; "" for success
	}{
		{"match", Message{Type: TypeReady}, false, TypeReady, ""},
		{"match with fd", Message{Type: TypeDone}, true, TypeDone, ""},
		{"peer error text", Message{Type: TypeError, Error: "exec: \"nope\": executable file not found in $PATH"}, false, TypeDone, "exec: \"nope\": executable file not found in $PATH"},
		{"peer error when expecting error", Message{Type: TypeError, Error: "boom"}, false, TypeError, "boom"},
		{"wrong type", Message{Type: TypeReady}, false, TypeDone, `protocol error: got "ready" message, want "done"`},
		{"wrong type with fd", Message{Type: TypeHooks}, true, TypeReady, `protocol error: got "hooks" message, want "ready"`},
		{"unknown type", Message{Type: "bogus"}, false, TypeRun, `protocol error: got "bogus" message, want "run"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := pair(t)
			var fds []int
			if tt.withFd {
				f, err := os.Open(os.DevNull)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				fds = []int{int(f.Fd())}
			}
			if err := c.Send(&tt.send, fds...); err != nil {
				t.Fatal(err)
			}
			before := openFds(t)
			m, got, err := p.Expect(tt.expect)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Expect = %v", err)
				}
				if m.Type != tt.expect || len(got) != len(fds) {
					t.Fatalf("Expect = %+v, fds %v", m, got)
				}
				for _, fd := range got {
					unix.Close(fd)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Expect = %v, want %q", err, tt.wantErr)
			}
			if m != nil || got != nil {
				t.Errorf("Expect returned %+v, %v with the error", m, got)
			}
			if after := openFds(t); after != before {
				t.Errorf("open fds %d -> %d: the fds of a refused message leaked", before, after)
			}
		})
	}
}

func TestRecvGarbage(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		withFd  bool
	}{
		{"not json", "hello", false},
		{"truncated json", `{"type":"re`, false},
		{"wrong field type", `{"type":1}`, false},
		{"garbage with fd", "\x00\x01", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := pair(t)
			var oob []byte
			if tt.withFd {
				f, err := os.Open(os.DevNull)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				oob = unix.UnixRights(int(f.Fd()))
			}
			if err := unix.Sendmsg(c.Fd(), []byte(tt.payload), oob, nil, 0); err != nil {
				t.Fatal(err)
			}
			before := openFds(t)
			m, fds, err := p.Recv()
			if err == nil || !strings.HasPrefix(err.Error(), "decode message:") {
				t.Fatalf("Recv = %+v, %v, %v; want a decode error", m, fds, err)
			}
			if after := openFds(t); after != before {
				t.Errorf("open fds %d -> %d: received fds leaked", before, after)
			}
			// The connection is still usable.
			if err := c.Send(&Message{Type: TypeReady}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := p.Expect(TypeReady); err != nil {
				t.Fatalf("after garbage: %v", err)
			}
		})
	}
}

func TestSendAfterPeerClosed(t *testing.T) {
	p, c := pair(t)
	c.Close()
	err := p.Send(&Message{Type: TypeRun})
	if err == nil || !strings.HasPrefix(err.Error(), "send run message:") {
		t.Fatalf("Send = %v, want a send error", err)
	}
	if !errors.Is(err, unix.EPIPE) && !errors.Is(err, unix.ECONNRESET) {
		t.Errorf("error %v does not keep the errno", err)
	}
}

func TestFromSpec(t *testing.T) {
	raw := []byte(`{
		"ociVersion": "1.2.0",
		"process": {"args": ["sh"], "cwd": "/", "user": {"uid": 1}},
		"root": {"path": "rootfs", "readonly": true},
		"hostname": "h", "domainname": "d",
		"annotations": {"k": "v"},
		"mounts": [
			{"destination": "/data", "type": "bind", "source": "data"},
			{"destination": "/abs", "source": "/srv", "options": ["rbind"]},
			{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
		],
		"hooks": {"createContainer": [{"path": "/bin/a"}], "startContainer": [{"path": "/bin/b"}]},
		"linux": {
			"namespaces": [{"type": "pid"}, {"type": "user", "path": "/proc/1/ns/user"}],
			"maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
			"sysctl": {"net.ipv4.ip_forward": "1"}, "rootfsPropagation": "rslave",
			"devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}],
			"resources": {"memory": {"limit": 100}}
		}
	}`)
	cfg := &InitConfig{Bundle: "/b", SpecJSON: raw}
	if err := cfg.FromSpec(); err != nil {
		t.Fatal(err)
	}
	c := cfg.Container
	switch {
	case cfg.SpecJSON != nil:
		t.Error("SpecJSON kept after decoding")
	case cfg.Process == nil || cfg.Process.Args[0] != "sh" || cfg.Process.User.UID != 1:
		t.Errorf("process %+v", cfg.Process)
	case c.OCIVersion != "1.2.0" || !c.ReadonlyRoot || c.Hostname != "h" || c.Domainname != "d" || c.Annotations["k"] != "v":
		t.Errorf("container %+v", c)
	case c.Mounts[0].Source != "/b/data" || c.Mounts[1].Source != "/srv" || c.Mounts[2].Source != "tmpfs":
		t.Errorf("mount sources %q %q %q: relative bind sources must be bundle-relative, others untouched",
			c.Mounts[0].Source, c.Mounts[1].Source, c.Mounts[2].Source)
	case len(c.CreateContainerHooks) != 1 || len(c.StartContainerHooks) != 1:
		t.Errorf("hooks %+v %+v", c.CreateContainerHooks, c.StartContainerHooks)
	case !c.UserNS:
		t.Error("a joined user namespace must count as a user namespace")
	case c.MaskedPaths[0] != "/proc/kcore" || c.ReadonlyPaths[0] != "/proc/sys" || c.Sysctl["net.ipv4.ip_forward"] != "1" || c.RootfsPropagation != "rslave":
		t.Errorf("linux parts %+v", c)
	case len(c.Devices) != 1 || c.Devices[0].Major != 10:
		t.Errorf("devices %+v", c.Devices)
	}
	for _, bad := range []string{`{`, `{"process": {"args": ["sh"]}}`, `{"root": {"path": "r"}}`} {
		if err := (&InitConfig{SpecJSON: []byte(bad)}).FromSpec(); err == nil {
			t.Errorf("FromSpec(%s) succeeded", bad)
		}
	}
}

// TestExpectAhead: the helper's pid report and the init's boot report race
// on one socket; either order works, anything else is still an error.
func TestExpectAhead(t *testing.T) {
	tests := []struct {
		name    string
		sent    []string
		wantErr string
	}{
		{"pid first", []string{TypePid, TypeBooted}, ""},
		{"booted first", []string{TypeBooted, TypePid}, ""},
		{"booted twice", []string{TypeBooted, TypeBooted}, `got "booted" message, want "pid"`},
		{"unrelated first", []string{TypeReady, TypePid}, `got "ready" message, want "pid"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := pair(t)
			for i, typ := range tt.sent {
				m := &Message{Type: typ}
				if typ == TypePid {
					m.Pid = 4242 + i
				}
				if err := c.Send(m); err != nil {
					t.Fatal(err)
				}
			}
			m, _, err := p.ExpectAhead(TypePid, TypeBooted)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || m.Type != TypePid || m.Pid == 0 {
				t.Fatalf("ExpectAhead = %+v, %v", m, err)
			}
			if _, _, err := p.Expect(TypeBooted); err != nil {
				t.Fatalf("the booted message was lost: %v", err)
			}
		})
	}
	t.Run("EOF", func(t *testing.T) {
		p, c := pair(t)
		c.Send(&Message{Type: TypeBooted})
		c.Close()
		if _, _, err := p.ExpectAhead(TypePid, TypeBooted); err != ErrChildExited {
			t.Fatalf("err = %v, want ErrChildExited", err)
		}
	})
}
