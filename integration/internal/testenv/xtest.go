package testenv

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// XtestStat is what `/xtest stat` and `/xtest lstat` print.
type XtestStat struct {
	Type    string `json:"type"`
	Mode    string `json:"mode"`
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	Rdev    string `json:"rdev"`
	Target  string `json:"target"`
	FSMagic string `json:"fsmagic"`
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
}

// ParseXtestStat decodes `/xtest stat` output and fails the test when it
// is not JSON.
func ParseXtestStat(t testing.TB, out string) XtestStat {
	t.Helper()
	var s XtestStat
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &s); err != nil {
		t.Fatalf("bad stat output %q: %v", out, err)
	}
	return s
}

// ParseKV parses the "key=value" lines of `/xtest id`, `caps` and the like.
func ParseKV(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// ParseFds parses `/xtest fds`: one "N TARGET" line per open fd.
func ParseFds(out string) map[int]string {
	m := map[int]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		n, target, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		if fd, err := strconv.Atoi(n); err == nil {
			m[fd] = target
		}
	}
	return m
}
