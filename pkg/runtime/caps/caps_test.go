package caps

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in     string
		want   int
		wantOK bool
	}{
		{"CAP_CHOWN", 0, true},
		{"CHOWN", 0, true},
		{"chown", 0, true},
		{"cap_chown", 0, true},
		{"Cap_Kill", 5, true},
		{"CAP_NET_BIND_SERVICE", 10, true},
		{"net_raw", 13, true},
		{"CAP_SYS_ADMIN", 21, true},
		{"sys_admin", 21, true},
		{"CAP_AUDIT_WRITE", 29, true},
		{"CAP_SETFCAP", 31, true},
		{"CAP_MAC_OVERRIDE", 32, true},
		{"CAP_SYSLOG", 34, true},
		{"CAP_PERFMON", 38, true},
		{"CAP_BPF", 39, true},
		{"CAP_CHECKPOINT_RESTORE", 40, true},
		{"checkpoint_restore", 40, true},
		{"CAP_FOO", 0, false},
		{"", 0, false},
		{"CAP_", 0, false},
		{"CAP_CAP_CHOWN", 0, false},
		{" CAP_CHOWN", 0, false},
		{"CAP_CHOWN ", 0, false},
		{"CAPCHOWN", 0, false},
		{"CAP-CHOWN", 0, false},
		{"41", 0, false},
		{"0", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := Parse(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Parse(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestNames(t *testing.T) {
	n := Names()
	if len(n) != 41 {
		t.Fatalf("len(Names()) = %d, want 41 (CAP_CHOWN..CAP_CHECKPOINT_RESTORE)", len(n))
	}
	fixed := map[int]string{
		0: "CAP_CHOWN", 1: "CAP_DAC_OVERRIDE", 5: "CAP_KILL", 7: "CAP_SETUID", 8: "CAP_SETPCAP",
		10: "CAP_NET_BIND_SERVICE", 12: "CAP_NET_ADMIN", 21: "CAP_SYS_ADMIN", 27: "CAP_MKNOD",
		29: "CAP_AUDIT_WRITE", 31: "CAP_SETFCAP", 33: "CAP_MAC_ADMIN", 37: "CAP_AUDIT_READ",
		38: "CAP_PERFMON", 39: "CAP_BPF", 40: "CAP_CHECKPOINT_RESTORE",
	}
	for i, want := range fixed {
		if n[i] != want {
			t.Errorf("Names()[%d] = %q, want %q", i, n[i], want)
		}
	}
	seen := map[string]bool{}
	for i, name := range n {
		if !strings.HasPrefix(name, "CAP_") || seen[name] {
			t.Errorf("Names()[%d] = %q: bad or duplicate", i, name)
		}
		seen[name] = true
		if got, ok := Parse(name); !ok || got != i {
			t.Errorf("Parse(Names()[%d]=%q) = %d, %v", i, name, got, ok)
		}
	}
	// The slice is a copy.
	n[0] = "CAP_CHANGED"
	if Names()[0] != "CAP_CHOWN" {
		t.Error("Names() returned the package's own slice")
	}
}

func TestLastCap(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Skipf("no /proc/sys/kernel/cap_last_cap: %v", err)
	}
	want, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if got := LastCap(); got != want {
		t.Errorf("LastCap() = %d, want %d", got, want)
	}
}

const (
	bitChown  = uint64(1) << 0
	bitKill   = uint64(1) << 5
	bitNBS    = uint64(1) << 10
	bitAdmin  = uint64(1) << 21
	bitSyslog = uint64(1) << 34
	bitCR     = uint64(1) << 40
)

func TestFromSpec(t *testing.T) {
	if LastCap() < 40 {
		t.Skipf("kernel knows capabilities up to %d only; the table assumes 40", LastCap())
	}
	tests := []struct {
		name        string
		in          *specs.LinuxCapabilities
		want        Set
		wantUnknown []string
	}{
		{"nil", nil, Set{}, nil},
		{"empty", &specs.LinuxCapabilities{}, Set{}, nil},
		{
			name: "each set separately",
			in: &specs.LinuxCapabilities{
				Bounding:    []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"},
				Effective:   []string{"CAP_KILL"},
				Inheritable: []string{"CAP_CHOWN"},
				Permitted:   []string{"CAP_SYS_ADMIN", "CAP_KILL"},
				Ambient:     []string{"CAP_CHECKPOINT_RESTORE"},
			},
			want: Set{
				Bounding:    bitKill | bitNBS,
				Effective:   bitKill,
				Inheritable: bitChown,
				Permitted:   bitAdmin | bitKill,
				Ambient:     bitCR,
			},
		},
		{
			name: "duplicates short and lower-case names",
			in:   &specs.LinuxCapabilities{Bounding: []string{"kill", "CAP_KILL", "Syslog", "chown"}},
			want: Set{Bounding: bitKill | bitSyslog | bitChown},
		},
		{
			name: "unknown names returned in set order",
			in: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_KILL", "CAP_FOO"},
				Effective: []string{"CAP_BAR"},
				Permitted: []string{"CAP_NET_BIND_SERVICE", "CAP_FOO"},
				Ambient:   []string{""},
			},
			want:        Set{Bounding: bitKill, Permitted: bitNBS},
			wantUnknown: []string{"CAP_FOO", "CAP_BAR", "CAP_FOO", ""},
		},
		{
			name: "all names",
			in:   &specs.LinuxCapabilities{Effective: Names()},
			want: Set{Effective: 1<<41 - 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, unknown := FromSpec(tt.in)
			if got != tt.want {
				t.Errorf("FromSpec set = %+v, want %+v", got, tt.want)
			}
			if !reflect.DeepEqual(unknown, tt.wantUnknown) {
				t.Errorf("FromSpec unknown = %q, want %q", unknown, tt.wantUnknown)
			}
		})
	}
}

func TestCapName(t *testing.T) {
	for n, want := range map[int]string{0: "CAP_CHOWN", 40: "CAP_CHECKPOINT_RESTORE", 41: "capability 41", 63: "capability 63"} {
		if got := capName(n); got != want {
			t.Errorf("capName(%d) = %q, want %q", n, got, want)
		}
	}
}

const helperEnv = "XSTACK_CAPS_TEST_HELPER"

// TestHelperProcess is not a test: it runs in a child process started by
// TestApplyInChild and changes that child's credentials.
func TestHelperProcess(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper process for TestApplyInChild")
	}
	var s Set
	if _, err := fmt.Sscanf(spec, "%x,%x,%x,%x,%x", &s.Bounding, &s.Effective, &s.Inheritable, &s.Permitted, &s.Ambient); err != nil {
		fmt.Printf("ERROR parse %q: %v\n", spec, err)
		os.Exit(2)
	}
	runtime.LockOSThread() // never unlocked: the thread dies with the process
	if err := s.DropBounding(); err != nil {
		fmt.Printf("ERROR DropBounding: %v\n", err)
		os.Exit(2)
	}
	if err := s.Apply(); err != nil {
		fmt.Printf("ERROR Apply: %v\n", err)
		os.Exit(2)
	}
	status, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		fmt.Printf("ERROR read status: %v\n", err)
		os.Exit(2)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Cap") {
			fmt.Println("STATUS " + sc.Text())
		}
	}
	os.Exit(0)
}

