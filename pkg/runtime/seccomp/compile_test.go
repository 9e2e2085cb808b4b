package seccomp

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// input is a struct seccomp_data.
type input struct {
	nr   uint32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (in input) bytes() []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint32(b[0:], in.nr)
	binary.LittleEndian.PutUint32(b[4:], in.arch)
	binary.LittleEndian.PutUint64(b[8:], in.ip)
	for i, a := range in.args {
		binary.LittleEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// run interprets prog the way the kernel's seccomp checker allows: only the
// instructions the compiler emits are accepted, loads must be aligned words
// inside seccomp_data, jumps forward and inside the program.
func run(t *testing.T, prog []unix.SockFilter, in input) uint32 {
	t.Helper()
	data := in.bytes()
	var a uint32
	for pc := 0; ; pc++ {
		if pc >= len(prog) {
			t.Fatalf("pc %d ran off the end of a %d-instruction program", pc, len(prog))
		}
		ins := prog[pc]
		jump := func(cond bool) {
			off := int(ins.Jf)
			if cond {
				off = int(ins.Jt)
			}
			pc += off
		}
		switch ins.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if ins.K%4 != 0 || ins.K+4 > 64 {
				t.Fatalf("pc %d: bad load offset %d", pc, ins.K)
			}
			a = binary.LittleEndian.Uint32(data[ins.K:])
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= ins.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(ins.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			jump(a == ins.K)
		case unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K:
			jump(a > ins.K)
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			jump(a >= ins.K)
		case unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			jump(a&ins.K != 0)
		case unix.BPF_RET | unix.BPF_K:
			return ins.K
		default:
			t.Fatalf("pc %d: unexpected opcode %#x", pc, ins.Code)
		}
	}
}

// checkJumps verifies statically that every jump lands inside the program
// and that the last instruction is a return.
func checkJumps(t *testing.T, prog []unix.SockFilter) {
	t.Helper()
	for pc, ins := range prog {
		if ins.Code&0x07 != unix.BPF_JMP {
			continue
		}
		max := int(ins.Jt)
		if int(ins.Jf) > max {
			max = int(ins.Jf)
		}
		if ins.Code == unix.BPF_JMP|unix.BPF_JA {
			max = int(ins.K)
		}
		if pc+1+max >= len(prog) {
			t.Fatalf("pc %d: jump to %d outside a %d-instruction program", pc, pc+1+max, len(prog))
		}
	}
	if last := prog[len(prog)-1]; last.Code != unix.BPF_RET|unix.BPF_K {
		t.Fatalf("last instruction %#x is not a return", last.Code)
	}
}

func u(v uint) *uint { return &v }

func x64(name string, args ...uint64) input {
	return call(unix.AUDIT_ARCH_X86_64, sysX86_64, name, args)
}
func i386(name string, args ...uint64) input { return call(unix.AUDIT_ARCH_I386, sysI386, name, args) }
func x32(name string, args ...uint64) input  { return call(unix.AUDIT_ARCH_X86_64, sysX32, name, args) }

func call(arch uint32, table syscallTable, name string, args []uint64) input {
	nr, ok := table.lookup(name)
	if !ok {
		panic("no syscall " + name)
	}
	in := input{nr: nr, arch: arch}
	copy(in.args[:], args)
	return in
}

const (
	retAllow   = unix.SECCOMP_RET_ALLOW
	retEPERM   = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retKillPrc = unix.SECCOMP_RET_KILL_PROCESS
)

func errnoRet(e uint32) uint32 { return unix.SECCOMP_RET_ERRNO | e }

func sys(act specs.LinuxSeccompAction, names ...string) specs.LinuxSyscall {
	return specs.LinuxSyscall{Names: names, Action: act}
}

func TestCompileRun(t *testing.T) {
	t.Parallel()
	allowList := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls:      []specs.LinuxSyscall{sys(specs.ActAllow, "read", "write", "exit_group")},
	}
	allArches := func(p specs.LinuxSeccomp) *specs.LinuxSeccomp {
		p.Architectures = []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
		return &p
	}
	actions := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			sys(specs.ActKill, "kexec_load"),
			sys(specs.ActKillThread, "reboot"),
			sys(specs.ActKillProcess, "init_module"),
			sys(specs.ActTrap, "swapon"),
			sys(specs.ActTrace, "swapoff"),
			{Names: []string{"acct"}, Action: specs.ActTrace, ErrnoRet: u(7)},
			sys(specs.ActLog, "sethostname"),
			sys(specs.ActNotify, "setdomainname"),
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: u(42)},
			sys(specs.ActErrno, "rmdir"),
		},
	}
	precedence := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: u(5),
				Args: []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpEqualTo, Value: 0o700}}},
			{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: u(6)},
			{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: u(7)}, // shadowed
			// OR: two alternative rules, default denies.
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: u(0),
				Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0}}},
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: u(0),
				Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 8}}},
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: u(9)},
			// AND: both arguments must match.
			{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: u(97),
				Args: []specs.LinuxSeccompArg{
					{Index: 0, Op: specs.OpEqualTo, Value: 16},
					{Index: 2, Op: specs.OpEqualTo, Value: 9},
				}},
			// Same argument twice: a range check (AND).
			{Names: []string{"setsid"}, Action: specs.ActErrno, ErrnoRet: u(3),
				Args: []specs.LinuxSeccompArg{
					{Index: 0, Op: specs.OpGreaterEqual, Value: 10},
					{Index: 0, Op: specs.OpLessThan, Value: 20},
				}},
		},
	}
	x32Rule := allArches(specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"rt_sigaction", "socketcall"}, Action: specs.ActErrno, ErrnoRet: u(11)}},
	})
	i386Args := allArches(specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"setuid"}, Action: specs.ActErrno, ErrnoRet: u(1),
				Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 1<<32 | 5}}},
			{Names: []string{"setgid"}, Action: specs.ActErrno, ErrnoRet: u(2),
				Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpNotEqual, Value: 1<<32 | 5}}},
		},
	})
	withDefaultErrno := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: u(38),
		Syscalls: []specs.LinuxSyscall{sys(specs.ActAllow, "read")}}
	killDefault := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess,
		Syscalls: []specs.LinuxSyscall{sys(specs.ActAllow, "read")}}

	tests := []struct {
		name string
		p    *specs.LinuxSeccomp
		in   input
		want uint32
	}{
		{"allowed", allowList, x64("read"), retAllow},
		{"allowed exit_group", allowList, x64("exit_group"), retAllow},
		{"denied by default EPERM", allowList, x64("mkdir"), retEPERM},
		{"defaultErrnoRet", withDefaultErrno, x64("openat"), errnoRet(38)},
		{"default kill process", killDefault, x64("openat"), retKillPrc},
		{"kill is kill thread", actions, x64("kexec_load"), unix.SECCOMP_RET_KILL_THREAD},
		{"kill thread", actions, x64("reboot"), unix.SECCOMP_RET_KILL_THREAD},
		{"kill process", actions, x64("init_module"), retKillPrc},
		{"trap", actions, x64("swapon"), unix.SECCOMP_RET_TRAP},
		{"trace default EPERM", actions, x64("swapoff"), unix.SECCOMP_RET_TRACE | 1},
		{"trace errnoRet", actions, x64("acct"), unix.SECCOMP_RET_TRACE | 7},
		{"log", actions, x64("sethostname"), unix.SECCOMP_RET_LOG},
		{"notify", actions, x64("setdomainname"), unix.SECCOMP_RET_USER_NOTIF},
		{"errnoRet mkdir", actions, x64("mkdir"), errnoRet(42)},
		{"errnoRet mkdirat", actions, x64("mkdirat"), errnoRet(42)},
		{"errno default EPERM", actions, x64("rmdir"), retEPERM},
		{"default allow", actions, x64("getpid"), retAllow},
		{"first rule wins", precedence, x64("mkdir", 0, 0o700), errnoRet(5)},
		{"fallback unconditional rule", precedence, x64("mkdir", 0, 0o755), errnoRet(6)},
		{"OR first alternative", precedence, x64("personality", 0), errnoRet(0)},
		{"OR second alternative", precedence, x64("personality", 8), errnoRet(0)},
		{"OR none", precedence, x64("personality", 0xffffffff), errnoRet(9)},
		{"AND both", precedence, x64("socket", 16, 0, 9), errnoRet(97)},
		{"AND first only", precedence, x64("socket", 16, 0, 10), retAllow},
		{"AND second only", precedence, x64("socket", 2, 0, 9), retAllow},
		{"same arg range inside", precedence, x64("setsid", 15), errnoRet(3)},
		{"same arg range below", precedence, x64("setsid", 9), retAllow},
		{"same arg range above", precedence, x64("setsid", 20), retAllow},
		{"i386 absent", allowList, i386("read"), retKillPrc},
		{"x32 absent", allowList, x32("read"), retKillPrc},
		{"x32 absent rt_sigaction", allowList, x32("rt_sigaction"), retKillPrc},
		{"unknown arch", allArches(*allowList), input{nr: 63, arch: unix.AUDIT_ARCH_AARCH64}, retKillPrc},
		{"nr -1 native", allowList, input{nr: 0xffffffff, arch: unix.AUDIT_ARCH_X86_64}, retEPERM},
		{"i386 present allowed", allArches(*allowList), i386("read"), retAllow},
		{"i386 present denied", allArches(*allowList), i386("mkdir"), retEPERM},
		{"x32 present allowed", allArches(*allowList), x32("read"), retAllow},
		{"x32 present denied", allArches(*allowList), x32("mkdir"), retEPERM},
		{"x32 uses x32 numbers", x32Rule, x32("rt_sigaction"), errnoRet(11)},
		{"x32 x86_64 number with x32 bit", x32Rule, input{nr: x32Bit | 13, arch: unix.AUDIT_ARCH_X86_64}, retAllow},
		{"native rt_sigaction", x32Rule, x64("rt_sigaction"), errnoRet(11)},
		{"i386 only syscall", x32Rule, i386("socketcall"), errnoRet(11)},
		{"i386 rt_sigaction", x32Rule, i386("rt_sigaction"), errnoRet(11)},
		{"i386 EQ above 32 bits never", i386Args, i386("setuid", 5), retAllow},
		{"x86_64 EQ 64-bit", i386Args, x64("setuid", 1<<32|5), errnoRet(1)},
		{"x86_64 EQ lo only", i386Args, x64("setuid", 5), retAllow},
		{"i386 NE above 32 bits always", i386Args, i386("setgid", 5), errnoRet(2)},
		{"x86_64 NE equal", i386Args, x64("setgid", 1<<32|5), retAllow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prog, err := Compile(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			checkJumps(t, prog.Filter)
			if got := run(t, prog.Filter, tc.in); got != tc.want {
				t.Errorf("got %#x, want %#x", got, tc.want)
			}
		})
	}
}

