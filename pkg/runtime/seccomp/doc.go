// Package seccomp compiles the OCI runtime-spec seccomp profile
// (linux.seccomp) into a classic BPF program for x86_64 hosts and installs it
// with seccomp(2). It is pure Go: no libseccomp, no cgo.
//
// # Program shape
//
// The filter first checks seccomp_data.arch:
//
//   - AUDIT_ARCH_X86_64 (always compiled in). Syscall numbers with the x32 bit
//     (0x40000000) set are x32 calls: they go to the x32 section when the
//     profile lists SCMP_ARCH_X32 and to the bad-arch action otherwise, as
//     libseccomp does, so a deny-list profile cannot be bypassed through the
//     x32 ABI. The number -1 (0xffffffff, used by tracers to skip a call) is
//     treated as a native number and so reaches the default action.
//   - AUDIT_ARCH_I386, only when the profile lists SCMP_ARCH_X86.
//   - anything else: the bad-arch action, SECCOMP_RET_KILL_PROCESS.
//     libseccomp's default bad-arch action is KILL (kill the thread); we kill
//     the whole process because a multi-threaded process that loses one
//     thread is left in an undefined state.
//
// Other architectures named in the profile (SCMP_ARCH_AARCH64, ...) cannot
// occur on an x86_64 kernel; they are ignored and reported in
// Program.Unknown. Strings that are not runtime-spec architectures are
// errors.
//
// # Rules
//
// Syscall names are resolved per ABI with tables generated from the kernel
// UAPI headers (see syscalls_generated.go and internal/gen). A name unknown
// to all three x86 ABIs is skipped and reported in Program.Unknown, as runc
// does (the profile may be newer than the headers); a name that exists only
// in another compiled ABI (socketcall is i386-only) is silently skipped for
// the ABIs that lack it.
//
// Precedence: for one syscall, the rules are tried in profile order and the
// first rule whose conditions all hold decides; when none holds, the default
// action applies. (libseccomp instead orders rules by action priority;
// profile order is simpler to reason about and gives the same answer for
// profiles whose rules for one syscall do not overlap, which is the case of
// the docker/containerd default profiles.) The conditions of one rule are
// ANDed, including several conditions on the same argument (runc splits
// those into separate, ORed rules; we do not).
//
// Argument values are compared as unsigned 64-bit numbers, the high word
// first. For i386 the kernel only passes 32-bit arguments, so the high word
// is taken as zero and conditions are folded accordingly (EQ with a value
// above 2^32-1 never matches, NE always does). x32 calls receive 64-bit
// registers and are compared on 64 bits.
//
// SCMP_ACT_KILL is SECCOMP_RET_KILL_THREAD, as in libseccomp.
// SCMP_ACT_ERRNO and SCMP_ACT_TRACE put errnoRet (default EPERM) in
// SECCOMP_RET_DATA. SCMP_ACT_NOTIFY is refused as the default action.
//
// Internal to xstack; no API stability.
package seccomp

//go:generate go run ./internal/gen -include /usr/include/x86_64-linux-gnu/asm -o syscalls_generated.go
