package netdev

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

func TestAttr(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want []byte // after the 4-byte header
	}{
		{"aligned", []byte{1, 2, 3, 4}, []byte{1, 2, 3, 4}},
		{"padded", cstring("ctr0"), []byte{'c', 't', 'r', '0', 0, 0, 0, 0}},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := attr(nil, unix.IFLA_IFNAME, tt.data)
			if len(b)%4 != 0 {
				t.Fatalf("length %d is not 4-aligned", len(b))
			}
			if l := binary.NativeEndian.Uint16(b[0:2]); int(l) != 4+len(tt.data) {
				t.Errorf("rta_len %d, want %d (unpadded)", l, 4+len(tt.data))
			}
			if typ := binary.NativeEndian.Uint16(b[2:4]); typ != unix.IFLA_IFNAME {
				t.Errorf("rta_type %d", typ)
			}
			if !bytes.Equal(b[4:], tt.want) {
				t.Errorf("payload %v, want %v", b[4:], tt.want)
			}
		})
	}
}

func TestIfinfo(t *testing.T) {
	b := ifinfo(7, unix.IFF_UP, unix.IFF_UP)
	if len(b) != unix.SizeofIfInfomsg {
		t.Fatalf("length %d", len(b))
	}
	if idx := int32(binary.NativeEndian.Uint32(b[4:8])); idx != 7 {
		t.Errorf("index %d", idx)
	}
	if f, c := binary.NativeEndian.Uint32(b[8:12]), binary.NativeEndian.Uint32(b[12:16]); f != unix.IFF_UP || c != unix.IFF_UP {
		t.Errorf("flags %#x change %#x", f, c)
	}
}
