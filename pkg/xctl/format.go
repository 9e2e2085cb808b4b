package xctl

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// humanSize is a byte count in decimal units with three significant
// digits, as docker prints image sizes: "512B", "4.26MB", "1.2GB".
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return strconv.FormatFloat(f, 'g', 3, 64) + units[i]
}

// humanDuration is d the way docker says how long ago or for how long:
// "Less than a second", "3 seconds", "About a minute", "5 hours", "2 weeks".
func humanDuration(d time.Duration) string {
	switch s := int64(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	switch m := int64(d.Minutes()); {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	h := int64(math.Round(d.Hours()))
	switch {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	}
	return fmt.Sprintf("%d years", h/24/365)
}

// ago is "3 minutes ago", or "" for an unset time.
func ago(t time.Time, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	return humanDuration(now.Sub(t)) + " ago"
}

// taskStatus is the STATUS column of ps for a container whose task is t
// (nil: the container has none).
func taskStatus(t *xdv1.Task, now time.Time) string {
	if t == nil {
		return "Created"
	}
	started := t.GetStartedAt().AsTime()
	if t.GetStartedAt() == nil {
		started = time.Time{}
	}
	up := func() string {
		if started.IsZero() {
			return "Up"
		}
		return "Up " + humanDuration(now.Sub(started))
	}
	switch t.Status {
	case xdv1.Status_CREATED:
		return "Created"
	case xdv1.Status_RUNNING:
		return up()
	case xdv1.Status_PAUSED:
		return up() + " (Paused)"
	case xdv1.Status_PAUSING:
		return up() + " (Pausing)"
	case xdv1.Status_STOPPED:
		s := fmt.Sprintf("Exited (%d)", t.ExitStatus)
		if t.ExitedAt != nil {
			s += " " + ago(t.ExitedAt.AsTime(), now)
		}
		return s
	}
	if t.Error != "" {
		return "Error"
	}
	return "Unknown"
}

// isLive reports whether a task counts as running for ps without -a.
func isLive(t *xdv1.Task) bool {
	return t != nil && (t.Status == xdv1.Status_RUNNING || t.Status == xdv1.Status_PAUSED || t.Status == xdv1.Status_PAUSING)
}

// parseSignal accepts "KILL", "SIGKILL", "kill" or "9".
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal %q", s)
}

// exitSignal names the signal of a 128+N exit status ("SIGKILL"), or "".
func exitSignal(status uint32) string {
	if status <= 128 || status > 128+64 {
		return ""
	}
	sig := unix.Signal(status - 128)
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return fmt.Sprintf("SIG%d", status-128)
}

// parseCPUs turns "1.5" into 1500 thousandths of a CPU.
func parseCPUs(s string) (int64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > 1e6 {
		return 0, fmt.Errorf("invalid --cpus %q: want a positive number such as 0.5 or 2", s)
	}
	milli := int64(math.Round(f * 1000))
	if milli == 0 {
		return 0, fmt.Errorf("invalid --cpus %q: the minimum is 0.001", s)
	}
	return milli, nil
}

// shortDigest is "sha256:" and the first 12 hex digits.
func shortDigest(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok {
		algo, hex = "", d
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	if algo == "" {
		return hex
	}
	return algo + ":" + hex
}

// truncate cuts s to n runes, marking the cut with "…".
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// quoteArgs joins a command line, quoting words that need it.
func quoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			out[i] = strconv.Quote(a)
		} else {
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}

// parseSince reads `logs --since`: a duration back from now ("10m",
// "1h30m"), an RFC 3339 time, a local time or date, or Unix seconds
// ("1796513306.5").
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration back from now cannot be negative", s)
		}
		return now.Add(-d), nil
	}
	// Without a zone, the time is local, as for docker.
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && !math.IsInf(f, 0) {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a time (2026-12-06T10:00:00Z, Unix seconds) nor a duration (10m)", s)
}
