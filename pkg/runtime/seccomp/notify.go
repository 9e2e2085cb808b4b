package seccomp

import (
	"encoding/json"
	"fmt"
	"net"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// SendListener hands a filter's notification fd to the agent listening on
// the spec's listenerPath, the way the runtime spec describes: one message
// carrying the process state as JSON, with the fd attached (SCM_RIGHTS) and
// named "seccompFd" in its fds list.
func SendListener(p *specs.LinuxSeccomp, state specs.State, pid, fd int) error {
	msg, err := json.Marshal(specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      pid,
		Metadata: p.ListenerMetadata,
		State:    state,
	})
	if err != nil {
		return err
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: p.ListenerPath, Net: "unix"})
	if err != nil {
		return fmt.Errorf("seccomp listener %s: %w", p.ListenerPath, err)
	}
	defer conn.Close()
	n, oobn, err := conn.WriteMsgUnix(msg, unix.UnixRights(fd), nil)
	if err == nil && (n != len(msg) || oobn == 0) {
		err = fmt.Errorf("short write (%d of %d bytes)", n, len(msg))
	}
	if err != nil {
		return fmt.Errorf("seccomp listener %s: send the notification fd: %w", p.ListenerPath, err)
	}
	return nil
}
