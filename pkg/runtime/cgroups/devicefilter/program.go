package devicefilter

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Device types and access bits of struct bpf_cgroup_dev_ctx
// (include/uapi/linux/bpf.h): access_type is (access << 16) | type, then
// come major and minor, all u32.
const (
	devBlock = 1 // BPF_DEVCG_DEV_BLOCK
	devChar  = 2 // BPF_DEVCG_DEV_CHAR

	accMknod = 1 // BPF_DEVCG_ACC_MKNOD
	accRead  = 2 // BPF_DEVCG_ACC_READ
	accWrite = 4 // BPF_DEVCG_ACC_WRITE
	accAll   = accMknod | accRead | accWrite
)

// The eBPF instructions the filter uses (include/uapi/linux/bpf_common.h):
// 32-bit loads, ALU and compares, and exit.
const (
	opLoadWord = 0x61 // BPF_LDX | BPF_MEM | BPF_W
	opMovImm   = 0xb4 // BPF_ALU | BPF_MOV | BPF_K
	opMovReg   = 0xbc // BPF_ALU | BPF_MOV | BPF_X
	opAndImm   = 0x54 // BPF_ALU | BPF_AND | BPF_K
	opRshImm   = 0x74 // BPF_ALU | BPF_RSH | BPF_K
	opJeqImm   = 0x16 // BPF_JMP32 | BPF_JEQ | BPF_K
	opJneImm   = 0x56 // BPF_JMP32 | BPF_JNE | BPF_K
	opExit     = 0x95 // BPF_JMP | BPF_EXIT
)

// Registers: r0 is the verdict, r1 the context; the request is kept in
// r2 (type), r3 (access), r4 (major) and r5 (minor).
const (
	r0 = iota
	r1
	r2
	r3
	r4
	r5
)

// insn is struct bpf_insn.
type insn struct {
	op       uint8
	dst, src uint8
	off      int16
	imm      int32
}

// skip is the jump offset of a conditional jump that is patched to the
// end of its rule's block.
const skip = math.MaxInt16

// rule is one spec rule in the program's terms; -1 is a wildcard.
type rule struct {
	allow        bool
	typ          int32 // devBlock, devChar or -1 ("a")
	major, minor int64
	access       int32
}

func parseRule(d specs.LinuxDeviceCgroup) (rule, error) {
	r := rule{allow: d.Allow, typ: -1, major: -1, minor: -1, access: accAll}
	switch d.Type {
	case "", "a":
		// "a" is every device with every access, whatever else is given.
		return r, nil
	case "b":
		r.typ = devBlock
	case "c":
		r.typ = devChar
	default:
		return r, fmt.Errorf("device rule: invalid type %q", d.Type)
	}
	access := d.Access
	if access == "" {
		access = "rwm"
	}
	if len(access) > 3 || strings.Trim(access, "rwm") != "" {
		return r, fmt.Errorf("device rule: invalid access %q", d.Access)
	}
	r.access = 0
	for _, c := range access {
		r.access |= map[rune]int32{'m': accMknod, 'r': accRead, 'w': accWrite}[c]
	}
	for _, n := range []struct {
		in  *int64
		out *int64
	}{{d.Major, &r.major}, {d.Minor, &r.minor}} {
		if n.in != nil && *n.in >= 0 {
			if *n.in > math.MaxUint32 {
				return r, fmt.Errorf("device rule: device number %d out of range", *n.in)
			}
			*n.out = *n.in
		}
	}
	return r, nil
}

// block is the code of one rule: each test jumps past the block when the
// request does not match; the block ends returning the rule's verdict.
func (r rule) block() []insn {
	var b []insn
	if r.typ >= 0 {
		b = append(b, insn{op: opJneImm, dst: r2, off: skip, imm: r.typ})
	}
	if r.access != accAll {
		// r0 = the request's accesses outside (allow) or inside (deny)
		// the rule's: an allow rule must grant all of them, a deny rule
		// decides as soon as it covers one.
		b = append(b, insn{op: opMovReg, dst: r0, src: r3})
		if r.allow {
			b = append(b, insn{op: opAndImm, dst: r0, imm: ^r.access & accAll}, insn{op: opJneImm, dst: r0, off: skip})
		} else {
			b = append(b, insn{op: opAndImm, dst: r0, imm: r.access}, insn{op: opJeqImm, dst: r0, off: skip})
		}
	}
	if r.major >= 0 {
		b = append(b, insn{op: opJneImm, dst: r4, off: skip, imm: int32(uint32(r.major))})
	}
	if r.minor >= 0 {
		b = append(b, insn{op: opJneImm, dst: r5, off: skip, imm: int32(uint32(r.minor))})
	}
	verdict := int32(0)
	if r.allow {
		verdict = 1
	}
	b = append(b, insn{op: opMovImm, dst: r0, imm: verdict}, insn{op: opExit})
	for i := range b {
		if b[i].off == skip {
			b[i].off = int16(len(b) - i - 1)
		}
	}
	return b
}

// program builds the filter for rules, tested last to first.
func program(rules []specs.LinuxDeviceCgroup) ([]insn, error) {
	parsed := make([]rule, 0, len(rules))
	for _, d := range rules {
		r, err := parseRule(d)
		if err != nil {
			return nil, err
		}
		parsed = append(parsed, r)
	}
	// cgroup v1 keeps one exception per device and merges the accesses of
	// its allow rules (a deny in between removes them again): the later
	// rule, tested first, grants them together, so that an open for
	// reading and writing passes as it does there.
	for i := range parsed {
		for j := i - 1; parsed[i].allow && j >= 0 && parsed[j].allow; j-- {
			if parsed[j].typ == parsed[i].typ && parsed[j].major == parsed[i].major && parsed[j].minor == parsed[i].minor {
				parsed[i].access |= parsed[j].access
			}
		}
	}
	prog := []insn{
		{op: opLoadWord, dst: r2, src: r1, off: 0},
		{op: opMovReg, dst: r3, src: r2},
		{op: opRshImm, dst: r3, imm: 16},
		{op: opAndImm, dst: r2, imm: 0xffff},
		{op: opLoadWord, dst: r4, src: r1, off: 4},
		{op: opLoadWord, dst: r5, src: r1, off: 8},
	}
	for i := len(parsed) - 1; i >= 0; i-- {
		b := parsed[i].block()
		prog = append(prog, b...)
		if len(b) == 2 {
			// It matches every request: the rules before it never
			// decide anything, and the verifier refuses dead code.
			return prog, nil
		}
	}
	return append(prog, insn{op: opMovImm, dst: r0, imm: 0}, insn{op: opExit}), nil
}

// encode lays the instructions out as the kernel reads them.
func encode(prog []insn) []byte {
	out := make([]byte, 0, 8*len(prog))
	for _, in := range prog {
		out = append(out, in.op, in.dst|in.src<<4)
		out = binary.LittleEndian.AppendUint16(out, uint16(in.off))
		out = binary.LittleEndian.AppendUint32(out, uint32(in.imm))
	}
	return out
}
