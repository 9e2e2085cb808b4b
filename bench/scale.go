package main

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"time"
)

// The scale figures (reference.md: "1,000 running containers on this
// machine, with xd's own memory under 100 MiB, and `xctl ps` answering in
// under 100 ms"), measured with -daemon-scale N after the daemon benchmark,
// containerd beside xd in the same run.

const (
	// scaleSettle passes between the last change and a memory reading.
	scaleSettle = 2 * time.Second
	// Absolute targets for xd, from reference.md.
	scaleListTargetMs = 100
	scaleRSSTargetMiB = 100
)

// scaleSamples are one daemon's scale figures.
type scaleSamples struct {
	running int
	list    []time.Duration
	// mem is the daemon process after the N started; memRestarted after
	// a restart re-attached to them.
	mem, memRestarted procMem
	restart           time.Duration
}

// measureScale brings each daemon to -daemon-scale running containers,
// then times the listing, reads the daemon's memory, restarts it once and
// reads its memory again.
func (db *daemonBench) measureScale(b *bench) {
	n := db.o.daemonScale
	stop := b.stop.Load
	db.startSleeping(b, n)
	for _, d := range db.live() {
		pids, err := db.runningPids(d)
		if err == nil && len(pids) != n {
			err = fmt.Errorf("%d running, want %d", len(pids), n)
		}
		if err != nil {
			d.fail(fmt.Errorf("scale: %w", err))
			continue
		}
		d.pids = pids
		d.scale.running = len(pids)
	}
	if stop() {
		return
	}
	db.readScaleMem("", func(d *daemonSide, m procMem) { d.scale.mem = m })
	for i := 0; i < b.o.warmup+db.o.daemonN && !stop(); i++ {
		for _, d := range rotate(db.live(), i) {
			dur, err := db.clientTimed(d, d.listArgs()...)
			if err != nil {
				d.fail(fmt.Errorf("scale: list: %w", err))
				continue
			}
			if i >= b.o.warmup {
				d.scale.list = append(d.scale.list, dur)
			}
		}
	}
	for _, d := range db.live() {
		if stop() {
			return
		}
		_, up, err := db.restartOnce(d)
		if err != nil {
			d.fail(fmt.Errorf("scale: restart: %w", err))
			continue
		}
		d.scale.restart = up
	}
	db.readScaleMem(" after the restart", func(d *daemonSide, m procMem) { d.scale.memRestarted = m })
}

// readScaleMem reads each daemon's memory once scaleSettle has passed.
func (db *daemonBench) readScaleMem(when string, set func(*daemonSide, procMem)) {
	time.Sleep(scaleSettle)
	for _, d := range db.live() {
		m, err := readProcMem(d.cmd.Process.Pid)
		if err != nil {
			d.fail(fmt.Errorf("scale: memory of %s%s: %w", d.name, when, err))
			continue
		}
		set(d, m)
	}
}

// scaleFigures are the reported scale figures of one daemon.
type scaleFigures struct {
	Running         int     `json:"running"`
	List            Summary `json:"list_ms"`
	RSSMiB          jnum    `json:"rss_mib"`
	PSSMiB          jnum    `json:"pss_mib"`
	Threads         int     `json:"threads"`
	RestartMs       jnum    `json:"restart_ms"`
	RSSRestartedMiB jnum    `json:"rss_after_restart_mib"`
	PSSRestartedMiB jnum    `json:"pss_after_restart_mib"`
	// TargetMet (xd only) says whether each of reference.md's ceilings
	// was met, by the key of its row.
	TargetMet map[string]bool `json:"target_met,omitempty"`
}

