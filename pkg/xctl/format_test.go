package xctl

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

func TestHumanSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0B"}, {512, "512B"}, {999, "999B"}, {1000, "1kB"}, {1536, "1.54kB"},
		{4_260_000, "4.26MB"}, {1_200_000_000, "1.2GB"}, {3_000_000_000_000, "3TB"},
	}
	for _, tc := range tests {
		if got := humanSize(tc.in); got != tc.want {
			t.Errorf("humanSize(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "Less than a second"}, {time.Second, "1 second"}, {3 * time.Second, "3 seconds"},
		{59 * time.Second, "59 seconds"}, {61 * time.Second, "About a minute"}, {2 * time.Minute, "2 minutes"},
		{59 * time.Minute, "59 minutes"}, {time.Hour, "About an hour"}, {5 * time.Hour, "5 hours"},
		{3 * 24 * time.Hour, "3 days"}, {3 * 7 * 24 * time.Hour, "3 weeks"}, {90 * 24 * time.Hour, "3 months"},
		{3 * 365 * 24 * time.Hour, "3 years"},
	}
	for _, tc := range tests {
		if got := humanDuration(tc.in); got != tc.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTaskStatus(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(-d)) }
	tests := []struct {
		name string
		task *xdv1.Task
		want string
	}{
		{"no task", nil, "Created"},
		{"created", &xdv1.Task{Status: xdv1.Status_CREATED}, "Created"},
		{"running", &xdv1.Task{Status: xdv1.Status_RUNNING, StartedAt: ts(3 * time.Second)}, "Up 3 seconds"},
		{"running no start time", &xdv1.Task{Status: xdv1.Status_RUNNING}, "Up"},
		{"paused", &xdv1.Task{Status: xdv1.Status_PAUSED, StartedAt: ts(2 * time.Hour)}, "Up 2 hours (Paused)"},
		{"exited", &xdv1.Task{Status: xdv1.Status_STOPPED, ExitStatus: 3, ExitedAt: ts(2 * time.Minute)}, "Exited (3) 2 minutes ago"},
		{"killed", &xdv1.Task{Status: xdv1.Status_STOPPED, ExitStatus: 137, ExitedAt: ts(time.Second)}, "Exited (137) 1 second ago"},
		{"exited no time", &xdv1.Task{Status: xdv1.Status_STOPPED}, "Exited (0)"},
		{"unknown with error", &xdv1.Task{Status: xdv1.Status_UNKNOWN, Error: "shim lost"}, "Error"},
		{"unknown", &xdv1.Task{Status: xdv1.Status_UNKNOWN}, "Unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := taskStatus(tc.task, now); got != tc.want {
				t.Errorf("taskStatus = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseSignal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    unix.Signal
		wantErr bool
	}{
		{"KILL", unix.SIGKILL, false}, {"SIGTERM", unix.SIGTERM, false}, {"term", unix.SIGTERM, false},
		{"sigusr1", unix.SIGUSR1, false}, {"9", unix.SIGKILL, false}, {"15", unix.SIGTERM, false},
		{"0", 0, true}, {"65", 0, true}, {"-1", 0, true}, {"NOPE", 0, true}, {"", 0, true},
	}
	for _, tc := range tests {
		got, err := parseSignal(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestExitSignal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   uint32
		want string
	}{
		{0, ""}, {1, ""}, {128, ""}, {137, "SIGKILL"}, {143, "SIGTERM"}, {130, "SIGINT"}, {200, ""}, {255, ""},
	}
	for _, tc := range tests {
		if got := exitSignal(tc.in); got != tc.want {
			t.Errorf("exitSignal(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"1", 1000, false}, {"1.5", 1500, false}, {"0.25", 250, false}, {"0.001", 1, false}, {"2.0005", 2001, false},
		{"0", 0, true}, {"-1", 0, true}, {"0.0001", 0, true}, {"x", 0, true}, {"NaN", 0, true}, {"Inf", 0, true},
	}
	for _, tc := range tests {
		got, err := parseCPUs(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseCPUs(%q) = %d, %v; want %d, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestSmallFormatters(t *testing.T) {
	t.Parallel()
	tests := []struct{ got, want string }{
		{shortDigest("sha256:0123456789abcdef0123"), "sha256:0123456789ab"},
		{shortDigest("sha256:abc"), "sha256:abc"},
		{shortDigest("0123456789abcdef"), "0123456789ab"},
		{truncate("sh -c 'sleep 1000'", 10), "sh -c 'sl…"},
		{truncate("short", 10), "short"},
		{quoteArgs([]string{"sh", "-c", "echo hi"}), `sh -c "echo hi"`},
		{quoteArgs([]string{"top"}), "top"},
		{strings.Join(specArgs([]byte(`{"process":{"args":["a","b"]}}`)), " "), "a b"},
		{strings.Join(specArgs([]byte(`not json`)), " "), ""},
	}
	for i, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%d: got %q, want %q", i, tc.got, tc.want)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "10m", want: now.Add(-10 * time.Minute)},
		{in: "1h30m", want: now.Add(-90 * time.Minute)},
		{in: "0s", want: now},
		{in: "2026-12-06T10:00:00Z", want: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)},
		{in: "2026-12-06T10:00:00.5+01:00", want: time.Date(2026, 12, 6, 9, 0, 0, 5e8, time.UTC)},
		{in: "2026-12-06T10:00:00", want: time.Date(2026, 12, 6, 10, 0, 0, 0, time.Local)},
		{in: "2026-12-05", want: time.Date(2026, 12, 5, 0, 0, 0, 0, time.Local)},
		{in: "1796513306", want: time.Unix(1796513306, 0)},
		{in: "1796513306.25", want: time.Unix(1796513306, 25e7)},
		{in: "-5m", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "yesterday", wantErr: true},
		{in: "", wantErr: true},
		{in: "Inf", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in, now)
		if (err != nil) != tt.wantErr || !tt.wantErr && !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v (error: %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestStampedWriter(t *testing.T) {
	t1 := time.Date(2026, 12, 6, 10, 0, 0, 1000, time.UTC)
	t2 := t1.Add(time.Second)
	const s1, s2 = "2026-12-06T10:00:00.000001000Z ", "2026-12-06T10:00:01.000001000Z "
	tests := []struct {
		name   string
		stamp  bool
		chunks []string // logged at t1, t2, t1, t2...
		want   string
	}{
		{name: "plain", chunks: []string{"a\nb", "c\n"}, want: "a\nbc\n"},
		{name: "stamped lines", stamp: true, chunks: []string{"a\nb\n"}, want: s1 + "a\n" + s1 + "b\n"},
		// The rest of a line keeps the stamp of its beginning.
		{name: "line across chunks", stamp: true, chunks: []string{"a\nb", "c\nd"}, want: s1 + "a\n" + s1 + "bc\n" + s2 + "d"},
		{name: "empty lines", stamp: true, chunks: []string{"\n\n"}, want: s1 + "\n" + s1 + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := &stampedWriter{w: &out, stamp: tt.stamp, lineStart: true}
			for i, c := range tt.chunks {
				at := t1
				if i%2 == 1 {
					at = t2
				}
				if err := w.write(&xdv1.LogEntry{Data: []byte(c), Time: timestamppb.New(at)}); err != nil {
					t.Fatal(err)
				}
			}
			if out.String() != tt.want {
				t.Errorf("wrote %q, want %q", out.String(), tt.want)
			}
		})
	}
}
