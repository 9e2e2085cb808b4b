package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Load installs prog with seccomp(SECCOMP_SET_MODE_FILTER) on the calling
// thread (on all threads of the process when the profile asked for
// SECCOMP_FILTER_FLAG_TSYNC). The caller must have set no_new_privs or hold
// CAP_SYS_ADMIN, and, without TSYNC, must run on a locked OS thread and
// execve from it.
//
// When prog.Notify is set Load adds SECCOMP_FILTER_FLAG_NEW_LISTENER (and
// TSYNC_ESRCH if TSYNC is set, since the kernel refuses TSYNC with a
// listener otherwise) and returns the listener fd, which the kernel opens
// close-on-exec; otherwise it drops WAIT_KILLABLE_RECV, which the kernel only
// accepts with a listener, and returns -1.
func Load(prog *Program) (listenerFd int, err error) {
	if runtime.GOARCH != "amd64" {
		return -1, fmt.Errorf("seccomp: filter compiled for x86_64, running on %s", runtime.GOARCH)
	}
	if prog == nil || len(prog.Filter) == 0 {
		return -1, fmt.Errorf("seccomp: empty program")
	}
	if len(prog.Filter) > MaxInstructions {
		return -1, fmt.Errorf("seccomp: program has %d instructions, more than %d", len(prog.Filter), MaxInstructions)
	}
	flags := prog.Flags
	if prog.Notify {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 {
			flags |= unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		}
	} else {
		flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	}
	fprog := unix.SockFprog{Len: uint16(len(prog.Filter)), Filter: &prog.Filter[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog.Filter)
	if errno != 0 {
		return -1, fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, flags %#x): %w", flags, errno)
	}
	if prog.Notify {
		return int(r), nil
	}
	if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 && r != 0 {
		return -1, fmt.Errorf("seccomp: SECCOMP_FILTER_FLAG_TSYNC: thread %d could not be synchronised", r)
	}
	return -1, nil
}
