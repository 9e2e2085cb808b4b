package main

import "testing"

// rollup is /proc/PID/smaps_rollup of a containerd-shim-runc-v2 on Linux 6.18.
const rollup = `00400000-7ffd98438000 ---p 00000000 00:00 0                          [rollup]
Rss:               12932 kB
Pss:                3116 kB
Pss_Dirty:          2100 kB
Pss_Anon:           2092 kB
Pss_File:           1024 kB
Pss_Shmem:             0 kB
Shared_Clean:      10792 kB
Shared_Dirty:          0 kB
Private_Clean:        48 kB
Private_Dirty:      2092 kB
Referenced:        12932 kB
Anonymous:          2092 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
`

func TestParseSmapsRollup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    smapsRollup
		uss     int64
		wantErr bool
	}{
		{"linux 6.18", rollup, smapsRollup{Rss: 12932, Pss: 3116, PrivateClean: 48, PrivateDirty: 2092, PssAnon: 2092, PssFile: 1024}, 2140, false},
		{"old kernel without the Pss split",
			"7f00-7f10 ---p 00000000 00:00 0 [rollup]\nRss: 100 kB\nPss: 50 kB\nShared_Clean: 40 kB\nPrivate_Clean: 10 kB\nPrivate_Dirty: 50 kB\n",
			smapsRollup{Rss: 100, Pss: 50, PrivateClean: 10, PrivateDirty: 50, PssAnon: -1, PssFile: -1}, 60, false},
		{"no header, tabs", "Rss:\t8 kB\nPss:\t4 kB\nPrivate_Clean:\t0 kB\nPrivate_Dirty:\t4 kB\n",
			smapsRollup{Rss: 8, Pss: 4, PrivateClean: 0, PrivateDirty: 4, PssAnon: -1, PssFile: -1}, 4, false},
		{"Pss_Dirty is not Pss", "Rss: 8 kB\nPss_Dirty: 4 kB\nPrivate_Clean: 0 kB\nPrivate_Dirty: 4 kB\n", smapsRollup{}, 0, true},
		{"empty (process gone)", "", smapsRollup{}, 0, true},
		{"missing Private_Dirty", "Rss: 8 kB\nPss: 4 kB\nPrivate_Clean: 0 kB\n", smapsRollup{}, 0, true},
		{"unit is not kB", "Rss: 8 MB\nPss: 4 kB\nPrivate_Clean: 0 kB\nPrivate_Dirty: 4 kB\n", smapsRollup{}, 0, true},
		{"no unit", "Rss: 8\nPss: 4 kB\nPrivate_Clean: 0 kB\nPrivate_Dirty: 4 kB\n", smapsRollup{}, 0, true},
		{"not a number", "Rss: 8 kB\nPss: x kB\nPrivate_Clean: 0 kB\nPrivate_Dirty: 4 kB\n", smapsRollup{}, 0, true},
		{"negative", "Rss: 8 kB\nPss: -4 kB\nPrivate_Clean: 0 kB\nPrivate_Dirty: 4 kB\n", smapsRollup{}, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseSmapsRollup([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseSmapsRollup error = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if got != tc.want {
				t.Errorf("parseSmapsRollup = %+v, want %+v", got, tc.want)
			}
			if got.USS() != tc.uss {
				t.Errorf("USS() = %d, want %d", got.USS(), tc.uss)
			}
		})
	}
}

func TestParseStatusThreads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr bool
	}{
		{"status", "Name:\txshim\nUmask:\t0022\nState:\tS (sleeping)\nVmRSS:\t    9088 kB\nThreads:\t7\nSigQ:\t0/95691\n", 7, false},
		{"single thread, last line", "Name:\tsleep\nThreads:\t1", 1, false},
		{"spaces", "Threads:   12  \n", 12, false},
		{"no Threads line", "Name:\txshim\nVmRSS:\t9088 kB\n", 0, true},
		{"empty", "", 0, true},
		{"zero", "Threads:\t0\n", 0, true},
		{"not a number", "Threads:\tmany\n", 0, true},
		{"prefix is not enough", "Threads_max:\t8\n", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStatusThreads([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseStatusThreads(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("parseStatusThreads(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseStatPPid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr bool
	}{
		{"plain", "17445 (xshim) S 17321 17445 13904 0 -1 4194560", 17321, false},
		{"command with spaces and parens", "42 (a) b (c)) R 7 42 42 0", 7, false},
		{"no paren", "42 sleep S 7", 0, true},
		{"truncated", "42 (sleep) S", 0, true},
		{"ppid not a number", "42 (sleep) S x", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStatPPid([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseStatPPid(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("parseStatPPid(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestTailBuffer(t *testing.T) {
	t.Parallel()
	tb := &tailBuffer{max: 5}
	for _, s := range []string{"ab", "cd", "efg"} {
		if n, err := tb.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := tb.String(); got != "cdefg" {
		t.Errorf("tail = %q, want %q", got, "cdefg")
	}
}
