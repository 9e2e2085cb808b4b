package specgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/xstack/xstack/pkg/safepath"
)

// maxIDFileSize bounds how much of an image's /etc/passwd or /etc/group xd
// reads: the image is untrusted and xd must not be made to hold gigabytes.
const maxIDFileSize = 16 << 20

type passwdEntry struct {
	name     string
	uid, gid uint32
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// ResolveUser resolves a user string the way docker and containerd do:
// "" (root), "name", "uid", "uid:gid", "name:group", "uid:group" or
// "name:gid". Names are looked up in rootfs's /etc/passwd and /etc/group;
// without those files only numeric ids work. The primary gid is the one
// given, else the passwd entry's, else 0. AdditionalGids holds the primary
// gid first (so a group denied by permissions cannot be shed with a setgid
// execve: CVE-2022-36109, GHSA-hmfx-3pcx-653p) and then every group of
// /etc/group that lists the user by name.
func ResolveUser(rootfs, user string) (specs.User, error) {
	userPart, groupPart, hasGroup := strings.Cut(user, ":")
	if user == "" {
		userPart = "0"
	}
	switch {
	case userPart == "":
		return specs.User{}, fmt.Errorf("user %q: empty user name or uid", user)
	case hasGroup && groupPart == "":
		return specs.User{}, fmt.Errorf("user %q: empty group name or gid", user)
	case strings.Contains(groupPart, ":"):
		return specs.User{}, fmt.Errorf("user %q: want user[:group]", user)
	}

	root, err := openRoot(rootfs)
	if err != nil {
		return specs.User{}, err
	}
	defer root.Close()
	passwd, err := readPasswd(root)
	if err != nil {
		return specs.User{}, err
	}
	groups, err := readGroup(root)
	if err != nil {
		return specs.User{}, err
	}

	var u specs.User
	var name string // the user's name in /etc/passwd, if it has an entry
	if isNumeric(userPart) {
		uid, err := parseID(userPart)
		if err != nil {
			return specs.User{}, fmt.Errorf("user %q: uid: %w", user, err)
		}
		u.UID = uid
		for _, p := range passwd {
			if p.uid == uid {
				u.GID, name = p.gid, p.name
				break
			}
		}
	} else {
		if passwd == nil {
			return specs.User{}, fmt.Errorf("user %q: no /etc/passwd in the rootfs to look up name %q", user, userPart)
		}
		found := false
		for _, p := range passwd {
			if p.name == userPart {
				u.UID, u.GID, name, found = p.uid, p.gid, p.name, true
				break
			}
		}
		if !found {
			return specs.User{}, fmt.Errorf("user %q: unknown user %q: not in the rootfs's /etc/passwd", user, userPart)
		}
	}

	if hasGroup {
		if isNumeric(groupPart) {
			gid, err := parseID(groupPart)
			if err != nil {
				return specs.User{}, fmt.Errorf("user %q: gid: %w", user, err)
			}
			u.GID = gid
		} else {
			if groups == nil {
				return specs.User{}, fmt.Errorf("user %q: no /etc/group in the rootfs to look up group %q", user, groupPart)
			}
			found := false
			for _, g := range groups {
				if g.name == groupPart {
					u.GID, found = g.gid, true
					break
				}
			}
			if !found {
				return specs.User{}, fmt.Errorf("user %q: unknown group %q: not in the rootfs's /etc/group", user, groupPart)
			}
		}
	}

	u.AdditionalGids = []uint32{u.GID}
	if name != "" {
		for _, g := range groups {
			if containsString(g.members, name) && !containsUint32(u.AdditionalGids, g.gid) {
				u.AdditionalGids = append(u.AdditionalGids, g.gid)
			}
		}
	}
	return u, nil
}

func isNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// parseID parses a decimal uid or gid. Like docker it refuses ids above
// 2^31-1: the kernel's (uid_t)-1 means "unchanged" and large ids are
// usually a sign-extended mistake.
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > math.MaxInt32 {
		return 0, fmt.Errorf("%q out of range 0-%d", s, math.MaxInt32)
	}
	return uint32(n), nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func containsUint32(list []uint32, n uint32) bool {
	for _, v := range list {
		if v == n {
			return true
		}
	}
	return false
}

func openRoot(rootfs string) (*os.File, error) {
	if rootfs == "" {
		return nil, errors.New("rootfs: empty path")
	}
	fd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", &os.PathError{Op: "open", Path: rootfs, Err: err})
	}
	return os.NewFile(uintptr(fd), rootfs), nil
}

// readIDFile reads path inside root. Every symlink is resolved as if root
// were "/", so a link to a host file (absolute or through "..") reaches
// only what the rootfs itself holds. It returns nil, nil when the file does
// not exist. O_NONBLOCK keeps a FIFO planted by the image from blocking xd;
// anything but a regular file is refused.
func readIDFile(root *os.File, path string) ([]byte, error) {
	f, err := safepath.Open(root, path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rootfs %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("rootfs %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("rootfs %s: not a regular file (%s)", path, st.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxIDFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("rootfs %s: %w", path, err)
	}
	if len(data) > maxIDFileSize {
		return nil, fmt.Errorf("rootfs %s: larger than %d bytes", path, maxIDFileSize)
	}
	if data == nil {
		data = []byte{} // present but empty is not "missing"
	}
	return data, nil
}

// readPasswd returns the entries of the rootfs's /etc/passwd, nil if it has
// none. Malformed lines are skipped, as libc does.
func readPasswd(root *os.File) ([]passwdEntry, error) {
	data, err := readIDFile(root, "/etc/passwd")
	if data == nil || err != nil {
		return nil, err
	}
	entries := []passwdEntry{}
	for _, f := range splitLines(data) {
		// name:password:uid:gid:gecos:home:shell
		if len(f) < 4 || f[0] == "" {
			continue
		}
		uid, err1 := parseID(f[2])
		gid, err2 := parseID(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		entries = append(entries, passwdEntry{name: f[0], uid: uid, gid: gid})
	}
	return entries, nil
}

// readGroup returns the entries of the rootfs's /etc/group, nil if it has
// none.
func readGroup(root *os.File) ([]groupEntry, error) {
	data, err := readIDFile(root, "/etc/group")
	if data == nil || err != nil {
		return nil, err
	}
	entries := []groupEntry{}
	for _, f := range splitLines(data) {
		// name:password:gid:member,member
		if len(f) < 3 || f[0] == "" {
			continue
		}
		gid, err := parseID(f[2])
		if err != nil {
			continue
		}
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					g.members = append(g.members, m)
				}
			}
		}
		entries = append(entries, g)
	}
	return entries, nil
}

// splitLines splits a colon-separated database into the fields of each
// line, skipping blank lines, comments and NIS "+"/"-" entries.
func splitLines(data []byte) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxIDFileSize+1)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}
