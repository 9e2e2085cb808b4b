// Package syncproto is the message protocol between xrunc (the parent) and
// the container's init process while the container is being set up. It runs
// over a SOCK_SEQPACKET socketpair, one JSON message per packet, with file
// descriptors attached as SCM_RIGHTS where a step hands one over.
//
// The conversation, in order (→ parent to child, ← child to parent):
//
//	← pid     {pid}     only when the nsenter helper (C) started the init,
//	                    to join a user namespace: the pid of the init, a
//	                    direct child of xrunc (CLONE_PARENT). The helper
//	                    then exits. An init xrunc forks itself needs no pid
//	                    message.
//	→ mapped            only from the helper path with a new user namespace:
//	                    uid_map and gid_map are written; the init may become
//	                    root in it. (Go writes them for a forked init.)
//	→ config  {config}  sent as soon as the init is forked; read once its
//	                    runtime is up.
//	← booted            the init's Go runtime is up.
//	→ placed            create only: the init is in the container's cgroups
//	                    and may start setup. (An exec joins the cgroups
//	                    after "ready".)
//	← hooks             only when the spec has prestart, createRuntime or
//	                    createContainer hooks: the mounts are done, the
//	                    root not yet switched; the parent runs prestart and
//	                    createRuntime hooks in the runtime's namespaces,
//	→ hooks-done        then the init runs createContainer hooks in the
//	                    container's.
//	← ready             rootfs, console, hostname are set up; waiting.
//	→ run               the parent has saved state.json, so a killed parent
//	                    can still be cleaned up by "xrunc delete".
//	← done              credentials dropped, the executable was found; the
//	                    init closes its end and either execs at once (exec,
//	                    run) or blocks on exec.fifo until "xrunc start".
//	← error   {error}   at any point instead of the expected message; the
//	                    child exits and the parent tears everything down.
//
// An EOF where a message is expected means the child died.
//
// Internal to xstack; no API stability.
package syncproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/cgroups"
	rspec "github.com/xstack/xstack/pkg/runtime/spec"
)

// Message types; see the package comment for the order.
const (
	TypePid       = "pid"
	TypeMapped    = "mapped"
	TypeBooted    = "booted"
	TypePlaced    = "placed"
	TypeConfig    = "config"
	TypeHooks     = "hooks"
	TypeHooksDone = "hooks-done"
	TypeReady     = "ready"
	TypeRun       = "run"
	TypeDone      = "done"
	TypeError     = "error"
)

// Modes of the init process.
const (
	ModeCreate = "create" // a new container's first process
	ModeExec   = "exec"   // an extra process joining a running container
)

// EnvSyncFd names the environment variable carrying the init's fd number of
// its end of the socketpair.
const EnvSyncFd = "_XRUNC_SYNCFD"

// Message is one packet.
type Message struct {
	Type  string `json:"type"`
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
	// Config is an encoded InitConfig. It stays raw here so that the
	// small messages never make encoding/json build its machinery for the
	// whole config type graph (milliseconds in a fresh process).
	Config json.RawMessage `json:"config,omitempty"`
}