func summarizeScale(d *daemonSide) *scaleFigures {
	s := d.scale
	if s.running == 0 {
		return nil
	}
	mib := func(kib int64) jnum {
		if kib == 0 {
			return jnum(math.NaN())
		}
		return jnum(float64(kib) / 1024)
	}
	f := &scaleFigures{
		Running: s.running, List: Summarize(Millis(s.list)),
		RSSMiB: mib(s.mem.Rss), PSSMiB: mib(s.mem.Pss), Threads: s.mem.Threads,
		RSSRestartedMiB: mib(s.memRestarted.Rss), PSSRestartedMiB: mib(s.memRestarted.Pss),
		RestartMs: jnum(math.NaN()),
	}
	if s.restart > 0 {
		f.RestartMs = jnum(float64(s.restart) / float64(time.Millisecond))
	}
	if d.name == "xd" {
		f.TargetMet = map[string]bool{}
		for _, row := range scaleRows {
			if v := row.get(f); row.target > 0 && !math.IsNaN(v) {
				f.TargetMet[row.key] = v < row.target
			}
		}
	}
	return f
}

// scaleRow is one row of the scale table; label is a format given the
// number running and the number of samples.
type scaleRow struct {
	key, label string
	get        func(*scaleFigures) float64
	prec       int
	// target is reference.md's ceiling for xd (0: none), in unit.
	target float64
	unit   string
}

var scaleRows = []scaleRow{
	{"list_median", "list %[1]d running, n=%[2]d, median (ms)", func(f *scaleFigures) float64 { return f.List.Median }, 1, scaleListTargetMs, "ms"},
	{"list_p90", "list %[1]d running, p90 (ms)", func(f *scaleFigures) float64 { return f.List.P90 }, 1, 0, ""},
	{"rss", "daemon RSS, %[1]d running (MiB)", func(f *scaleFigures) float64 { return float64(f.RSSMiB) }, 1, scaleRSSTargetMiB, "MiB"},
	{"pss", "daemon PSS, %[1]d running (MiB)", func(f *scaleFigures) float64 { return float64(f.PSSMiB) }, 1, 0, ""},
	{"threads", "daemon threads, %[1]d running", func(f *scaleFigures) float64 { return float64(f.Threads) }, 0, 0, ""},
	{"restart", "restart until %[1]d listed (ms)", func(f *scaleFigures) float64 { return float64(f.RestartMs) }, 0, 0, ""},
	{"rss_after_restart", "daemon RSS after the restart (MiB)", func(f *scaleFigures) float64 { return float64(f.RSSRestartedMiB) }, 1, scaleRSSTargetMiB, "MiB"},
	{"pss_after_restart", "daemon PSS after the restart (MiB)", func(f *scaleFigures) float64 { return float64(f.PSSRestartedMiB) }, 1, 0, ""},
}

// printScaleTable writes the scale section of the daemon report.
func printScaleTable(buf *bytes.Buffer, r *daemonReport) {
	var xd, ref *scaleFigures
	var sides []daemonSideReport
	for _, d := range r.Daemons {
		if d.Scale == nil {
			continue
		}
		sides = append(sides, d)
		if d.Name == "xd" {
			xd = d.Scale
		} else {
			ref = d.Scale
		}
	}
	if len(sides) == 0 {
		return
	}
	const labelW, colW = 44, 13
	fmt.Fprintf(buf, "\n%-*s", labelW, "scale")
	for _, d := range sides {
		fmt.Fprintf(buf, "%*s", colW, d.Name)
	}
	if xd != nil && ref != nil {
		fmt.Fprintf(buf, "%*s", colW+2, "xd/containerd")
	}
	buf.WriteString("   target (xd)\n")
	for _, row := range scaleRows {
		label := row.label
		if strings.Contains(label, "%") {
			label = fmt.Sprintf(label, sides[0].Scale.Running, r.N)
		}
		fmt.Fprintf(buf, "  %-*s", labelW-2, label)
		for _, d := range sides {
			fmt.Fprintf(buf, "%*s", colW, fmtNum(row.get(d.Scale), row.prec))
		}
		if xd != nil && ref != nil {
			fmt.Fprintf(buf, "%*s", colW+2, fmtNum(Ratio(row.get(xd), row.get(ref)), 2))
		}
		if xd != nil {
			if met, ok := xd.TargetMet[row.key]; ok {
				v := "met"
				if !met {
					v = "NOT met"
				}
				fmt.Fprintf(buf, "   < %g %s %s", row.target, row.unit, v)
			}
		}
		buf.WriteByte('\n')
	}
}