// ownCaps reads the test process's permitted and bounding sets.
func ownCaps(t *testing.T) (prm, bnd uint64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		switch k {
		case "CapPrm":
			prm = n
		case "CapBnd":
			bnd = n
		}
	}
	return prm, bnd
}

func TestApplyInChild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: changing capability sets needs root (euid is not 0)")
	}
	prm, bnd := ownCaps(t)
	const setpcap = uint64(1) << 8
	if prm&setpcap == 0 {
		t.Skipf("skipping: the test process lacks CAP_SETPCAP (CapPrm %016x)", prm)
	}
	tests := []struct {
		name string
		in   Set
		want map[string]uint64 // CapInh, CapPrm, CapEff, CapBnd, CapAmb
	}{
		{
			name: "kill and net_bind_service everywhere",
			in:   Set{Bounding: bitKill | bitNBS, Effective: bitKill | bitNBS, Inheritable: bitKill | bitNBS, Permitted: bitKill | bitNBS, Ambient: bitKill | bitNBS},
			want: map[string]uint64{"CapInh": 0x420, "CapPrm": 0x420, "CapEff": 0x420, "CapBnd": 0x420, "CapAmb": 0x420},
		},
		{
			name: "ambient only where permitted and inheritable",
			in: Set{
				Bounding:    bitKill | bitNBS | bitChown,
				Permitted:   bitKill | bitNBS,
				Effective:   bitKill,
				Inheritable: bitKill | bitChown,
				Ambient:     bitKill | bitNBS | bitChown,
			},
			want: map[string]uint64{"CapInh": bitKill | bitChown, "CapPrm": bitKill | bitNBS, "CapEff": bitKill, "CapBnd": bitKill | bitNBS | bitChown, "CapAmb": bitKill},
		},
		{
			name: "runc default ambient without inheritable",
			in:   Set{Bounding: bitKill | bitNBS, Effective: bitKill | bitNBS, Permitted: bitKill | bitNBS, Ambient: bitKill | bitNBS},
			want: map[string]uint64{"CapInh": 0, "CapPrm": 0x420, "CapEff": 0x420, "CapBnd": 0x420, "CapAmb": 0},
		},
		{
			name: "bounding wider than permitted",
			in:   Set{Bounding: bitKill | bitNBS | bitAdmin, Effective: bitKill, Permitted: bitKill},
			want: map[string]uint64{"CapInh": 0, "CapPrm": bitKill, "CapEff": bitKill, "CapBnd": bitKill | bitNBS | bitAdmin, "CapAmb": 0},
		},
		{
			name: "capabilities above 31",
			in:   Set{Bounding: bitKill | bitSyslog | bitCR, Effective: bitSyslog, Permitted: bitKill | bitSyslog | bitCR, Inheritable: bitCR, Ambient: bitCR},
			want: map[string]uint64{"CapInh": bitCR, "CapPrm": bitKill | bitSyslog | bitCR, "CapEff": bitSyslog, "CapBnd": bitKill | bitSyslog | bitCR, "CapAmb": bitCR},
		},
		{
			name: "nothing",
			in:   Set{},
			want: map[string]uint64{"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			need := tt.in.Permitted | tt.in.Inheritable | tt.in.Bounding
			if need&^(prm&bnd) != 0 {
				t.Skipf("skipping: the test process lacks capabilities %016x", need&^(prm&bnd))
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			// GORACE: the race runtime otherwise sleeps 1s at exit.
			cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0", fmt.Sprintf("%s=%x,%x,%x,%x,%x", helperEnv, tt.in.Bounding, tt.in.Effective, tt.in.Inheritable, tt.in.Permitted, tt.in.Ambient))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			got := map[string]uint64{}
			for _, line := range strings.Split(string(out), "\n") {
				rest, ok := strings.CutPrefix(line, "STATUS ")
				if !ok {
					continue
				}
				k, v, _ := strings.Cut(rest, ":")
				n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if err != nil {
					t.Fatalf("bad status line %q", line)
				}
				got[k] = n
			}
			for k, want := range tt.want {
				g, ok := got[k]
				if !ok {
					t.Errorf("%s missing from helper output:\n%s", k, out)
					continue
				}
				if g != want {
					t.Errorf("%s = %016x, want %016x", k, g, want)
				}
			}
		})
	}
	// The parent's own credentials are untouched.
	if p2, b2 := ownCaps(t); p2 != prm || b2 != bnd {
		t.Errorf("test process caps changed: CapPrm %016x->%016x CapBnd %016x->%016x", prm, p2, bnd, b2)
	}
}