// InitConfig is everything the init needs that it cannot compute itself.
type InitConfig struct {
	Mode string `json:"mode"`
	ID   string `json:"id"`
	// Container is what a new container's init applies (create only).
	// The parent sends the bundle's config.json as it read (and checked)
	// it, in SpecJSON; the init derives Container and Process from it (see
	// FromSpec), which spares the parent re-encoding the spec.
	Container *Container      `json:"container,omitempty"`
	SpecJSON  json.RawMessage `json:"specJSON,omitempty"`
	// CreateHooks tells the init to pause in its namespaces, before the
	// root switch, for the parent's work there: moving linux.netDevices in,
	// prestart and createRuntime hooks; then it runs createContainer hooks
	// (see TypeHooks).
	CreateHooks bool `json:"createHooks,omitempty"`
	// Process is what to run: spec.process for create, the exec process.
	Process *specs.Process `json:"process"`
	// Seccomp is the container's profile, applied to its init and to every
	// exec (create: from SpecJSON).
	Seccomp *specs.LinuxSeccomp `json:"seccomp,omitempty"`
	// KeepAffinity keeps the CPU affinity the init was forked with (an
	// exec's execCPUAffinity.initial). Otherwise the init first widens its
	// own to every CPU its cpuset allows: a narrower one inherited from
	// xrunc's caller (a pinned shim, taskset) is not the container's.
	KeepAffinity bool `json:"keepAffinity,omitempty"`
	// MemoryPolicy is the container's NUMA memory policy, set for its init
	// and every exec (create: from SpecJSON).
	MemoryPolicy *specs.LinuxMemoryPolicy `json:"memoryPolicy,omitempty"`
	// Bundle is the bundle directory, for hooks' state.
	Bundle string `json:"bundle,omitempty"`
	// Rootfs is the absolute host path of the root filesystem (create).
	Rootfs       string `json:"rootfs,omitempty"`
	NoPivot      bool   `json:"noPivot,omitempty"`
	NoNewKeyring bool   `json:"noNewKeyring,omitempty"`
	// ConsoleFd is the init's fd of a connected console socket, or -1.
	ConsoleFd int `json:"consoleFd"`
	// FifoFd is the init's O_PATH fd of exec.fifo (create), or -1.
	FifoFd int `json:"fifoFd"`
	// MountNSFd is the init's fd of a mount namespace to enter before
	// anything else, or -1. The parent enters the other namespaces before
	// forking the init, but the init's executable must resolve on the host.
	MountNSFd int `json:"mountNSFd"`
	// PreserveFds is how many fds after stdio stay open in the container.
	PreserveFds int `json:"preserveFds,omitempty"`
	// Cgroups are the hierarchies the container is in, for "cgroup"
	// mounts.
	Cgroups []cgroups.Hierarchy `json:"cgroups,omitempty"`
	// Unshare are namespaces the init creates itself (CLONE_NEW* flags),
	// and JoinTypes the types of namespaces it enters, whose fds come with
	// the config message, in the same order. Set when the init was forked
	// before the config was read (see pkg/runtime, creation.run).
	Unshare   uintptr   `json:"unshare,omitempty"`
	JoinTypes []uintptr `json:"joinTypes,omitempty"`
	// NewCgroupNS asks the init to unshare its cgroup namespace once it
	// sits in its cgroup, so the container sees its cgroup as the root.
	NewCgroupNS bool `json:"newCgroupNS,omitempty"`
	// BindTrees are the indexes, in the spec's mounts, of the bind mounts
	// whose detached trees the parent made: the id-mapped ones (package
	// idmap), and every bind mount of a container with a user namespace,
	// whose init may not reach the source. Their fds come with the config
	// message after the namespace fds, in the same order.
	BindTrees []int `json:"bindTrees,omitempty"`
}

// Container is the part of the spec a new container's init applies
// itself. It is a subset so that the init decodes only the types it uses.
type Container struct {
	OCIVersion        string              `json:"ociVersion"`
	Annotations       map[string]string   `json:"annotations,omitempty"`
	ReadonlyRoot      bool                `json:"readonlyRoot,omitempty"`
	Mounts            []specs.Mount       `json:"mounts,omitempty"`
	Devices           []specs.LinuxDevice `json:"devices,omitempty"`
	RootfsPropagation string              `json:"rootfsPropagation,omitempty"`
	Hostname          string              `json:"hostname,omitempty"`
	Domainname        string              `json:"domainname,omitempty"`
	Sysctl            map[string]string   `json:"sysctl,omitempty"`
	MaskedPaths       []string            `json:"maskedPaths,omitempty"`
	ReadonlyPaths     []string            `json:"readonlyPaths,omitempty"`
	// UserNS is set when the container has a user namespace (new or
	// joined).
	UserNS bool `json:"userNS,omitempty"`
	// Personality is linux.personality, applied to the init only (exec
	// processes inherit none, as with runc).
	Personality          *specs.LinuxPersonality `json:"personality,omitempty"`
	CreateContainerHooks []specs.Hook            `json:"createContainerHooks,omitempty"`
	StartContainerHooks  []specs.Hook            `json:"startContainerHooks,omitempty"`
}

// specView is the part of config.json a new container's init uses.
// Decoding only these types keeps the init's encoding/json start-up small.
type specView struct {
	Version     string            `json:"ociVersion"`
	Process     *specs.Process    `json:"process"`
	Root        *specs.Root       `json:"root"`
	Hostname    string            `json:"hostname"`
	Domainname  string            `json:"domainname"`
	Mounts      []specs.Mount     `json:"mounts"`
	Hooks       *specs.Hooks      `json:"hooks"`
	Annotations map[string]string `json:"annotations"`
	Linux       *struct {
		Devices           []specs.LinuxDevice      `json:"devices"`
		Sysctl            map[string]string        `json:"sysctl"`
		RootfsPropagation string                   `json:"rootfsPropagation"`
		MaskedPaths       []string                 `json:"maskedPaths"`
		ReadonlyPaths     []string                 `json:"readonlyPaths"`
		Namespaces        []specs.LinuxNamespace   `json:"namespaces"`
		Seccomp           *specs.LinuxSeccomp      `json:"seccomp"`
		Personality       *specs.LinuxPersonality  `json:"personality"`
		MemoryPolicy      *specs.LinuxMemoryPolicy `json:"memoryPolicy"`
	} `json:"linux"`
}

