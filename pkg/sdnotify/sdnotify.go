// Package sdnotify tells systemd about a Type=notify service's state
// (sd_notify(3)) over $NOTIFY_SOCKET.
//
// Internal to xstack; no API stability.
package sdnotify

import (
	"fmt"
	"net"
	"os"
)

// Ready is READY=1: the service is up.
const Ready = "READY=1"

// Stopping is STOPPING=1: the service is shutting down.
const Stopping = "STOPPING=1"

// Notify sends state to systemd. Without $NOTIFY_SOCKET (not started by
// systemd) it does nothing and reports false.
func Notify(state string) (bool, error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return false, nil
	}
	// An abstract socket is written with a leading '@'.
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("notify systemd: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("notify systemd: %w", err)
	}
	return true, nil
}
