// Package user parses user specifications ("uid[:gid]", names) and the
// passwd/group files of a container image. All input here is untrusted: ids
// that do not fit a non-negative int32 are rejected instead of wrapping
// around to root (CVE-2024-40635), and a numeric string is never looked up as
// a name.
//
// Internal to xstack; no API stability.
package user

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// MaxID is the largest id accepted. Linux uid_t is 32 bits, but several
// layers (and CVE-2024-40635) treat ids as int32, so larger values are refused.
const MaxID = math.MaxInt32

// ParseID parses a decimal uid or gid.
func ParseID(s string) (uint32, error) {
	if s == "" {
		return 0, fmt.Errorf("empty id")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid id %q: not a non-negative decimal number", s)
	}
	if n > MaxID {
		return 0, fmt.Errorf("invalid id %q: larger than %d", s, MaxID)
	}
	return uint32(n), nil
}

// IsNumeric reports whether s is all decimal digits.
func IsNumeric(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ParseUIDGID parses the numeric "uid[:gid]" form runc's exec --user takes.
func ParseUIDGID(s string) (uid, gid uint32, hasGID bool, err error) {
	u, g, found := strings.Cut(s, ":")
	if uid, err = ParseID(u); err != nil {
		return 0, 0, false, fmt.Errorf("user %q: %w", s, err)
	}
	if !found {
		return uid, 0, false, nil
	}
	if gid, err = ParseID(g); err != nil {
		return 0, 0, false, fmt.Errorf("user %q: %w", s, err)
	}
	return uid, gid, true, nil
}

// Passwd is one /etc/passwd entry.
type Passwd struct {
	Name  string
	UID   uint32
	GID   uint32
	Home  string
	Shell string
}

// Group is one /etc/group entry.
type Group struct {
	Name    string
	GID     uint32
	Members []string
}

// maxLine bounds a single line read from an image file.
const maxLine = 64 << 10

// ParsePasswd reads passwd(5) entries, skipping malformed lines.
func ParsePasswd(r io.Reader) ([]Passwd, error) {
	var out []Passwd
	err := eachLine(r, func(f []string) {
		if len(f) < 7 {
			return
		}
		uid, err1 := ParseID(f[2])
		gid, err2 := ParseID(f[3])
		if err1 != nil || err2 != nil {
			return
		}
		out = append(out, Passwd{Name: f[0], UID: uid, GID: gid, Home: f[5], Shell: f[6]})
	})
	return out, err
}

// ParseGroup reads group(5) entries, skipping malformed lines.
func ParseGroup(r io.Reader) ([]Group, error) {
	var out []Group
	err := eachLine(r, func(f []string) {
		if len(f) < 4 {
			return
		}
		gid, err := ParseID(f[2])
		if err != nil {
			return
		}
		var members []string
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				members = append(members, m)
			}
		}
		out = append(out, Group{Name: f[0], GID: gid, Members: members})
	})
	return out, err
}

func eachLine(r io.Reader, fn func([]string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read user database: %w", err)
	}
	return nil
}

// HomeFor returns the home directory of uid in entries, or "/".
func HomeFor(entries []Passwd, uid uint32) string {
	for _, e := range entries {
		if e.UID == uid && e.Home != "" {
			return e.Home
		}
	}
	return "/"
}
