package daemon

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

func TestParseRestartPolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    restartPolicy
		wantErr bool
	}{
		{in: "", want: restartPolicy{mode: "no"}},
		{in: "no", want: restartPolicy{mode: "no"}},
		{in: "always", want: restartPolicy{mode: "always"}},
		{in: "unless-stopped", want: restartPolicy{mode: "unless-stopped"}},
		{in: "on-failure", want: restartPolicy{mode: "on-failure"}},
		{in: "on-failure:3", want: restartPolicy{mode: "on-failure", maxRetries: 3}},
		{in: "on-failure:0", wantErr: true},
		{in: "on-failure:-1", wantErr: true},
		{in: "on-failure:x", wantErr: true},
		{in: "always:2", wantErr: true},
		{in: "sometimes", wantErr: true},
		{in: "no:1", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseRestartPolicy(tt.in)
		if tt.wantErr {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("parseRestartPolicy(%q) = %+v, %v; want an invalid-argument error", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseRestartPolicy(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestRestartPolicyWants(t *testing.T) {
	tests := []struct {
		policy         string
		status, count  uint32
		byUser, atBoot bool
		want           bool
	}{
		{policy: "no", status: 1},
		{policy: "always", status: 0, want: true},
		{policy: "always", status: 1, count: 100, want: true},
		{policy: "always", byUser: true},
		// xd's start brings back what always restarts, stopped or not.
		{policy: "always", byUser: true, atBoot: true, want: true},
		{policy: "unless-stopped", status: 137, want: true},
		{policy: "unless-stopped", byUser: true, atBoot: true},
		{policy: "on-failure", status: 0},
		{policy: "on-failure", status: 2, count: 50, want: true},
		{policy: "on-failure:2", status: 2, count: 1, want: true},
		{policy: "on-failure:2", status: 2, count: 2},
		{policy: "on-failure", status: 2, byUser: true},
	}
	for _, tt := range tests {
		p, err := parseRestartPolicy(tt.policy)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.wants(tt.status, tt.count, tt.byUser, tt.atBoot); got != tt.want {
			t.Errorf("%s.wants(status %d, %d restarts, by user %v, at start %v) = %v", tt.policy, tt.status, tt.count, tt.byUser, tt.atBoot, got)
		}
	}
}

func TestRestartDelay(t *testing.T) {
	tests := []struct {
		count uint32
		ran   time.Duration
		want  time.Duration
	}{
		{0, 0, 100 * time.Millisecond},
		{1, time.Second, 200 * time.Millisecond},
		{3, 0, 800 * time.Millisecond},
		{9, 0, 51200 * time.Millisecond},
		{10, 0, time.Minute},
		{1000, 0, time.Minute},
		{1000, 10 * time.Second, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := restartDelay(tt.count, tt.ran); got != tt.want {
			t.Errorf("restartDelay(%d, %v) = %v, want %v", tt.count, tt.ran, got, tt.want)
		}
	}
}

func TestEndsProcess(t *testing.T) {
	for sig, want := range map[syscall.Signal]bool{
		syscall.SIGKILL: true, syscall.SIGTERM: true, syscall.SIGINT: true, syscall.SIGQUIT: true,
		syscall.SIGHUP: false, syscall.SIGUSR1: false, syscall.SIGWINCH: false,
	} {
		if got := endsProcess(uint32(sig)); got != want {
			t.Errorf("endsProcess(%v) = %v, want %v", sig, got, want)
		}
	}
}
