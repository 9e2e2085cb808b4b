package procattr

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestSchedAttr(t *testing.T) {
	tests := []struct {
		name    string
		in      specs.Scheduler
		want    unix.SchedAttr
		wantErr string
	}{
		{name: "batch with nice", in: specs.Scheduler{Policy: specs.SchedBatch, Nice: 5}, want: unix.SchedAttr{Policy: unix.SCHED_BATCH, Nice: 5}},
		{name: "fifo", in: specs.Scheduler{Policy: specs.SchedFIFO, Priority: 10, Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork}},
			want: unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 10, Flags: unix.SCHED_FLAG_RESET_ON_FORK}},
		{name: "deadline, period defaults to deadline", in: specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 10, Deadline: 20},
			want: unix.SchedAttr{Policy: unix.SCHED_DEADLINE, Runtime: 10, Deadline: 20}},
		{name: "unknown policy", in: specs.Scheduler{Policy: "SCHED_X"}, wantErr: `unknown policy "SCHED_X"`},
		{name: "iso", in: specs.Scheduler{Policy: specs.SchedISO}, wantErr: "not a policy of mainline Linux"},
		{name: "nice out of range", in: specs.Scheduler{Policy: specs.SchedOther, Nice: 20}, wantErr: "nice: 20"},
		{name: "rr without priority", in: specs.Scheduler{Policy: specs.SchedRR}, wantErr: "priority in [1, 99]"},
		{name: "other with priority", in: specs.Scheduler{Policy: specs.SchedOther, Priority: 3}, wantErr: "takes no priority"},
		{name: "deadline runtime above deadline", in: specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 30, Deadline: 20}, wantErr: "runtime (30) <= deadline (20)"},
		{name: "period on batch", in: specs.Scheduler{Policy: specs.SchedBatch, Period: 5}, wantErr: "SCHED_DEADLINE only"},
		{name: "unknown flag", in: specs.Scheduler{Policy: specs.SchedOther, Flags: []specs.LinuxSchedulerFlag{"X"}}, wantErr: `unknown flag "X"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SchedAttr(&tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "process.scheduler") {
					t.Fatalf("err = %v, want one naming process.scheduler and containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || *got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestIOPrio(t *testing.T) {
	tests := []struct {
		in      specs.LinuxIOPriority
		want    int
		wantErr bool
	}{
		{specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_RT, Priority: 0}, 1 << 13, false},
		{specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 7}, 2<<13 | 7, false},
		{specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE}, 3 << 13, false},
		{specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 8}, 0, true},
		{specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: -1}, 0, true},
		{specs.LinuxIOPriority{Class: "IOPRIO_CLASS_NONE"}, 0, true},
	}
	for _, tt := range tests {
		got, err := IOPrio(&tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("IOPrio(%+v) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestPersonality(t *testing.T) {
	tests := []struct {
		in      specs.LinuxPersonality
		want    uint
		wantErr bool
	}{
		{specs.LinuxPersonality{Domain: specs.PerLinux}, 0, false},
		{specs.LinuxPersonality{Domain: specs.PerLinux32}, 8, false},
		{specs.LinuxPersonality{Domain: "SVR4"}, 0, true},
		{specs.LinuxPersonality{Domain: specs.PerLinux, Flags: []specs.LinuxPersonalityFlag{"ADDR_NO_RANDOMIZE"}}, 0, true},
	}
	for _, tt := range tests {
		got, err := Personality(&tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Personality(%+v) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
