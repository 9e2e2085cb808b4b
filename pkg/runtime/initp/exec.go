package initp

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/runtime/syncproto"
)

// joinContainer runs an extra process in a running container. The nsenter
// constructor already entered every namespace of the container (our root
// and cwd are the container's) and the parent put us in its cgroup.
func joinContainer(conn *syncproto.Conn, cfg *syncproto.InitConfig) error {
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := joinSessionKeyring(cfg); err != nil {
		return err
	}
	if cfg.Process.Terminal {
		if err := setupConsole(cfg, false); err != nil {
			return err
		}
	}
	if err := handshake(conn); err != nil {
		return err
	}
	exe, env, beforeExec, listener, err := prepareProcess(cfg)
	if err != nil {
		return err
	}
	if err := sendDone(conn, listener); err != nil {
		return err
	}
	if err := beforeExec(); err != nil {
		return err
	}
	// On success the sync socket closes with execve (close-on-exec), which
	// the parent reads as "started"; on failure it gets our error.
	return execve(exe, cfg.Process.Args, env)
}
