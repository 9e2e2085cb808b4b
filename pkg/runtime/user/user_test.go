package user

import (
	"bufio"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseID(t *testing.T) {
	tests := []struct {
		in      string
		want    uint32
		wantErr string
	}{
		{"0", 0, ""},
		{"1", 1, ""},
		{"1000", 1000, ""},
		{"65534", 65534, ""},
		{"0001", 1, ""},
		{"2147483647", 2147483647, ""},
		{"2147483648", 0, "larger than 2147483647"},
		{"4294967295", 0, "larger than 2147483647"}, // (uid_t)-1
		{"4294967296", 0, "larger than 2147483647"}, // wraps to 0 in 32 bits
		{"99999999999", 0, "larger than 2147483647"},
		{"18446744073709551616", 0, "not a non-negative decimal number"}, // overflows uint64
		{"-1", 0, "not a non-negative decimal number"},
		{"+1", 0, "not a non-negative decimal number"},
		{"", 0, "empty id"},
		{"1e3", 0, "not a non-negative decimal number"},
		{" 1", 0, "not a non-negative decimal number"},
		{"1 ", 0, "not a non-negative decimal number"},
		{"0x10", 0, "not a non-negative decimal number"},
		{"1_000", 0, "not a non-negative decimal number"},
		{"root", 0, "not a non-negative decimal number"},
		{"١", 0, "not a non-negative decimal number"}, // Arabic-Indic digit one
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseID(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseID(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				if got != 0 {
					t.Errorf("ParseID(%q) returned %d with the error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseID(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseUIDGID(t *testing.T) {
	tests := []struct {
		in      string
		uid     uint32
		gid     uint32
		hasGID  bool
		wantErr bool
	}{
		{"1000", 1000, 0, false, false},
		{"0", 0, 0, false, false},
		{"1000:1000", 1000, 1000, true, false},
		{"0:0", 0, 0, true, false},
		{"1000:5", 1000, 5, true, false},
		{"2147483647:2147483647", 2147483647, 2147483647, true, false},
		{"1000:", 0, 0, false, true},
		{":1000", 0, 0, false, true},
		{":", 0, 0, false, true},
		{"", 0, 0, false, true},
		{"a:b", 0, 0, false, true},
		{"1000:b", 0, 0, false, true},
		{"a:1000", 0, 0, false, true},
		{"1:2:3", 0, 0, false, true},
		{"4294967295:0", 0, 0, false, true},
		{"0:4294967295", 0, 0, false, true},
		{"0:2147483648", 0, 0, false, true},
		{"-1:-1", 0, 0, false, true},
		{"root", 0, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			uid, gid, hasGID, err := ParseUIDGID(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseUIDGID(%q) = %d, %d, %v; want an error", tt.in, uid, gid, hasGID)
				}
				if !strings.Contains(err.Error(), strconv.Quote(tt.in)) {
					t.Errorf("error %q does not quote the input", err)
				}
				if uid != 0 || gid != 0 || hasGID {
					t.Errorf("values returned with the error: %d, %d, %v", uid, gid, hasGID)
				}
				return
			}
			if err != nil || uid != tt.uid || gid != tt.gid || hasGID != tt.hasGID {
				t.Fatalf("ParseUIDGID(%q) = %d, %d, %v, %v; want %d, %d, %v", tt.in, uid, gid, hasGID, err, tt.uid, tt.gid, tt.hasGID)
			}
		})
	}
}

func TestIsNumeric(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"0", true},
		{"1000", true},
		{"99999999999999999999", true}, // numeric, even if too large for an id
		{"007", true},
		{"", false},
		{"-1", false},
		{"+1", false},
		{"1a", false},
		{"a1", false},
		{" 1", false},
		{"1.0", false},
		{"root", false},
		{"١٢", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := IsNumeric(tt.in); got != tt.want {
				t.Errorf("IsNumeric(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParsePasswd(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Passwd
	}{
		{"empty", "", nil},
		{
			name: "typical",
			in: "root:x:0:0:root:/root:/bin/sh\n" +
				"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
			want: []Passwd{
				{Name: "root", UID: 0, GID: 0, Home: "/root", Shell: "/bin/sh"},
				{Name: "daemon", UID: 1, GID: 1, Home: "/usr/sbin", Shell: "/usr/sbin/nologin"},
				{Name: "nobody", UID: 65534, GID: 65534, Home: "/nonexistent", Shell: "/usr/sbin/nologin"},
			},
		},
		{
			name: "comments blank and whitespace lines",
			in:   "# comment\n\n   \n\t# indented comment\nroot:x:0:0::/root:/bin/sh\n  app:x:1000:1000:App User:/home/app:/bin/bash  \n",
			want: []Passwd{
				{Name: "root", UID: 0, GID: 0, Home: "/root", Shell: "/bin/sh"},
				{Name: "app", UID: 1000, GID: 1000, Home: "/home/app", Shell: "/bin/bash"},
			},
		},
		{
			name: "no trailing newline and CRLF",
			in:   "a:x:1:2:g:/h:/s\r\nb:x:3:4:g:/h2:/s2",
			want: []Passwd{
				{Name: "a", UID: 1, GID: 2, Home: "/h", Shell: "/s"},
				{Name: "b", UID: 3, GID: 4, Home: "/h2", Shell: "/s2"},
			},
		},
		{
			name: "malformed lines skipped",
			in: "short:x:1:1:/home\n" + // 5 fields
				"baduid:x:abc:1::/h:/s\n" +
				"badgid:x:1:-1::/h:/s\n" +
				"hugeuid:x:4294967295:0::/h:/s\n" +
				"wrap:x:4294967296:0::/h:/s\n" +
				"neguid:x:-1:0::/h:/s\n" +
				"spaceuid:x: 5:0::/h:/s\n" +
				"emptyuid:x::0::/h:/s\n" +
				"good:x:5:6::/h:/s\n" +
				"extra:x:7:8::/h:/s:more\n",
			want: []Passwd{
				{Name: "good", UID: 5, GID: 6, Home: "/h", Shell: "/s"},
				{Name: "extra", UID: 7, GID: 8, Home: "/h", Shell: "/s"},
			},
		},
		{
			name: "empty home and shell kept",
			in:   "x:x:9:9:::\n",
			want: []Passwd{{Name: "x", UID: 9, GID: 9}},
		},
		{
			name: "duplicates kept in order",
			in:   "a:x:1:1::/one:/s\na:x:2:2::/two:/s\n",
			want: []Passwd{{Name: "a", UID: 1, GID: 1, Home: "/one", Shell: "/s"}, {Name: "a", UID: 2, GID: 2, Home: "/two", Shell: "/s"}},
		},
		{
			name: "line just below the limit",
			in:   "long:x:3:3::/h:/" + strings.Repeat("s", 60000) + "\n",
			want: []Passwd{{Name: "long", UID: 3, GID: 3, Home: "/h", Shell: "/" + strings.Repeat("s", 60000)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePasswd(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("ParsePasswd: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParsePasswd =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestParseOverlongLine(t *testing.T) {
	long := "evil:x:0:0::/h:/" + strings.Repeat("A", 70000) + "\n"
	tests := []struct {
		name  string
		parse func(string) (int, error)
		in    string
	}{
		{"passwd", func(s string) (int, error) { e, err := ParsePasswd(strings.NewReader(s)); return len(e), err }, "a:x:1:1::/h:/s\n" + long + "b:x:2:2::/h:/s\n"},
		{"group", func(s string) (int, error) { e, err := ParseGroup(strings.NewReader(s)); return len(e), err }, "a:x:1:\n" + "g:x:2:" + strings.Repeat("m,", 40000) + "\nb:x:3:\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.parse(tt.in)
			if err == nil {
				t.Fatal("overlong line accepted")
			}
			if !errors.Is(err, bufio.ErrTooLong) {
				t.Errorf("error %v does not wrap bufio.ErrTooLong", err)
			}
			if !strings.HasPrefix(err.Error(), "read user database:") {
				t.Errorf("error %q", err)
			}
		})
	}
}

// failingReader returns some data and then an error.
type failingReader struct {
	data string
	done bool
}

func (r *failingReader) Read(p []byte) (int, error) {
	if !r.done {
		r.done = true
		return copy(p, r.data), nil
	}
	return 0, errors.New("I/O error")
}

func TestParseReadError(t *testing.T) {
	_, err := ParsePasswd(&failingReader{data: "root:x:0:0::/root:/bin/sh\n"})
	if err == nil || !strings.Contains(err.Error(), "I/O error") {
		t.Fatalf("ParsePasswd = %v, want the reader's error", err)
	}
	_, err = ParseGroup(&failingReader{data: "root:x:0:\n"})
	if err == nil || !strings.Contains(err.Error(), "I/O error") {
		t.Fatalf("ParseGroup = %v, want the reader's error", err)
	}
}

func TestParseGroup(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Group
	}{
		{"empty", "", nil},
		{
			name: "typical",
			in:   "root:x:0:\nwheel:x:10:root,admin\naudio:x:29:pulse\n",
			want: []Group{
				{Name: "root", GID: 0},
				{Name: "wheel", GID: 10, Members: []string{"root", "admin"}},
				{Name: "audio", GID: 29, Members: []string{"pulse"}},
			},
		},
		{
			name: "member whitespace and empties dropped",
			in:   "g:x:5: a , ,b,,\n",
			want: []Group{{Name: "g", GID: 5, Members: []string{"a", "b"}}},
		},
		{
			name: "comments blank and malformed",
			in: "# comment\n\n" +
				"short:x:1\n" + // 3 fields
				"badgid:x:abc:\n" +
				"huge:x:2147483648:\n" +
				"neg:x:-5:\n" +
				"ok:x:7:u\n" +
				"extra:x:8:u:v\n",
			want: []Group{{Name: "ok", GID: 7, Members: []string{"u"}}, {Name: "extra", GID: 8, Members: []string{"u"}}},
		},
		{
			name: "max gid",
			in:   "top:x:2147483647:\n",
			want: []Group{{Name: "top", GID: 2147483647}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGroup(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("ParseGroup: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseGroup =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestHomeFor(t *testing.T) {
	entries := []Passwd{
		{Name: "root", UID: 0, Home: "/root"},
		{Name: "nohome", UID: 5, Home: ""},
		{Name: "dup1", UID: 7, Home: "/first"},
		{Name: "dup2", UID: 7, Home: "/second"},
		{Name: "empty-then-set", UID: 8, Home: ""},
		{Name: "empty-then-set2", UID: 8, Home: "/eight"},
	}
	tests := []struct {
		entries []Passwd
		uid     uint32
		want    string
	}{
		{entries, 0, "/root"},
		{entries, 5, "/"},
		{entries, 7, "/first"},
		{entries, 8, "/eight"},
		{entries, 1000, "/"},
		{nil, 0, "/"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(int(tt.uid)), func(t *testing.T) {
			if got := HomeFor(tt.entries, tt.uid); got != tt.want {
				t.Errorf("HomeFor(%d) = %q, want %q", tt.uid, got, tt.want)
			}
		})
	}
}

func FuzzParseUIDGID(f *testing.F) {
	for _, s := range []string{"0", "1000", "1000:1000", "1000:", ":1000", "a:b", "1:2:3", "2147483647", "2147483648", "4294967296:0", "-1", "0x10", "1e3", " 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		uid, gid, hasGID, err := ParseUIDGID(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error text")
			}
			if uid != 0 || gid != 0 || hasGID {
				t.Fatalf("ParseUIDGID(%q) returned values with an error", s)
			}
			return
		}
		if uid > MaxID || gid > MaxID {
			t.Fatalf("ParseUIDGID(%q) = %d, %d: above MaxID", s, uid, gid)
		}
		u, g, found := strings.Cut(s, ":")
		if found != hasGID {
			t.Fatalf("ParseUIDGID(%q) hasGID = %v", s, hasGID)
		}
		// Every accepted id is a plain decimal that strconv agrees with.
		for i, c := range []struct {
			text string
			id   uint32
		}{{u, uid}, {g, gid}} {
			if i == 1 && !found {
				if gid != 0 {
					t.Fatalf("ParseUIDGID(%q) = gid %d without a gid", s, gid)
				}
				continue
			}
			if !IsNumeric(c.text) {
				t.Fatalf("ParseUIDGID(%q) accepted non-numeric %q", s, c.text)
			}
			n, err := strconv.ParseUint(c.text, 10, 32)
			if err != nil || uint32(n) != c.id {
				t.Fatalf("ParseUIDGID(%q): %q parsed as %d, strconv says %d, %v", s, c.text, c.id, n, err)
			}
			// Round trip: formatting and re-parsing gives the same id.
			back, err := ParseID(strconv.FormatUint(uint64(c.id), 10))
			if err != nil || back != c.id {
				t.Fatalf("round trip of %d: %d, %v", c.id, back, err)
			}
		}
	})
}

func FuzzParsePasswd(f *testing.F) {
	f.Add("root:x:0:0:root:/root:/bin/sh\n# c\n\nnobody:x:65534:65534::/:/sbin/nologin\n")
	f.Add("a:x:4294967295:0::/h:/s\nb:x:1:1\n")
	f.Add("::::::\n:::::::\n")
	f.Fuzz(func(t *testing.T, s string) {
		entries, err := ParsePasswd(strings.NewReader(s))
		if err != nil && err.Error() == "" {
			t.Fatal("empty error text")
		}
		for _, e := range entries {
			if e.UID > MaxID || e.GID > MaxID {
				t.Fatalf("entry %+v has an id above MaxID", e)
			}
			if strings.Contains(e.Name, ":") || strings.Contains(e.Home, ":") || strings.Contains(e.Shell, ":") {
				t.Fatalf("entry %+v has a field containing ':'", e)
			}
			if strings.ContainsAny(e.Name+e.Home+e.Shell, "\n") {
				t.Fatalf("entry %+v spans lines", e)
			}
		}
		groups, err := ParseGroup(strings.NewReader(s))
		if err != nil && err.Error() == "" {
			t.Fatal("empty error text")
		}
		for _, g := range groups {
			if g.GID > MaxID {
				t.Fatalf("group %+v has a gid above MaxID", g)
			}
			for _, m := range g.Members {
				if m == "" || strings.ContainsAny(m, ",:") {
					t.Fatalf("group %+v has a bad member %q", g, m)
				}
			}
		}
	})
}
