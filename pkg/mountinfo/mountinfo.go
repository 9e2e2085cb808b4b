// Package mountinfo parses /proc/<pid>/mountinfo (proc(5)).
//
// Internal to xstack; no API stability.
package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of mountinfo.
type Mount struct {
	ID, Parent   int
	Major, Minor int
	Root         string // path of the mount's root within its filesystem
	MountPoint   string
	Options      string // per-mount options
	Optional     string // optional fields: "shared:N master:M ..."
	FSType       string
	Source       string
	SuperOptions string
}

// Read parses the mountinfo of the calling process.
func Read() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("open mountinfo: %w", err)
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads mountinfo lines; a malformed line is an error naming it.
func Parse(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		m, err := ParseLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

// ParseLine parses one mountinfo line:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func ParseLine(line string) (Mount, error) {
	var m Mount
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return m, fmt.Errorf("no separator in %q", line)
	}
	f := strings.Fields(pre)
	if len(f) < 6 {
		return m, fmt.Errorf("too few fields in %q", line)
	}
	var err error
	if m.ID, err = strconv.Atoi(f[0]); err != nil {
		return m, fmt.Errorf("bad mount id in %q", line)
	}
	if m.Parent, err = strconv.Atoi(f[1]); err != nil {
		return m, fmt.Errorf("bad parent id in %q", line)
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return m, fmt.Errorf("bad device in %q", line)
	}
	if m.Major, err = strconv.Atoi(maj); err != nil {
		return m, fmt.Errorf("bad device in %q", line)
	}
	if m.Minor, err = strconv.Atoi(min); err != nil {
		return m, fmt.Errorf("bad device in %q", line)
	}
	m.Root = Unescape(f[3])
	m.MountPoint = Unescape(f[4])
	m.Options = f[5]
	m.Optional = strings.Join(f[6:], " ")
	pf := strings.Fields(post)
	if len(pf) < 2 {
		return m, fmt.Errorf("too few fields after separator in %q", line)
	}
	m.FSType = pf[0]
	m.Source = Unescape(pf[1])
	if len(pf) > 2 {
		m.SuperOptions = pf[2]
	}
	return m, nil
}

// Unescape decodes the octal escapes (\040 for space, ...) the kernel uses.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Containing returns the mount whose mount point is the longest prefix of
// path (the mount that path lives on), with later mounts winning ties.
func Containing(mounts []Mount, path string) (Mount, bool) {
	best, found := Mount{}, false
	for _, m := range mounts {
		if !IsUnder(path, m.MountPoint) {
			continue
		}
		if !found || len(m.MountPoint) >= len(best.MountPoint) {
			best, found = m, true
		}
	}
	return best, found
}

// IsUnder reports whether path equals dir or lies below it (both clean).
func IsUnder(path, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}
