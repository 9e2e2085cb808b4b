package idmap

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// HolderArg is the argument that makes xrunc a user namespace holder: a
// process that only keeps its namespace alive until its stdin closes.
const HolderArg = "idmap-holder"

// HolderMain is the holder's main. It never returns.
func HolderMain() {
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// Tree returns a detached copy of the mount tree at source (only the top
// mount unless recursive), id-mapped with the mappings, as an O_PATH fd to
// move_mount into place.
func Tree(source string, recursive bool, uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	userns, err := userNamespace(uids, gids)
	if err != nil {
		return nil, err
	}
	defer userns.Close()
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	setFlags := uint(unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
		setFlags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, source, flags)
	if err != nil {
		return nil, fmt.Errorf("id-mapped mount of %s: clone source: %w", source, err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
	if err := unix.MountSetattr(tree, "", setFlags, attr); err != nil {
		unix.Close(tree)
		if errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("id-mapped mount of %s: the filesystem does not support id-mapped mounts: %w", source, err)
		}
		return nil, fmt.Errorf("id-mapped mount of %s: %w", source, err)
	}
	return os.NewFile(uintptr(tree), "idmapped:"+source), nil
}

// userNamespace returns an fd of a new user namespace with the mappings,
// held by a child process only while it is opened.
func userNamespace(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	cmd := exec.Command("/proc/self/exe", HolderArg)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: toSys(uids),
		GidMappings: toSys(gids),
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		stdin.Close()
		return nil, fmt.Errorf("create user namespace for id-mapped mount: %w", err)
	}
	ns, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/user")
	stdin.Close()
	if werr := cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("user namespace holder: %w", werr)
	}
	if err != nil {
		if ns != nil {
			ns.Close()
		}
		return nil, fmt.Errorf("create user namespace for id-mapped mount: %w", err)
	}
	return ns, nil
}

func toSys(ms []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(ms))
	for i, m := range ms {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}
