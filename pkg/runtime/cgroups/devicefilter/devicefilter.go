package devicefilter

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Apply loads the filter for rules and makes it the only device program of
// the cgroup v2 directory dir: the new program is attached first, then the
// ones it replaces are detached, so the cgroup is never left unfiltered.
func Apply(dir string, rules []specs.LinuxDeviceCgroup) error {
	prog, err := program(rules)
	if err != nil {
		return err
	}
	progFd, err := load(encode(prog))
	if err != nil {
		return fmt.Errorf("load device filter: %w", err)
	}
	defer unix.Close(progFd)
	cg, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("device filter: %w", err)
	}
	defer cg.Close()
	old, err := attached(int(cg.Fd()))
	if err != nil {
		return fmt.Errorf("device filter: query %s: %w", dir, err)
	}
	if err := attach(unix.BPF_PROG_ATTACH, int(cg.Fd()), progFd, unix.BPF_F_ALLOW_MULTI); err != nil {
		return fmt.Errorf("device filter: attach to %s: %w", dir, err)
	}
	var errs []error
	for _, id := range old {
		if err := detachID(int(cg.Fd()), id); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("device filter: detach the previous filter from %s: %w", dir, errors.Join(errs...))
	}
	return nil
}

func bpf(cmd uintptr, attr unsafe.Pointer, size uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), size)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

// progLoadAttr is the BPF_PROG_LOAD part of union bpf_attr.
type progLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64
	license     uint64
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
}

func load(code []byte) (int, error) {
	license := []byte("Apache-2.0\x00")
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(code) / 8),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err == nil {
		runtime.KeepAlive(code)
		runtime.KeepAlive(license)
		return int(fd), nil
	}
	// Load again with the verifier's log, to say why.
	log := make([]byte, 64<<10)
	attr.logLevel, attr.logSize, attr.logBuf = 1, uint32(len(log)), uint64(uintptr(unsafe.Pointer(&log[0])))
	if fd, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err2 == nil {
		unix.Close(int(fd)) // accepted the second time: report the first error alone
	} else if msg := unix.ByteSliceToString(log); msg != "" {
		err = fmt.Errorf("%w: verifier: %s", err, msg)
	}
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	return -1, err
}

// progAttachAttr is the BPF_PROG_ATTACH/DETACH part of union bpf_attr.
type progAttachAttr struct {
	targetFd    uint32
	attachBpfFd uint32
	attachType  uint32
	attachFlags uint32
}

func attach(cmd uintptr, target, prog int, flags uint32) error {
	attr := progAttachAttr{targetFd: uint32(target), attachBpfFd: uint32(prog), attachType: unix.BPF_CGROUP_DEVICE, attachFlags: flags}
	_, err := bpf(cmd, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// progQueryAttr is the BPF_PROG_QUERY part of union bpf_attr.
type progQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64
	progCnt     uint32
	_           uint32
}

// attached lists the ids of the device programs attached to the cgroup.
func attached(cg int) ([]uint32, error) {
	ids := make([]uint32, 64)
	attr := progQueryAttr{targetFd: uint32(cg), attachType: unix.BPF_CGROUP_DEVICE,
		progIDs: uint64(uintptr(unsafe.Pointer(&ids[0]))), progCnt: uint32(len(ids))}
	_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(ids)
	if err != nil {
		return nil, err
	}
	return ids[:attr.progCnt], nil
}

func detachID(cg int, id uint32) error {
	attr := struct{ progID, nextID, openFlags uint32 }{progID: id}
	fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		return fmt.Errorf("program %d: %w", id, err)
	}
	defer unix.Close(int(fd))
	return attach(unix.BPF_PROG_DETACH, cg, int(fd), 0)
}
