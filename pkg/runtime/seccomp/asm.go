package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// label names a position in the program that may not be known yet.
type label int

// next is the label of the instruction following a jump (offset 0).
const next label = -1

type fixup struct {
	at     int
	jt, jf label
	always bool // BPF_JA: the target is jt, stored in k
}

// asm is a tiny forward-only assembler for classic BPF. Jumps name labels and
// are resolved by assemble, which fails if a conditional jump would need an
// offset above 255; the compiler uses BPF_JA (32-bit offset) for far jumps.
type asm struct {
	prog  []unix.SockFilter
	fix   []fixup
	place []int
}

func (a *asm) newLabel() label {
	a.place = append(a.place, -1)
	return label(len(a.place) - 1)
}

func (a *asm) bind(l label) { a.place[l] = len(a.prog) }

func (a *asm) stmt(code uint16, k uint32) {
	a.prog = append(a.prog, unix.SockFilter{Code: code, K: k})
}

// load loads the 32-bit word at offset off of seccomp_data into A.
func (a *asm) load(off uint32) { a.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }

func (a *asm) ret(v uint32) { a.stmt(unix.BPF_RET|unix.BPF_K, v) }

// jump emits a conditional jump comparing A with k.
func (a *asm) jump(op uint16, k uint32, jt, jf label) {
	a.fix = append(a.fix, fixup{at: len(a.prog), jt: jt, jf: jf})
	a.stmt(unix.BPF_JMP|op|unix.BPF_K, k)
}

// ja emits an unconditional jump.
func (a *asm) ja(l label) {
	a.fix = append(a.fix, fixup{at: len(a.prog), jt: l, always: true})
	a.stmt(unix.BPF_JMP|unix.BPF_JA, 0)
}

// unlessFar continues with the next instruction when "A op k" holds and jumps
// to target (at any distance) otherwise.
func (a *asm) unlessFar(op uint16, k uint32, target label) {
	ok := a.newLabel()
	a.jump(op, k, ok, next)
	a.ja(target)
	a.bind(ok)
}

func (a *asm) offset(from int, l label) (int, error) {
	if l == next {
		return 0, nil
	}
	p := a.place[l]
	if p < 0 {
		return 0, fmt.Errorf("internal error: label %d never placed", l)
	}
	off := p - from - 1
	if off < 0 {
		return 0, fmt.Errorf("internal error: backward jump at %d", from)
	}
	return off, nil
}

func (a *asm) assemble() ([]unix.SockFilter, error) {
	for _, f := range a.fix {
		jt, err := a.offset(f.at, f.jt)
		if err != nil {
			return nil, err
		}
		if f.always {
			a.prog[f.at].K = uint32(jt)
			continue
		}
		jf, err := a.offset(f.at, f.jf)
		if err != nil {
			return nil, err
		}
		if jt > 255 || jf > 255 {
			return nil, fmt.Errorf("internal error: conditional jump at %d too far (%d, %d)", f.at, jt, jf)
		}
		a.prog[f.at].Jt, a.prog[f.at].Jf = uint8(jt), uint8(jf)
	}
	return a.prog, nil
}