// FromSpec fills Container and Process from SpecJSON. Bind
// mount sources relative to the bundle become absolute, as the parent
// checked them.
func (c *InitConfig) FromSpec() error {
	var v specView
	if err := json.Unmarshal(c.SpecJSON, &v); err != nil {
		return fmt.Errorf("decode config.json: %w", err)
	}
	if v.Process == nil || v.Root == nil {
		return errors.New("config.json without process or root")
	}
	ct := &Container{
		OCIVersion:   v.Version,
		Annotations:  v.Annotations,
		ReadonlyRoot: v.Root.Readonly,
		Mounts:       v.Mounts,
		Hostname:     v.Hostname,
		Domainname:   v.Domainname,
	}
	for i, m := range ct.Mounts {
		if m.Source != "" && !filepath.IsAbs(m.Source) && rspec.IsBind(m) {
			ct.Mounts[i].Source = filepath.Join(c.Bundle, m.Source)
		}
	}
	if h := v.Hooks; h != nil {
		ct.CreateContainerHooks, ct.StartContainerHooks = h.CreateContainer, h.StartContainer
	}
	if l := v.Linux; l != nil {
		ct.Devices, ct.Sysctl, ct.RootfsPropagation = l.Devices, l.Sysctl, l.RootfsPropagation
		ct.MaskedPaths, ct.ReadonlyPaths = l.MaskedPaths, l.ReadonlyPaths
		c.Seccomp, ct.Personality, c.MemoryPolicy = l.Seccomp, l.Personality, l.MemoryPolicy
		for _, ns := range l.Namespaces {
			// New or joined: either way device nodes cannot be created.
			ct.UserNS = ct.UserNS || ns.Type == specs.UserNamespace
		}
	}
	c.Container, c.Process, c.SpecJSON = ct, v.Process, nil
	return nil
}

// Conn is one end of the socketpair.
type Conn struct {
	f *os.File
	// held is a message that arrived ahead of its turn (ExpectAhead); the
	// next Expect returns it.
	held *heldMessage
}

type heldMessage struct {
	m   *Message
	fds []int
}

// maxMessage bounds one packet; a config with a large seccomp profile fits.
const maxMessage = 4 << 20

// NewPair returns the parent's and the child's ends. Both are close-on-exec;
// the child's end is handed over as an ExtraFile, which clears the flag.
func NewPair() (parent *Conn, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	// A unix socket accounts queued data to the sender; raise the parent's
	// limit so a large config fits in one packet. SNDBUFFORCE needs
	// CAP_NET_ADMIN; without it the default applies.
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, maxMessage); err != nil {
		_ = unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, maxMessage)
	}
	return &Conn{f: os.NewFile(uintptr(fds[0]), "sync-parent")}, os.NewFile(uintptr(fds[1]), "sync-child"), nil
}

// NewConn wraps an inherited fd (the child's side).
func NewConn(fd int) *Conn {
	return &Conn{f: os.NewFile(uintptr(fd), "sync")}
}

// Fd returns the socket's descriptor.
func (c *Conn) Fd() int { return int(c.f.Fd()) }

// Close closes this end.
func (c *Conn) Close() error { return c.f.Close() }

// Send writes one message with optional fds.
func (c *Conn) Send(m *Message, fds ...int) error {
	b, err := encode(m)
	if err != nil {
		return fmt.Errorf("encode %s message: %w", m.Type, err)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), b, oob, nil, 0)
		return serr != unix.EAGAIN
	}); err != nil {
		return fmt.Errorf("send %s message: %w", m.Type, err)
	}
	if serr != nil {
		return fmt.Errorf("send %s message: %w", m.Type, serr)
	}
	return nil
}