// ref is the meaning of an OCI argument comparison on an unsigned 64-bit value.
func ref(op specs.LinuxSeccompOperator, arg, v, v2 uint64) bool {
	switch op {
	case specs.OpEqualTo:
		return arg == v
	case specs.OpNotEqual:
		return arg != v
	case specs.OpLessThan:
		return arg < v
	case specs.OpLessEqual:
		return arg <= v
	case specs.OpGreaterThan:
		return arg > v
	case specs.OpGreaterEqual:
		return arg >= v
	case specs.OpMaskedEqual:
		return arg&v == v2
	}
	panic(op)
}

func TestOperators(t *testing.T) {
	t.Parallel()
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan,
		specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}
	// Values whose high and low words order differently.
	values := []uint64{0, 5, 0xffffffff, 1 << 32, 1<<32 | 5, 2<<32 | 0, 0xffffffff_00000000, 0xffffffff_ffffffff, 0x00000001_fffffff0}
	args := append([]uint64{4, 6, 1<<32 | 4, 1<<32 | 6, 2<<32 | 4, 0<<32 | 0xfffffffe, 0xfffffffe_ffffffff}, values...)
	masks := []struct{ mask, want uint64 }{
		{0xffffffff_ffffffff, 1<<32 | 5}, {0x0000000f_0000000f, 0x00000001_00000005},
		{0xffff0000_00000000, 0}, {0x0000ffff, 5}, {1 << 40, 1 << 40}, {0xf, 0x10},
		{0x0000000f_00000000, 0x00000001_00000000},
	}
	for _, arch := range []struct {
		name string
		mk   func(string, ...uint64) input
		bits int
	}{{"x86_64", x64, 64}, {"x32", x32, 64}, {"i386", i386, 32}} {
		for _, op := range ops {
			type pair struct{ v, v2 uint64 }
			var cmp []pair
			if op == specs.OpMaskedEqual {
				for _, m := range masks {
					cmp = append(cmp, pair{m.mask, m.want})
				}
			} else {
				for _, v := range values {
					cmp = append(cmp, pair{v, 0})
				}
			}
			for _, c := range cmp {
				p := &specs.LinuxSeccomp{
					DefaultAction: specs.ActAllow,
					Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32},
					Syscalls: []specs.LinuxSyscall{{Names: []string{"fchown"}, Action: specs.ActErrno, ErrnoRet: u(99),
						Args: []specs.LinuxSeccompArg{{Index: 3, Op: op, Value: c.v, ValueTwo: c.v2}}}},
				}
				prog, err := Compile(p)
				if err != nil {
					t.Fatal(err)
				}
				checkJumps(t, prog.Filter)
				for _, arg := range args {
					seen := arg
					if arch.bits == 32 {
						seen = uint64(uint32(arg)) // the kernel passes 32-bit arguments
					}
					want := uint32(retAllow)
					if ref(op, seen, c.v, c.v2) {
						want = errnoRet(99)
					}
					in := arch.mk("fchown", 0, 0, 0, seen)
					if got := run(t, prog.Filter, in); got != want {
						t.Errorf("%s %s(arg3=%#x, value=%#x, valueTwo=%#x): got %#x, want %#x", arch.name, op, seen, c.v, c.v2, got, want)
					}
				}
			}
		}
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	one := func(sc specs.LinuxSyscall) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{sys(specs.ActErrno, "read"), sc}}
	}
	tests := []struct {
		name string
		p    *specs.LinuxSeccomp
		want string
	}{
		{"nil", nil, "linux.seccomp: no profile"},
		{"unknown default action", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_FOO"}, `linux.seccomp.defaultAction "SCMP_ACT_FOO": unknown action`},
		{"empty default action", &specs.LinuxSeccomp{}, `linux.seccomp.defaultAction "": unknown action`},
		{"notify default", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, `linux.seccomp.defaultAction "SCMP_ACT_NOTIFY": not supported`},
		{"defaultErrnoRet with allow", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: u(1)}, `linux.seccomp.defaultErrnoRet 1: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not "SCMP_ACT_ALLOW"`},
		{"unknown action", one(sys("SCMP_ACT_FOO", "write")), `linux.seccomp.syscalls[1].action "SCMP_ACT_FOO": unknown action`},
		{"errnoRet with kill", one(specs.LinuxSyscall{Names: []string{"write"}, Action: specs.ActKill, ErrnoRet: u(3)}), `linux.seccomp.syscalls[1].errnoRet 3: only valid`},
		{"errnoRet too big", one(specs.LinuxSyscall{Names: []string{"write"}, Action: specs.ActErrno, ErrnoRet: u(70000)}), `linux.seccomp.syscalls[1].errnoRet 70000: out of range`},
		{"bad index", one(specs.LinuxSyscall{Names: []string{"write"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo}, {Index: 6, Op: specs.OpEqualTo}}}), `linux.seccomp.syscalls[1].args[1].index 6: out of range 0-5`},
		{"bad op", one(specs.LinuxSyscall{Names: []string{"write"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_FOO"}}}), `linux.seccomp.syscalls[1].args[0].op "SCMP_CMP_FOO": unknown operator`},
		{"too many args", one(specs.LinuxSyscall{Names: []string{"write"}, Action: specs.ActErrno,
			Args: make([]specs.LinuxSeccompArg, 33)}), `linux.seccomp.syscalls[1].args: 33 conditions`},
		{"no names", one(specs.LinuxSyscall{Action: specs.ActErrno}), `linux.seccomp.syscalls[1].names: empty`},
		{"empty name", one(sys(specs.ActErrno, "write", "")), `linux.seccomp.syscalls[1].names[1]: empty name`},
		{"bad arch", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86, "SCMP_ARCH_FOO"}}, `linux.seccomp.architectures[1] "SCMP_ARCH_FOO": unknown architecture`},
		{"bad flag", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FOO"}}, `linux.seccomp.flags[0] "SECCOMP_FILTER_FLAG_FOO": unknown flag`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tc.p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCompileResult(t *testing.T) {
	t.Parallel()
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64, specs.ArchAARCH64},
		Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog,
			specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv},
		Syscalls: []specs.LinuxSyscall{
			sys(specs.ActErrno, "read", "no_such_call", "socketcall"),
			sys(specs.ActNotify, "no_such_call", "another_new_call"),
		},
	}
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"SCMP_ARCH_AARCH64", "no_such_call", "another_new_call"}; !reflect.DeepEqual(prog.Unknown, want) {
		t.Errorf("Unknown = %q, want %q", prog.Unknown, want)
	}
	wantFlags := uint(unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG |
		unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	if prog.Flags != wantFlags {
		t.Errorf("Flags = %#x, want %#x", prog.Flags, wantFlags)
	}
	if !prog.Notify {
		t.Error("Notify = false, want true")
	}
	// socketcall is an i386 syscall: known, but absent from an x86_64-only filter.
	if got := run(t, prog.Filter, i386("socketcall")); got != retKillPrc {
		t.Errorf("i386 socketcall: got %#x", got)
	}
}

