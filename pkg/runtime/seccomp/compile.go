package seccomp

import (
	"fmt"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Program is a compiled profile, ready for Load.
type Program struct {
	// Filter is the classic BPF program (at most MaxInstructions long).
	Filter []unix.SockFilter
	// Flags are the SECCOMP_FILTER_FLAG_* bits the profile asked for.
	// Load adds SECCOMP_FILTER_FLAG_NEW_LISTENER itself when Notify is set.
	Flags uint
	// Notify is true when a rule uses SCMP_ACT_NOTIFY: Load then asks the
	// kernel for a listener fd.
	Notify bool
	// Unknown lists, in profile order and without duplicates, the syscall
	// names no x86 ABI knows and the architectures that are not x86 ones.
	// They were skipped; the caller should warn about them.
	Unknown []string
}

// MaxInstructions is the kernel's limit on a classic BPF program (BPF_MAXINSNS).
const MaxInstructions = 4096

// BadArchAction is returned for a syscall made through an ABI the filter does
// not include.
const BadArchAction = unix.SECCOMP_RET_KILL_PROCESS

// maxConditions bounds the args of one rule so that every jump inside a rule
// stays short (each condition needs at most 7 instructions).
const maxConditions = 32

const (
	x32Bit = 0x40000000 // __X32_SYSCALL_BIT

	// Offsets in struct seccomp_data (little endian).
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// abi is one syscall ABI the filter handles.
type abi struct {
	name   specs.Arch
	table  syscallTable
	args32 bool // arguments are 32 bits wide: the high word is always 0
}

var (
	abiX86_64 = &abi{name: specs.ArchX86_64, table: sysX86_64}
	abiI386   = &abi{name: specs.ArchX86, table: sysI386, args32: true}
	abiX32    = &abi{name: specs.ArchX32, table: sysX32}
)

// knownArches are the runtime-spec architectures; those without an ABI here
// cannot occur on an x86_64 kernel and are ignored.
var knownArches = map[specs.Arch]*abi{
	specs.ArchX86_64: abiX86_64, specs.ArchX86: abiI386, specs.ArchX32: abiX32,
	specs.ArchARM: nil, specs.ArchAARCH64: nil, specs.ArchMIPS: nil, specs.ArchMIPS64: nil,
	specs.ArchMIPS64N32: nil, specs.ArchMIPSEL: nil, specs.ArchMIPSEL64: nil,
	specs.ArchMIPSEL64N32: nil, specs.ArchPPC: nil, specs.ArchPPC64: nil,
	specs.ArchPPC64LE: nil, specs.ArchS390: nil, specs.ArchS390X: nil,
	specs.ArchPARISC: nil, specs.ArchPARISC64: nil, specs.ArchRISCV64: nil,
	specs.ArchLOONGARCH64: nil, specs.ArchM68K: nil, specs.ArchSH: nil, specs.ArchSHEB: nil,
}

var flagBits = map[specs.LinuxSeccompFlag]uint{
	"SECCOMP_FILTER_FLAG_TSYNC":            unix.SECCOMP_FILTER_FLAG_TSYNC,
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

// cond is one validated argument comparison.
type cond struct {
	index  uint
	op     specs.LinuxSeccompOperator
	value  uint64 // mask for MASKED_EQ
	value2 uint64 // expected value for MASKED_EQ
}

// rule is one validated syscalls[] entry.
type rule struct {
	conds []cond
	ret   uint32
}

// Compile validates the profile and turns it into a BPF program for an
// x86_64 kernel. Validation errors name the offending field.
func Compile(p *specs.LinuxSeccomp) (*Program, error) {
	if p == nil {
		return nil, fmt.Errorf("linux.seccomp: no profile")
	}
	prog := &Program{}
	unknown := map[string]bool{}
	addUnknown := func(s string) {
		if !unknown[s] {
			unknown[s] = true
			prog.Unknown = append(prog.Unknown, s)
		}
	}

	if p.DefaultAction == specs.ActNotify {
		return nil, fmt.Errorf("linux.seccomp.defaultAction %q: not supported as the default action", p.DefaultAction)
	}
	def, err := actionRet("linux.seccomp.defaultAction", p.DefaultAction, "linux.seccomp.defaultErrnoRet", p.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}

	var useI386, useX32 bool
	for i, a := range p.Architectures {
		x, ok := knownArches[a]
		switch {
		case !ok:
			return nil, fmt.Errorf("linux.seccomp.architectures[%d] %q: unknown architecture", i, a)
		case x == nil:
			addUnknown(string(a))
		case x == abiI386:
			useI386 = true
		case x == abiX32:
			useX32 = true
		}
	}
	abis := []*abi{abiX86_64}
	if useX32 {
		abis = append(abis, abiX32)
	}
	if useI386 {
		abis = append(abis, abiI386)
	}

	for i, f := range p.Flags {
		bit, ok := flagBits[f]
		if !ok {
			return nil, fmt.Errorf("linux.seccomp.flags[%d] %q: unknown flag", i, f)
		}
		prog.Flags |= bit
	}

	// rules[abi][nr] lists the rules for one syscall in profile order.
	rules := make(map[*abi]map[uint32][]rule, len(abis))
	for _, x := range abis {
		rules[x] = map[uint32][]rule{}
	}
	for i, sc := range p.Syscalls {
		field := fmt.Sprintf("linux.seccomp.syscalls[%d]", i)
		r, err := compileRule(field, sc)
		if err != nil {
			return nil, err
		}
		if sc.Action == specs.ActNotify {
			prog.Notify = true
		}
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("%s.names: empty", field)
		}
		for j, name := range sc.Names {
			if name == "" {
				return nil, fmt.Errorf("%s.names[%d]: empty name", field, j)
			}
			_, in64 := sysX86_64.lookup(name)
			_, in32 := sysI386.lookup(name)
			_, inX32 := sysX32.lookup(name)
			if !in64 && !in32 && !inX32 {
				addUnknown(name)
				continue
			}
			for _, x := range abis {
				if nr, ok := x.table.lookup(name); ok {
					rules[x][nr] = append(rules[x][nr], r)
				}
			}
		}
	}

	a := &asm{}
	notNative, bad := a.newLabel(), a.newLabel()
	a.load(offArch)
	a.unlessFar(unix.BPF_JEQ, unix.AUDIT_ARCH_X86_64, notNative)
	a.load(offNr)
	native := a.newLabel()
	a.jump(unix.BPF_JGE, x32Bit, next, native)
	a.jump(unix.BPF_JEQ, 0xffffffff, native, next)
	if useX32 {
		x32 := a.newLabel()
		a.ja(x32)
		a.bind(native)
		dispatch(a, abiX86_64, rules[abiX86_64], def)
		a.bind(x32)
		dispatch(a, abiX32, rules[abiX32], def)
	} else {
		a.ret(BadArchAction)
		a.bind(native)
		dispatch(a, abiX86_64, rules[abiX86_64], def)
	}
	a.bind(notNative)
	if useI386 {
		a.unlessFar(unix.BPF_JEQ, unix.AUDIT_ARCH_I386, bad)
		dispatch(a, abiI386, rules[abiI386], def)
	}
	a.bind(bad)
	a.ret(BadArchAction)

	prog.Filter, err = a.assemble()
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	if len(prog.Filter) > MaxInstructions {
		return nil, fmt.Errorf("linux.seccomp: compiled filter has %d instructions, more than the kernel limit of %d", len(prog.Filter), MaxInstructions)
	}
	return prog, nil
}

// compileRule validates one syscalls[] entry (except its names).
func compileRule(field string, sc specs.LinuxSyscall) (rule, error) {
	ret, err := actionRet(field+".action", sc.Action, field+".errnoRet", sc.ErrnoRet)
	if err != nil {
		return rule{}, err
	}
	if len(sc.Args) > maxConditions {
		return rule{}, fmt.Errorf("%s.args: %d conditions, at most %d supported", field, len(sc.Args), maxConditions)
	}
	r := rule{ret: ret}
	for k, arg := range sc.Args {
		af := fmt.Sprintf("%s.args[%d]", field, k)
		if arg.Index > 5 {
			return rule{}, fmt.Errorf("%s.index %d: out of range 0-5", af, arg.Index)
		}
		switch arg.Op {
		case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
			specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
		default:
			return rule{}, fmt.Errorf("%s.op %q: unknown operator", af, arg.Op)
		}
		r.conds = append(r.conds, cond{index: arg.Index, op: arg.Op, value: arg.Value, value2: arg.ValueTwo})
	}
	return r, nil
}

// actionRet returns the SECCOMP_RET_* value for an action.
func actionRet(field string, act specs.LinuxSeccompAction, errnoField string, errno *uint) (uint32, error) {
	data := uint32(unix.EPERM)
	if errno != nil {
		if act != specs.ActErrno && act != specs.ActTrace {
			return 0, fmt.Errorf("%s %d: only valid with %s or %s, not %q", errnoField, *errno, specs.ActErrno, specs.ActTrace, act)
		}
		if *errno > unix.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("%s %d: out of range 0-%d", errnoField, *errno, unix.SECCOMP_RET_DATA)
		}
		data = uint32(*errno)
	}
	switch act {
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return unix.SECCOMP_RET_USER_NOTIF, nil
	}
	return 0, fmt.Errorf("%s %q: unknown action", field, act)
}

// groupSize bounds a run of "jeq nr" instructions sharing one return, so
// their jumps stay under 256.
const groupSize = 200

// dispatch emits the code for one ABI. It starts by loading the syscall
// number and always ends with a return.
func dispatch(a *asm, x *abi, byNr map[uint32][]rule, def uint32) {
	a.load(offNr)
	nrs := make([]uint32, 0, len(byNr))
	for nr := range byNr {
		nrs = append(nrs, nr)
	}
	sort.Slice(nrs, func(i, j int) bool { return nrs[i] < nrs[j] })

	// Syscalls whose first rule is unconditional have a fixed answer; group
	// them by answer. The others get a body of conditional rules.
	fixed := map[uint32][]uint32{}
	var conditional []uint32
	for _, nr := range nrs {
		rs := byNr[nr]
		if len(rs[0].conds) == 0 {
			if rs[0].ret != def {
				fixed[rs[0].ret] = append(fixed[rs[0].ret], nr)
			}
			continue
		}
		conditional = append(conditional, nr)
	}
	rets := make([]uint32, 0, len(fixed))
	for r := range fixed {
		rets = append(rets, r)
	}
	sort.Slice(rets, func(i, j int) bool { return rets[i] < rets[j] })
	for _, r := range rets {
		list := fixed[r]
		for len(list) > 0 {
			n := min(len(list), groupSize)
			hit, after := a.newLabel(), a.newLabel()
			for _, nr := range list[:n] {
				a.jump(unix.BPF_JEQ, nr, hit, next)
			}
			a.ja(after)
			a.bind(hit)
			a.ret(r)
			a.bind(after)
			list = list[n:]
		}
	}
	for _, nr := range conditional {
		skip := a.newLabel()
		a.unlessFar(unix.BPF_JEQ, nr, skip)
		for _, r := range byNr[nr] {
			fail := a.newLabel()
			for _, c := range r.conds {
				emitCond(a, c, x.args32, fail)
			}
			a.ret(r.ret)
			a.bind(fail)
			if len(r.conds) == 0 {
				break // later rules can never be reached
			}
		}
		a.ret(def)
		a.bind(skip) // A still holds the syscall number here
	}
	a.ret(def)
}

// emitCond emits one comparison: it falls through when the condition holds
// and jumps to fail otherwise. It clobbers A.
func emitCond(a *asm, c cond, args32 bool, fail label) {
	lo := uint32(offArgs + 8*c.index)
	hi := lo + 4
	vHi, vLo := uint32(c.value>>32), uint32(c.value)
	ok := a.newLabel()
	defer a.bind(ok)

	if args32 {
		// The argument's high word is 0: decide the high-word part now.
		switch c.op {
		case specs.OpEqualTo, specs.OpGreaterThan, specs.OpGreaterEqual:
			if vHi != 0 {
				a.ja(fail)
				return
			}
		case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual:
			if vHi != 0 {
				return // always true
			}
		case specs.OpMaskedEqual:
			if uint32(c.value2>>32) != 0 {
				a.ja(fail)
				return
			}
		}
		a.load(lo)
		switch c.op {
		case specs.OpEqualTo:
			a.jump(unix.BPF_JEQ, vLo, next, fail)
		case specs.OpNotEqual:
			a.jump(unix.BPF_JEQ, vLo, fail, next)
		case specs.OpGreaterThan:
			a.jump(unix.BPF_JGT, vLo, next, fail)
		case specs.OpGreaterEqual:
			a.jump(unix.BPF_JGE, vLo, next, fail)
		case specs.OpLessThan:
			a.jump(unix.BPF_JGE, vLo, fail, next)
		case specs.OpLessEqual:
			a.jump(unix.BPF_JGT, vLo, fail, next)
		case specs.OpMaskedEqual:
			a.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, vLo)
			a.jump(unix.BPF_JEQ, uint32(c.value2), next, fail)
		}
		return
	}

	a.load(hi)
	switch c.op {
	case specs.OpEqualTo:
		a.jump(unix.BPF_JEQ, vHi, next, fail)
		a.load(lo)
		a.jump(unix.BPF_JEQ, vLo, next, fail)
	case specs.OpNotEqual:
		a.jump(unix.BPF_JEQ, vHi, next, ok)
		a.load(lo)
		a.jump(unix.BPF_JEQ, vLo, fail, next)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		a.jump(unix.BPF_JGT, vHi, ok, next)
		a.jump(unix.BPF_JEQ, vHi, next, fail)
		a.load(lo)
		op := uint16(unix.BPF_JGT)
		if c.op == specs.OpGreaterEqual {
			op = unix.BPF_JGE
		}
		a.jump(op, vLo, next, fail)
	case specs.OpLessThan, specs.OpLessEqual:
		// LT is "not GE", LE is "not GT".
		a.jump(unix.BPF_JGT, vHi, fail, next)
		a.jump(unix.BPF_JEQ, vHi, next, ok)
		a.load(lo)
		op := uint16(unix.BPF_JGE)
		if c.op == specs.OpLessEqual {
			op = unix.BPF_JGT
		}
		a.jump(op, vLo, fail, next)
	case specs.OpMaskedEqual:
		m2Hi, m2Lo := uint32(c.value2>>32), uint32(c.value2)
		a.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, vHi)
		a.jump(unix.BPF_JEQ, m2Hi, next, fail)
		a.load(lo)
		a.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, vLo)
		a.jump(unix.BPF_JEQ, m2Lo, next, fail)
	}
}
