package netdev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// conn is a NETLINK_ROUTE socket in the network namespace of the thread
// that opened it.
type conn struct {
	fd  int
	seq uint32
}

func dial() (*conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("rtnetlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("rtnetlink bind: %w", err)
	}
	return &conn{fd: fd}, nil
}

func (c *conn) close() { unix.Close(c.fd) }

// request sends one message and returns the replies: for a dump all of
// them up to NLMSG_DONE, else the reply (if any) before the ACK. An error
// the kernel reports comes back as its errno.
func (c *conn) request(typ, flags uint16, body []byte) ([]syscall.NetlinkMessage, error) {
	// Both bits: NLM_F_MATCH alone is NLM_F_EXCL in a new-object request.
	dump := flags&unix.NLM_F_DUMP == unix.NLM_F_DUMP
	c.seq++
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	msg = append(msg, body...)
	binary.NativeEndian.PutUint32(msg[0:4], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:6], typ)
	binary.NativeEndian.PutUint16(msg[6:8], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:12], c.seq)
	if err := unix.Sendto(c.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	var replies []syscall.NetlinkMessage
	for {
		// A fresh buffer each time: the replies kept point into it.
		buf := make([]byte, 64<<10)
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			return nil, err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Header.Seq != c.seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				// A dump that failed on the way says so here.
				if len(m.Data) >= 4 {
					if errno := -int32(binary.NativeEndian.Uint32(m.Data[:4])); errno != 0 {
						return nil, syscall.Errno(errno)
					}
				}
				return replies, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return nil, errors.New("short netlink error message")
				}
				if errno := -int32(binary.NativeEndian.Uint32(m.Data[:4])); errno != 0 {
					return nil, syscall.Errno(errno)
				}
				if !dump {
					return replies, nil // the ACK
				}
			default:
				replies = append(replies, m)
			}
		}
	}
}

// attr appends a route attribute to b, padded to 4 bytes.
func attr(b []byte, typ uint16, data []byte) []byte {
	l := unix.SizeofRtAttr + len(data)
	var hdr [unix.SizeofRtAttr]byte
	binary.NativeEndian.PutUint16(hdr[0:2], uint16(l))
	binary.NativeEndian.PutUint16(hdr[2:4], typ)
	b = append(b, hdr[:]...)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func u32(v uint32) []byte {
	return binary.NativeEndian.AppendUint32(nil, v)
}

func cstring(s string) []byte { return append([]byte(s), 0) }

// ifinfo is an ifinfomsg for the device with index.
func ifinfo(index int32, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(b[4:8], uint32(index))
	binary.NativeEndian.PutUint32(b[8:12], flags)
	binary.NativeEndian.PutUint32(b[12:16], change)
	return b
}

// link is what a move needs of a device.
type link struct {
	index int32
	flags uint32
}

// linkByName looks a device up by name.
func (c *conn) linkByName(name string) (link, error) {
	replies, err := c.request(unix.RTM_GETLINK, 0, attr(ifinfo(0, 0, 0), unix.IFLA_IFNAME, cstring(name)))
	if err != nil {
		return link{}, err
	}
	for _, m := range replies {
		if m.Header.Type == unix.RTM_NEWLINK && len(m.Data) >= unix.SizeofIfInfomsg {
			return link{
				index: int32(binary.NativeEndian.Uint32(m.Data[4:8])),
				flags: binary.NativeEndian.Uint32(m.Data[8:12]),
			}, nil
		}
	}
	return link{}, unix.ENODEV
}

// address is one address of a device as RTM_NEWADDR carries it: the
// ifaddrmsg header (family, prefix length, flags, scope) and the
// attributes worth adding again.
type address struct {
	header [unix.SizeofIfAddrmsg]byte
	attrs  []syscall.NetlinkRouteAttr
}

func (a address) scope() uint8 { return a.header[3] }

// globalAddresses lists the device's addresses of global scope.
func (c *conn) globalAddresses(index int32) ([]address, error) {
	body := make([]byte, unix.SizeofIfAddrmsg) // AF_UNSPEC: every family
	replies, err := c.request(unix.RTM_GETADDR, unix.NLM_F_DUMP, body)
	if err != nil {
		return nil, err
	}
	var out []address
	for _, m := range replies {
		if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < unix.SizeofIfAddrmsg {
			continue
		}
		var a address
		copy(a.header[:], m.Data[:unix.SizeofIfAddrmsg])
		if int32(binary.NativeEndian.Uint32(a.header[4:8])) != index || a.scope() != unix.RT_SCOPE_UNIVERSE {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			return nil, err
		}
		for _, at := range attrs {
			switch at.Attr.Type {
			case unix.IFA_ADDRESS, unix.IFA_LOCAL, unix.IFA_BROADCAST, unix.IFA_FLAGS:
				a.attrs = append(a.attrs, at)
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// addAddress adds a to the device with index.
func (c *conn) addAddress(index int32, a address) error {
	body := append([]byte(nil), a.header[:]...)
	binary.NativeEndian.PutUint32(body[4:8], uint32(index))
	for _, at := range a.attrs {
		body = attr(body, at.Attr.Type, at.Value)
	}
	_, err := c.request(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body)
	return err
}

// setNamespace moves the device into the network namespace nsFd under
// name, in one request: it never shows under its old name in the new
// namespace, where that name may be taken.
func (c *conn) setNamespace(index int32, nsFd int, name string) error {
	body := attr(ifinfo(index, 0, 0), unix.IFLA_NET_NS_FD, u32(uint32(nsFd)))
	body = attr(body, unix.IFLA_IFNAME, cstring(name))
	// RTM_NEWLINK on an existing device changes it, as ip(8) does: this
	// kernel's RTM_SETLINK answers ENODEV to a move with a new name.
	_, err := c.request(unix.RTM_NEWLINK, 0, body)
	return err
}

// setUp brings the device up.
func (c *conn) setUp(index int32) error {
	_, err := c.request(unix.RTM_SETLINK, 0, ifinfo(index, unix.IFF_UP, unix.IFF_UP))
	return err
}