// bigProfile resembles docker's default profile: ~350 allowed names, a few
// conditional rules, the three x86 ABIs and an ERRNO default.
func bigProfile(n int) *specs.LinuxSeccomp {
	names := make([]string, 0, len(sysX86_64))
	for _, e := range sysX86_64 {
		switch e.name {
		case "personality", "clone", "socket":
			continue
		}
		names = append(names, e.name)
	}
	sort.Strings(names)
	names = names[:n]
	// Include i386/x32-only names as docker does.
	names = append(names, "socketcall", "_llseek", "fstat64", "nonexistent_call")
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: names, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0}}},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 8}}},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0x20000}}},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0xffffffff}}},
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpMaskedEqual, Value: 0x7e020000, ValueTwo: 0}}},
			{Names: []string{"clone"}, Action: specs.ActErrno, ErrnoRet: u(38)},
			{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: u(22), Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 40}}},
			{Names: []string{"socket"}, Action: specs.ActAllow},
		},
	}
}

func TestBigProfile(t *testing.T) {
	t.Parallel()
	prog, err := Compile(bigProfile(350))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d instructions", len(prog.Filter))
	if len(prog.Filter) >= MaxInstructions {
		t.Fatalf("%d instructions, want < %d", len(prog.Filter), MaxInstructions)
	}
	checkJumps(t, prog.Filter)
	if want := []string{"nonexistent_call"}; !reflect.DeepEqual(prog.Unknown, want) {
		t.Errorf("Unknown = %q, want %q", prog.Unknown, want)
	}
	tests := []struct {
		in   input
		want uint32
	}{
		{x64("read"), retAllow},
		{i386("read"), retAllow},
		{x32("read"), retAllow},
		{i386("socketcall"), retAllow},
		{x64("personality", 8), retAllow},
		{i386("personality", 0xffffffff), retAllow},
		{x64("personality", 1), retEPERM},
		{x64("clone", 0x11), retAllow},
		{x64("clone", unix.CLONE_NEWUSER), errnoRet(38)},
		{x32("clone", unix.CLONE_NEWNS|1<<40), errnoRet(38)},
		{x64("socket", 40), errnoRet(22)},
		{x64("socket", 1<<32|40), retAllow},
		{i386("socket", 1<<32|40), errnoRet(22)}, // i386 sees only the low word
		{x64("socket", 2), retAllow},
		{input{nr: 1000, arch: unix.AUDIT_ARCH_X86_64}, retEPERM},
		{input{nr: 1000, arch: unix.AUDIT_ARCH_AARCH64}, retKillPrc},
	}
	for _, tc := range tests {
		if got := run(t, prog.Filter, tc.in); got != tc.want {
			t.Errorf("%+v: got %#x, want %#x", tc.in, got, tc.want)
		}
	}
	// Every name of every ABI reaches a verdict without leaving the program.
	for _, tab := range []struct {
		arch  uint32
		table syscallTable
	}{{unix.AUDIT_ARCH_X86_64, sysX86_64}, {unix.AUDIT_ARCH_X86_64, sysX32}, {unix.AUDIT_ARCH_I386, sysI386}} {
		for _, e := range tab.table {
			got := run(t, prog.Filter, input{nr: e.nr, arch: tab.arch})
			if got != retAllow && got != retEPERM && got != errnoRet(38) {
				t.Errorf("%s (%#x): unexpected %#x", e.name, e.nr, got)
			}
		}
	}
}

