package seccomp

import (
	"encoding/json"
	"fmt"

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
	// A raw socket rather than package net, whose start-up every xrunc
	// process would pay.
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("seccomp listener %s: %w", p.ListenerPath, err)
	}
	defer unix.Close(sock)
	if err := unix.Connect(sock, &unix.SockaddrUnix{Name: p.ListenerPath}); err != nil {
		return fmt.Errorf("seccomp listener %s: connect: %w", p.ListenerPath, err)
	}
	n, err := unix.SendmsgN(sock, msg, unix.UnixRights(fd), nil, 0)
	if err == nil && n != len(msg) {
		err = fmt.Errorf("short write (%d of %d bytes)", n, len(msg))
	}
	if err != nil {
		return fmt.Errorf("seccomp listener %s: send the notification fd: %w", p.ListenerPath, err)
	}
	return nil
}
