package client

import (
	"encoding/binary"
	"net"
	"sync"

	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// ttrpc wire constants (github.com/containerd/ttrpc channel.go): every
// message is a 10-byte header (length, stream id, type, flags; big endian)
// followed by the payload.
const (
	frameHeaderLen     = 10
	frameTypeRequest   = 0x1
	flagRemoteClosed   = 0x1
	flagRemoteOpen     = 0x2
	requestMetadataTag = 5 // ttrpc.Request.metadata
	maxFrameLen        = 4 << 20
)

// nsConn is the client's connection to xd. ttrpc v1.2 sends the context's
// metadata on unary calls only (NewStream leaves Request.Metadata empty and
// there is no stream client interceptor), so nsConn adds the namespace
// header to the Request that opens a stream as it goes out: protobuf lets a
// field be appended to an encoded message, so only the frame length changes.
// It also tells SendWait when a given request has been written.
type nsConn struct {
	net.Conn
	mdField []byte // encoded Request.metadata entry carrying the namespace

	mu      sync.Mutex
	pending []byte // bytes of an incomplete frame
	// notify, when set, is closed after the next request frame for
	// notifyMethod has been written.
	notify       chan struct{}
	notifyMethod string
}

func newNSConn(c net.Conn, namespace string) *nsConn {
	kv, err := proto.Marshal(&ttrpc.KeyValue{Key: xdv1.NamespaceHeader, Value: namespace})
	if err != nil {
		panic(err) // a two-string message always marshals
	}
	var field []byte
	field = protowire.AppendTag(field, requestMetadataTag, protowire.BytesType)
	field = protowire.AppendBytes(field, kv)
	return &nsConn{Conn: c, mdField: field}
}

// notifyRequest returns a channel closed once a request for
// /service/method has been written.
func (c *nsConn) notifyRequest(service, method string) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notify = make(chan struct{})
	c.notifyMethod = "/" + service + "/" + method
	return c.notify
}

func (c *nsConn) cancelNotify(ch chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.notify == ch {
		c.notify = nil
	}
}

// Write forwards whole frames, rewriting stream-opening requests. ttrpc
// writes a frame's header and payload through a bufio.Writer, so a frame may
// arrive split over several calls; the tail of an incomplete one is kept.
func (c *nsConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := p
	if len(c.pending) > 0 {
		c.pending = append(c.pending, p...)
		buf = c.pending
	}
	var out []byte
	var fired chan struct{}
	for len(buf) >= frameHeaderLen {
		n := int(binary.BigEndian.Uint32(buf[:4]))
		if n > maxFrameLen || len(buf) < frameHeaderLen+n {
			if n > maxFrameLen { // not ttrpc framing we understand: pass through
				out = append(out, buf...)
				buf = nil
			}
			break
		}
		frame := buf[:frameHeaderLen+n]
		buf = buf[frameHeaderLen+n:]
		if frame[8] != frameTypeRequest {
			out = append(out, frame...)
			continue
		}
		if frame[9]&(flagRemoteClosed|flagRemoteOpen) != 0 {
			out = binary.BigEndian.AppendUint32(out, uint32(n+len(c.mdField)))
			out = append(out, frame[4:]...)
			out = append(out, c.mdField...)
		} else {
			out = append(out, frame...)
		}
		if c.notify != nil && fired == nil && requestMethod(frame[frameHeaderLen:]) == c.notifyMethod {
			fired, c.notify = c.notify, nil
		}
	}
	if len(buf) > 0 {
		c.pending = append(c.pending[:0:0], buf...)
	} else {
		c.pending = nil
	}
	if len(out) > 0 {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
	}
	if fired != nil {
		close(fired)
	}
	return len(p), nil
}

func requestMethod(payload []byte) string {
	var req ttrpc.Request
	if err := proto.Unmarshal(payload, &req); err != nil {
		return ""
	}
	return "/" + req.Service + "/" + req.Method
}