func TestTables(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		table syscallTable
		name  string
		nr    uint32
		ok    bool
	}{
		{sysX86_64, "read", 0, true}, {sysX86_64, "mkdir", 83, true}, {sysX86_64, "seccomp", unix.SYS_SECCOMP, true},
		{sysX86_64, "_sysctl", 0x9c, true}, {sysX86_64, "socketcall", 0, false}, {sysX86_64, "", 0, false},
		{sysI386, "read", 3, true}, {sysI386, "socketcall", 102, true},
		{sysX32, "read", x32Bit, true}, {sysX32, "rt_sigaction", x32Bit | 512, true},
	} {
		if got, ok := tc.table.lookup(tc.name); ok != tc.ok || got != tc.nr {
			t.Errorf("%q = %#x (%v), want %#x (%v)", tc.name, got, ok, tc.nr, tc.ok)
		}
	}
	// lookup is a binary search: every table must be sorted, and every
	// entry found.
	for _, table := range []syscallTable{sysX86_64, sysI386, sysX32} {
		if !slices.IsSortedFunc(table, func(a, b syscallNr) int { return strings.Compare(a.name, b.name) }) {
			t.Fatal("a syscall table is not sorted by name")
		}
		for _, e := range table {
			if nr, ok := table.lookup(e.name); !ok || nr != e.nr {
				t.Errorf("lookup(%q) = %#x, %v; want %#x", e.name, nr, ok, e.nr)
			}
		}
	}
}

func ExampleCompile() {
	prog, err := Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "frobnicate"}, Action: specs.ActErrno}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(prog.Unknown, prog.Notify)
	// Output: [frobnicate] false
}