// Recv reads one message and any fds attached to it. It returns io.EOF when
// the other side closed.
func (c *Conn) Recv() (*Message, []int, error) {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	// Peek at the packet's real length first, so a small message does not
	// cost a maxMessage-sized buffer.
	var peek [1]byte
	var n, oobn int
	var rerr error
	buf := peek[:]
	oob := make([]byte, unix.CmsgSpace(4*8))
	for _, flags := range []int{unix.MSG_PEEK | unix.MSG_TRUNC, unix.MSG_CMSG_CLOEXEC} {
		if err := rc.Read(func(fd uintptr) bool {
			if flags&unix.MSG_PEEK != 0 {
				n, _, _, _, rerr = unix.Recvmsg(int(fd), buf, nil, flags)
			} else {
				n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, flags)
			}
			return rerr != unix.EAGAIN
		}); err != nil {
			return nil, nil, err
		}
		if rerr != nil {
			if rerr == unix.ECONNRESET {
				return nil, nil, io.EOF
			}
			return nil, nil, fmt.Errorf("receive: %w", rerr)
		}
		if flags&unix.MSG_PEEK != 0 {
			if n > maxMessage {
				return nil, nil, fmt.Errorf("receive: message of %d bytes is too large", n)
			}
			buf = make([]byte, max(n, 1))
		}
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, nil, fmt.Errorf("parse control message: %w", err)
		}
		for _, cm := range msgs {
			got, err := unix.ParseUnixRights(&cm)
			if err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if n == 0 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, nil, io.EOF
	}
	m, err := decode(buf[:n])
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, nil, fmt.Errorf("decode message: %w", err)
	}
	return m, fds, nil
}

// Most messages are a bare type; encode and decode handle those without
// encoding/json, whose first use costs a fresh process about a
// millisecond, and the init's first message ("booted") is on the critical
// path of create. The bytes are the same as encoding/json's.
var (
	bareOpen  = []byte(`{"type":"`)
	bareClose = []byte(`"}`)
)

func encode(m *Message) ([]byte, error) {
	if m.Pid == 0 && m.Error == "" && m.Config == nil && plainType(m.Type) {
		return slices.Concat(bareOpen, []byte(m.Type), bareClose), nil
	}
	return json.Marshal(m)
}

func decode(b []byte) (*Message, error) {
	if rest, ok := bytes.CutPrefix(b, bareOpen); ok {
		if typ, ok := bytes.CutSuffix(rest, bareClose); ok && plainType(string(typ)) {
			return &Message{Type: string(typ)}, nil
		}
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// plainType: a type name that needs no escaping in JSON (all of ours).
func plainType(t string) bool {
	if t == "" {
		return false
	}
	for _, r := range t {
		if (r < 'a' || r > 'z') && r != '-' {
			return false
		}
	}
	return true
}

// SendConfig sends the config message, with fds attached.
func (c *Conn) SendConfig(cfg *InitConfig, fds ...int) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	return c.Send(&Message{Type: TypeConfig, Config: b}, fds...)
}

// ExpectConfig reads the config message and the fds attached to it.
func (c *Conn) ExpectConfig() (*InitConfig, []int, error) {
	m, fds, err := c.Expect(TypeConfig)
	if err != nil {
		return nil, nil, err
	}
	var cfg InitConfig
	if err := json.Unmarshal(m.Config, &cfg); err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, nil, fmt.Errorf("decode config: %w", err)
	}
	return &cfg, fds, nil
}

// ErrChildExited reports an EOF while a message was expected.
var ErrChildExited = errors.New("container init exited during setup")

// Expect reads one message and checks its type. An error message from the
// other side becomes a Go error carrying its text.
func (c *Conn) Expect(typ string) (*Message, []int, error) {
	if h := c.held; h != nil {
		c.held = nil
		return check(h.m, h.fds, typ)
	}
	m, fds, err := c.Recv()
	if err != nil {
		if err == io.EOF {
			return nil, nil, ErrChildExited
		}
		return nil, nil, err
	}
	return check(m, fds, typ)
}

// ExpectAhead is Expect for a message that two processes race to send: a
// message of type early that comes first is held for the next Expect. (The
// nsenter helper reports the init's pid while the init, already running,
// may report that it booted.)
func (c *Conn) ExpectAhead(typ, early string) (*Message, []int, error) {
	if c.held == nil {
		m, fds, err := c.Recv()
		if err != nil {
			if err == io.EOF {
				return nil, nil, ErrChildExited
			}
			return nil, nil, err
		}
		if m.Type != early {
			return check(m, fds, typ)
		}
		c.held = &heldMessage{m, fds}
	}
	m, fds, err := c.Recv()
	if err != nil {
		if err == io.EOF {
			return nil, nil, ErrChildExited
		}
		return nil, nil, err
	}
	return check(m, fds, typ)
}

// check turns an error message into a Go error and a message of another
// type into a protocol error (closing the fds it carried).
func check(m *Message, fds []int, typ string) (*Message, []int, error) {
	if m.Type == TypeError {
		return nil, nil, errors.New(m.Error)
	}
	if m.Type != typ {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, nil, fmt.Errorf("protocol error: got %q message, want %q", m.Type, typ)
	}
	return m, fds, nil
}
