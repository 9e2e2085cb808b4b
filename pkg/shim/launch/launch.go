// Package launch starts an xshim server: its socket, the bundle files that
// find it again (the address and the runtime options) and the server
// process, which inherits the listener as fd 3. This is the work of the
// shim's `start` action. xd does it itself for its own shims, which saves
// the start process: a Go program's start-up, a third of a shim's start on
// a small machine.
package launch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/atomicfile"
)

// SocketDir holds the shims' sockets: a path (never abstract, see
// CVE-2020-15257) only root can reach.
const SocketDir = "/run/xstack/s"

// Files in the bundle.
const (
	AddressFile = "address"      // the serving shim's "unix://" address
	OptionsFile = "options.json" // the runtime options, for `xshim delete`
)

// groupAnnotations name the shim a container shares with others (a pod):
// containerd's own, then the CRI sandbox id.
var groupAnnotations = []string{"io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"}

// SocketPath is where the shim for group (the container id unless it
// shares a shim) listens: a hash, which keeps the path short.
func SocketPath(address, namespace, group string) string {
	sum := sha256.Sum256([]byte(filepath.Join(address, namespace, group)))
	return filepath.Join(SocketDir, hex.EncodeToString(sum[:]))
}

// Group reads the bundle's annotations for a shared shim; the container
// id if there is none.
func Group(bundle, id string) string {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return id
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(b, &spec) != nil {
		return id
	}
	for _, a := range groupAnnotations {
		if g := spec.Annotations[a]; g != "" {
			return g
		}
	}
	return id
}

// Listen creates a shim's socket, 0600 in a 0700 directory, replacing a
// stale one. EADDRINUSE means a live shim already listens there.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if errors.Is(err, unix.EADDRINUSE) {
		if conn, derr := net.DialTimeout("unix", path, time.Second); derr == nil {
			conn.Close()
			return nil, fmt.Errorf("socket %s: %w", path, unix.EADDRINUSE)
		}
		// Left by a shim that died.
		if err := os.Remove(path); err != nil {
			return nil, err
		}
		l, err = net.Listen("unix", path)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// The Go listener would unlink the path on Close; the serving shim
	// owns it from here.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		os.Remove(path)
		return nil, err
	}
	return l, nil
}

// Request is one shim to launch: the shim binary and the command line
// containerd gives a shim.
type Request struct {
	Binary        string // the xshim binary
	Namespace     string
	ID            string
	Address       string // the daemon's socket
	PublishBinary string
	Bundle        string // absolute
	Debug         bool
	// Options, when set, are recorded in the bundle, where `delete` finds
	// the runtime and its root even if Create never comes.
	Options *options.Options
	// Env is the server's environment (nil: the caller's), but for
	// GOMAXPROCS, which is 1.
	Env []string
	// Detach makes the server a child of the caller's parent rather than
	// of the caller (clone's CLONE_PARENT): a daemon that launches its
	// shims leaves them where a start process would, with nothing to reap.
	Detach bool
	// Setup, when set, runs on the started server before Start returns
	// (e.g. placing it in a cgroup); its error kills the server and fails
	// the launch.
	Setup func(pid int) error
}

// Shim is a launched shim.
type Shim struct {
	Address string // "unix://" + socket path
	// Process is the server, nil when the container's group already had
	// a live shim, which serves this container too. The caller releases it
	// (or, unless detached, may wait for it).
	Process *os.Process
}

// Start launches the shim server for r, unless the container's group
// already has one, and records its address in the bundle. On failure
// nothing it made is left.
func Start(r Request) (_ *Shim, err error) {
	if r.ID == "" || r.Namespace == "" || !filepath.IsAbs(r.Bundle) {
		return nil, fmt.Errorf("launch shim: id %q, namespace %q and an absolute bundle %q are required", r.ID, r.Namespace, r.Bundle)
	}
	if r.Options != nil {
		if err := WriteOptions(r.Bundle, r.Options); err != nil {
			return nil, fmt.Errorf("write options: %w", err)
		}
		defer func() {
			if err != nil {
				os.Remove(filepath.Join(r.Bundle, OptionsFile))
			}
		}()
	}
	path := SocketPath(r.Address, r.Namespace, Group(r.Bundle, r.ID))
	address := "unix://" + path
	l, err := Listen(path)
	if errors.Is(err, unix.EADDRINUSE) {
		if err := writeAddress(r.Bundle, address); err != nil {
			return nil, err
		}
		return &Shim{Address: address}, nil
	}
	if err != nil {
		return nil, err
	}
	defer l.Close()
	defer func() {
		if err != nil {
			os.Remove(path)
			os.Remove(filepath.Join(r.Bundle, AddressFile))
		}
	}()
	if err := writeAddress(r.Bundle, address); err != nil {
		return nil, err
	}
	lf, err := l.(*net.UnixListener).File()
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	args := []string{"-namespace", r.Namespace, "-id", r.ID, "-address", r.Address}
	if r.PublishBinary != "" {
		args = append(args, "-publish-binary", r.PublishBinary)
	}
	if r.Debug {
		args = append(args, "-debug")
	}
	cmd := exec.Command(r.Binary, args...)
	cmd.Dir = r.Bundle
	cmd.Env = serverEnv(r.Env)
	// Its own process group: signals for the daemon's group do not reach
	// it, and it outlives the daemon. Its stdio is /dev/null: a caller
	// reading start's output to EOF must not wait for the server.
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	// An init process (pid 1 of its namespace) cannot give away children.
	if r.Detach && os.Getpid() != 1 {
		cmd.SysProcAttr.Cloneflags = unix.CLONE_PARENT
	}
	cmd.ExtraFiles = []*os.File{lf}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the shim %s: %w", r.Binary, err)
	}
	if r.Setup != nil {
		if err := r.Setup(cmd.Process.Pid); err != nil {
			_ = cmd.Process.Kill()
			if !r.Detach {
				_, _ = cmd.Process.Wait()
			} else {
				_ = cmd.Process.Release()
			}
			return nil, err
		}
	}
	// Less precious than the daemon under memory pressure.
	if adj, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(adj))); err == nil {
			_ = os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", cmd.Process.Pid), []byte(strconv.Itoa(min(n+1, 1000))), 0)
		}
	}
	return &Shim{Address: address, Process: cmd.Process}, nil
}

// serverEnv is env (nil: ours) with GOMAXPROCS=1. The shim is a few
// goroutines waiting on I/O, and each P keeps a partly used span of every
// size class it allocates from: with the two Ps containerd asks for, a
// fifth of a shim's memory. It must be set before the server's runtime
// starts; the server takes it out of what its children inherit, so the
// runtime gets the daemon's environment without it.
func serverEnv(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			out = append(out, kv)
		}
	}
	return append(out, "GOMAXPROCS=1")
}

func writeAddress(bundle, address string) error {
	if err := atomicfile.WriteFile(filepath.Join(bundle, AddressFile), []byte(address), 0o600, false); err != nil {
		return fmt.Errorf("write address: %w", err)
	}
	return nil
}

// WriteOptions records the runtime options in the bundle.
func WriteOptions(bundle string, opts *options.Options) error {
	b, err := json.Marshal(opts)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(bundle, OptionsFile), b, 0o600, false)
}

// ReadOptions reads the bundle's runtime options; none recorded means
// the defaults.
func ReadOptions(bundle string) (*options.Options, error) {
	opts := &options.Options{}
	b, err := os.ReadFile(filepath.Join(bundle, OptionsFile))
	if errors.Is(err, os.ErrNotExist) {
		return opts, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, opts); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(bundle, OptionsFile), err)
	}
	return opts, nil
}
