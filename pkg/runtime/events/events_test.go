package events

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlatKeyed(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]uint64
	}{
		{"cache 10\nrss 20\n", map[string]uint64{"cache": 10, "rss": 20}},
		{"low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", map[string]uint64{"low": 0, "high": 0, "max": 3, "oom": 1, "oom_kill": 1}},
		{"garbage\nkey notanumber\n\n", map[string]uint64{}},
	} {
		got := flatKeyed(tc.in)
		if len(got) != len(tc.want) {
			t.Fatalf("flatKeyed(%q) = %v, want %v", tc.in, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Fatalf("flatKeyed(%q)[%s] = %d, want %d", tc.in, k, got[k], v)
			}
		}
	}
}

// TestV2Stats reads a fake cgroup v2 directory: the JSON has runc's field
// names and the values of the files.
func TestV2Stats(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"cpu.stat":              "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
		"memory.current":        "4096\n",
		"memory.max":            "max\n",
		"memory.stat":           "anon 1024\nfile 2048\n",
		"memory.swap.current":   "0\n",
		"memory.swap.max":       "max\n",
		"memory.events":         "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
		"pids.current":          "3\n",
		"pids.max":              "64\n",
		"io.stat":               "",
		"cgroup.controllers":    "cpu memory pids io\n",
		"cpuset.cpus.effective": "0-1\n",
		"cpuset.mems.effective": "0\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := readEventStats(map[string]string{"": dir})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	out := string(b)
	for _, want := range []string{`"pids":{"current":3,"limit":64}`, `"usage":4096`, `"total":1500000`} {
		if !strings.Contains(out, want) {
			t.Errorf("stats JSON lacks %s:\n%s", want, out)
		}
	}
}
