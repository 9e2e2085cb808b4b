package proc

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"testing"

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
			in:   "1234 (sleep) S 1 1234 1234 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 100 18446744073709551615",
			want: Stat{State: 'S', PPid: 1, StartTime: 98765},
		},
		{
			name: "command with spaces and parens",
			in:   "42 (a) b (c) Z 7 42 42 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 555 1000 100 1",
			want: Stat{State: 'Z', PPid: 7, StartTime: 555},
		},
		{name: "truncated", in: "1 (x) S 1 2 3", wantErr: true},
		{name: "no parens", in: "1 x S 1", wantErr: true},
		{name: "bad start", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 zz 0", wantErr: true},
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
