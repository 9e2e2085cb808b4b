package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestSummarizeScale(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		var out []time.Duration
		for _, x := range xs {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	mem := func(rssMiB int64) procMem {
		return procMem{smapsRollup: smapsRollup{Rss: rssMiB * 1024, Pss: rssMiB * 1024}, Threads: 11}
	}
	tests := []struct {
		name string
		side string
		s    scaleSamples
		want map[string]bool // nil: no targets (not xd, or nothing measured)
		none bool
	}{
		{name: "nothing measured", side: "xd", none: true},
		{name: "xd meets both", side: "xd", s: scaleSamples{running: 1000, list: ms(60, 70, 80), mem: mem(88), memRestarted: mem(74), restart: 120 * time.Millisecond},
			want: map[string]bool{"list_median": true, "rss": true, "rss_after_restart": true}},
		{name: "xd too big after the restart", side: "xd", s: scaleSamples{running: 1000, list: ms(60, 70, 80), mem: mem(88), memRestarted: mem(140)},
			want: map[string]bool{"list_median": true, "rss": true, "rss_after_restart": false}},
		{name: "xd slow list", side: "xd", s: scaleSamples{running: 1000, list: ms(90, 100, 150), mem: mem(88), memRestarted: mem(74)},
			want: map[string]bool{"list_median": false, "rss": true, "rss_after_restart": true}},
		{name: "containerd has no targets", side: "containerd", s: scaleSamples{running: 1000, list: ms(300), mem: mem(400), memRestarted: mem(300)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := summarizeScale(&daemonSide{name: tt.side, scale: tt.s})
			if tt.none {
				if f != nil {
					t.Fatalf("figures %+v for nothing measured", f)
				}
				return
			}
			if f.Running != tt.s.running || f.Threads != 11 {
				t.Errorf("running %d threads %d", f.Running, f.Threads)
			}
			if len(f.TargetMet) != len(tt.want) {
				t.Fatalf("targets %v, want %v", f.TargetMet, tt.want)
			}
			for k, v := range tt.want {
				if got, ok := f.TargetMet[k]; !ok || got != v {
					t.Errorf("target %s met = %v (%v), want %v", k, got, ok, v)
				}
			}
		})
	}
}

func TestPrintScaleTable(t *testing.T) {
	xd := summarizeScale(&daemonSide{name: "xd", scale: scaleSamples{running: 1000, list: []time.Duration{70 * time.Millisecond},
		mem: procMem{smapsRollup: smapsRollup{Rss: 90 * 1024, Pss: 89 * 1024}, Threads: 11}, memRestarted: procMem{smapsRollup: smapsRollup{Rss: 120 * 1024, Pss: 119 * 1024}},
		restart: 125 * time.Millisecond}})
	ref := summarizeScale(&daemonSide{name: "containerd", scale: scaleSamples{running: 1000, list: []time.Duration{350 * time.Millisecond},
		mem: procMem{smapsRollup: smapsRollup{Rss: 300 * 1024, Pss: 290 * 1024}, Threads: 30}, memRestarted: procMem{smapsRollup: smapsRollup{Rss: 200 * 1024, Pss: 190 * 1024}},
		restart: 900 * time.Millisecond}})
	var buf bytes.Buffer
	printScaleTable(&buf, &daemonReport{N: 20, Daemons: []daemonSideReport{{Name: "xd", Scale: xd}, {Name: "containerd", Scale: ref}}})
	out := buf.String()
	for _, want := range []string{
		"list 1000 running, n=20, median (ms)", "70.0", "350.0", "0.20", "< 100 ms met",
		"daemon RSS, 1000 running (MiB)", "90.0", "< 100 MiB met",
		"daemon RSS after the restart (MiB)", "120.0", "< 100 MiB NOT met",
		"restart until 1000 listed (ms)", "125", "900",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var empty bytes.Buffer
	printScaleTable(&empty, &daemonReport{Daemons: []daemonSideReport{{Name: "xd"}}})
	if empty.Len() != 0 {
		t.Errorf("a table without scale figures: %q", empty.String())
	}
}
