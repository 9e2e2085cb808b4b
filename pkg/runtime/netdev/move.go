package netdev

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"

	"golang.org/x/sys/unix"
)

// Move moves network devices from the caller's network namespace into ns
// (an open network namespace file): devices maps each device's name here to its name
// there ("" keeps it). The kernel keeps a device's MTU and MAC address
// across the move, but takes it down and drops its addresses: the global
// ones are added again and a device that was up is brought up (link and
// host scope addresses belong where the device was). If one fails, those
// already moved go back under their old names.
func Move(devices map[string]string, ns *os.File) (err error) {
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

	moved := map[string]string{} // the subset of devices that left
	defer func() {
		if err != nil && len(moved) > 0 {
			MoveBack(moved, ns)
		}
	}()
	hostNames := make([]string, 0, len(devices))
	for name := range devices {
		hostNames = append(hostNames, name)
	}
	slices.Sort(hostNames)
	for _, hostName := range hostNames {
		movedIt, err := moveOne(host, inside, int(ns.Fd()), hostName, nameInside(devices, hostName))
		if movedIt {
			moved[hostName] = devices[hostName]
		}
		if err != nil {
			return fmt.Errorf("%s: %w", hostName, err)
		}
	}
	return nil
}

func nameInside(devices map[string]string, hostName string) string {
	if name := devices[hostName]; name != "" {
		return name
	}
	return hostName
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

// moveOne moves one device; moved tells whether it left our namespace,
// even when a later step failed, so that it can be moved back.
func moveOne(host, inside *conn, nsFd int, hostName, name string) (moved bool, err error) {
	l, err := host.linkByName(hostName)
	if errors.Is(err, unix.ENODEV) {
		return false, errors.New("no such network device in the runtime's network namespace")
	} else if err != nil {
		return false, fmt.Errorf("look the device up: %w", err)
	}
	addrs, err := host.globalAddresses(l.index)
	if err != nil {
		return false, fmt.Errorf("list its addresses: %w", err)
	}
	if err := host.setNamespace(l.index, nsFd, name); err != nil {
		return false, fmt.Errorf("move it into the container's network namespace as %s: %w", name, err)
	}
	in, err := inside.linkByName(name)
	if err != nil {
		return true, fmt.Errorf("find %s in the container's network namespace: %w", name, err)
	}
	for _, a := range addrs {
		if err := inside.addAddress(in.index, a); err != nil {
			return true, fmt.Errorf("add its address again: %w", err)
		}
	}
	if l.flags&unix.IFF_UP != 0 {
		if err := inside.setUp(in.index); err != nil {
			return true, fmt.Errorf("set %s up: %w", name, err)
		}
	}
	return true, nil
}

// MoveBack returns devices that Move moved into ns to ours, under their
// old names, as far as it can: the container is being torn down (or Move
// failed), and with its namespace a virtual device would go. ns may have
// no process left in it: the open file keeps it.
func MoveBack(devices map[string]string, ns *os.File) {
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return
	}
	defer own.Close()
	inside, err := dialIn(int(ns.Fd()))
	if err != nil {
		return
	}
	defer inside.close()
	for hostName := range devices {
		if l, err := inside.linkByName(nameInside(devices, hostName)); err == nil {
			_ = inside.setNamespace(l.index, int(own.Fd()), hostName)
		}
	}
}
