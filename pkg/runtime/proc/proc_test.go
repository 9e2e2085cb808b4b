package proc

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Stat
		wantErr bool
	}{
		{
			name: "plain",
			in:   "1234 (sleep) S 1 1234 1234 0 -1 4194304 100 0 0 0 31 7 0 0 20 0 1 0 98765 1000 100 18446744073709551615",
			want: Stat{Comm: "sleep", State: 'S', PPid: 1, UTime: 31, STime: 7, StartTime: 98765},
		},
		{
			name: "command with spaces and parens",
			in:   "42 (a) b (c) Z 7 42 42 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 555 1000 100 1",
			want: Stat{Comm: "a) b (c", State: 'Z', PPid: 7, StartTime: 555},
		},
		{name: "truncated", in: "1 (x) S 1 2 3", wantErr: true},
		{name: "no parens", in: "1 x S 1", wantErr: true},
		{name: "bad start", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 zz 0", wantErr: true},
		{name: "bad utime", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 -3 0 0 0 20 0 1 0 5 0", wantErr: true},
		{name: "closing paren first", in: "1 )x( S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPid != os.Getppid() || st.StartTime == 0 || st.Exited() {
		t.Fatalf("unexpected stat of self: %+v", st)
	}
}

// TestReadStatChild follows a child through its life: running, a zombie
// (exited, not reaped), then gone (an error that is fs.ErrNotExist).
func TestReadStatChild(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "read x")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	st, err := ReadStat(pid)
	if err != nil || st.Exited() || st.PPid != os.Getpid() {
		t.Errorf("running child: %+v, %v", st, err)
	}
	stdin.Close()
	// Wait for the exit without reaping.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	if st, err := ReadStat(pid); err != nil || !st.Exited() {
		t.Errorf("zombie child: %+v, %v; want exited", st, err)
	}
	cmd.Wait()
	if st, err := ReadStat(pid); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reaped child: %+v, %v; want fs.ErrNotExist", st, err)
	}
}

func TestParseEffectiveUID(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint32
		wantErr bool
	}{
		{name: "root", in: "Name:\tsh\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n", want: 0},
		{name: "setuid binary", in: "Name:\tx\nUid:\t1000\t0\t0\t1000\n", want: 0},
		{name: "dropped", in: "Uid:\t0\t65534\t65534\t65534\n", want: 65534},
		{name: "no uid line", in: "Name:\tx\n", wantErr: true},
		{name: "short", in: "Uid:\t5\n", wantErr: true},
		{name: "garbage", in: "Uid:\t0\tx\t0\t0\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEffectiveUID(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("got %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCmdlineAndBootTime(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "read x", "with space")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	// The parent of a vfork resumes once the exec is past its point of no
	// return, before the new program's arguments are in place.
	var args []string
	for i := 0; i < 100; i++ {
		if args, err = Cmdline(cmd.Process.Pid); err != nil || len(args) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || len(args) != 4 || args[0] != "/bin/sh" || args[3] != "with space" {
		t.Errorf("Cmdline = %q, %v; want the child's four arguments", args, err)
	}
	uid, err := EffectiveUID(cmd.Process.Pid)
	if err != nil || uid != uint32(os.Geteuid()) {
		t.Errorf("EffectiveUID = %d, %v; want %d", uid, err, os.Geteuid())
	}
	boot, err := BootTime()
	if err != nil {
		t.Fatal(err)
	}
	st, err := ReadStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	started := boot.Add(time.Duration(st.StartTime) * time.Second / ClockTicks)
	if d := time.Since(started); d < -2*time.Second || d > time.Minute {
		t.Errorf("child started %v ago by boot time %v and start time %d; want about now", d, boot, st.StartTime)
	}
}
