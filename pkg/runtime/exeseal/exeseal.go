// Package exeseal makes the sealed in-memory copy of the running binary that
// a container's init executes. Processes in the container can reach the
// init's executable through /proc/<pid>/exe; if that were the host's xrunc
// file, a malicious container could overwrite it (CVE-2019-5736). A sealed
// memfd can be neither written, truncated nor grown.
//
// Internal to xstack; no API stability.
package exeseal

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// mfdExec asks for an executable memfd on kernels that distinguish
// (vm.memfd_noexec, Linux 6.3+); older kernels reject the flag.
const mfdExec = 0x10

// Clone returns a sealed, close-on-exec memfd holding a copy of
// /proc/self/exe. Execute it through /proc/self/fd/N or execveat.
func Clone() (*os.File, error) {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("open /proc/self/exe: %w", err)
	}
	defer self.Close()
	st, err := self.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat /proc/self/exe: %w", err)
	}

	fd, err := unix.MemfdCreate("xrunc", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|mfdExec)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate("xrunc", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "xrunc-sealed")
	ok := false
	defer func() {
		if !ok {
			mem.Close()
		}
	}()

	// Size the file first so the copy does not grow it page by page.
	if err := unix.Ftruncate(fd, st.Size()); err != nil {
		return nil, fmt.Errorf("size memfd: %w", err)
	}
	var off int64
	for off < st.Size() {
		n, err := unix.Sendfile(fd, int(self.Fd()), &off, int(st.Size()-off))
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return nil, fmt.Errorf("copy /proc/self/exe: %w", err)
		}
		if n == 0 {
			return nil, fmt.Errorf("copy /proc/self/exe: short copy at %d of %d bytes", off, st.Size())
		}
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if err := addSeals(fd, seals); err != nil {
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	ok = true
	return mem, nil
}

// addSeals adds seals, retrying EBUSY: the kernel refuses F_SEAL_WRITE
// while a page of the file is still referenced by the copy that filled it
// (it waits for such pins, but only briefly), which happens once in some
// hundreds of creates on a loaded machine.
func addSeals(fd int, seals int) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if _, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != unix.EBUSY {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * time.Millisecond)
	}
	return err
}
