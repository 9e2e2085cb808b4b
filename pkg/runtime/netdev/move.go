package netdev

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// Move moves network devices from the caller's network namespace into the
// one of process pid: devices maps each device's name here to its name
// there ("" keeps it). The kernel keeps a device's MTU and MAC address
// across the move, but takes it down and drops its addresses: the global
// ones are added again and a device that was up is brought up (link and
// host scope addresses belong where the device was). If one fails, those
// already moved go back under their old names.
func Move(devices map[string]string, pid int) (err error) {
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return fmt.Errorf("open the network namespace of pid %d: %w", pid, err)
	}
	defer ns.Close()
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return fmt.Errorf("open our network namespace: %w", err)
	}
	defer own.Close()
	host, err := dial()
	if err != nil {
		return err
	}
	defer host.close()
	inside, err := dialIn(int(ns.Fd()))
	if err != nil {
		return err
	}
	defer inside.close()

	var moved []string // names inside
	defer func() {
		if err != nil {
			for _, name := range moved {
				moveBack(inside, int(own.Fd()), name, hostNameOf(devices, name))
			}
		}
	}()
	hostNames := make([]string, 0, len(devices))
	for name := range devices {
		hostNames = append(hostNames, name)
	}
	slices.Sort(hostNames)
	for _, hostName := range hostNames {
		name := nameInside(devices, hostName)
		if err := moveOne(host, inside, int(ns.Fd()), hostName, name); err != nil {
			return fmt.Errorf("%s: %w", hostName, err)
		}
		moved = append(moved, name)
	}
	return nil
}

func nameInside(devices map[string]string, hostName string) string {
	if name := devices[hostName]; name != "" {
		return name
	}
	return hostName
}

func hostNameOf(devices map[string]string, name string) string {
	for hostName := range devices {
		if nameInside(devices, hostName) == name {
			return hostName
		}
	}
	return name
}

// dialIn opens a rtnetlink socket in the network namespace nsFd. The
// socket stays in that namespace; the thread that entered it to open the
// socket is never handed back to the Go scheduler: it ends with its
// goroutine.
func dialIn(nsFd int) (*conn, error) {
	type result struct {
		c   *conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(nsFd, unix.CLONE_NEWNET); err != nil {
			done <- result{nil, fmt.Errorf("enter the container's network namespace: %w", err)}
			return
		}
		c, err := dial()
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}

func moveOne(host, inside *conn, nsFd int, hostName, name string) error {
	l, err := host.linkByName(hostName)
	if errors.Is(err, unix.ENODEV) {
		return errors.New("no such network device in the runtime's network namespace")
	} else if err != nil {
		return fmt.Errorf("look the device up: %w", err)
	}
	addrs, err := host.globalAddresses(l.index)
	if err != nil {
		return fmt.Errorf("list its addresses: %w", err)
	}
	if err := host.setNamespace(l.index, nsFd, name); err != nil {
		return fmt.Errorf("move it into the container's network namespace as %s: %w", name, err)
	}
	in, err := inside.linkByName(name)
	if err != nil {
		return fmt.Errorf("find %s in the container's network namespace: %w", name, err)
	}
	for _, a := range addrs {
		if err := inside.addAddress(in.index, a); err != nil {
			return fmt.Errorf("add its address again: %w", err)
		}
	}
	if l.flags&unix.IFF_UP != 0 {
		if err := inside.setUp(in.index); err != nil {
			return fmt.Errorf("set %s up: %w", name, err)
		}
	}
	return nil
}

// moveBack returns a moved device to our namespace under its old name, as
// far as it can: the container is being torn down.
func moveBack(inside *conn, ownNs int, name, hostName string) {
	if l, err := inside.linkByName(name); err == nil {
		_ = inside.setNamespace(l.index, ownNs, hostName)
	}
}
