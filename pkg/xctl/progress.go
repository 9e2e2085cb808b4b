package xctl

import (
	"fmt"
	"io"
	"strings"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// barWidth is the number of cells of a progress bar.
const barWidth = 30

// pullProgress renders Images.Pull's stream: one line per descriptor (and
// one for the image as a whole, keyed by the empty digest), in order of
// first appearance. On a terminal all lines are redrawn in place after
// every message; otherwise a line is printed only when a descriptor's
// status changes, so logs stay short.
type pullProgress struct {
	w     io.Writer
	ref   string
	tty   bool
	order []string
	last  map[string]*xdv1.PullProgress
	drawn int // lines drawn by the previous redraw (tty)
}

func newPullProgress(w io.Writer, ref string, tty bool) *pullProgress {
	return &pullProgress{w: w, ref: ref, tty: tty, last: map[string]*xdv1.PullProgress{}}
}

func (p *pullProgress) update(m *xdv1.PullProgress) {
	prev, seen := p.last[m.Digest]
	if !seen {
		p.order = append(p.order, m.Digest)
	}
	p.last[m.Digest] = m
	if p.tty {
		p.redraw()
		return
	}
	if !seen || prev.Status != m.Status {
		fmt.Fprintln(p.w, p.line(m))
	}
}

func (p *pullProgress) redraw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn) // cursor up to the first line
	}
	for _, d := range p.order {
		b.WriteString("\x1b[2K") // erase the line
		b.WriteString(p.line(p.last[d]))
		b.WriteByte('\n')
	}
	p.drawn = len(p.order)
	io.WriteString(p.w, b.String())
}

// line is one progress line: "ID: Status [bar] done/total".
func (p *pullProgress) line(m *xdv1.PullProgress) string {
	id := p.ref
	if m.Digest != "" {
		_, id, _ = strings.Cut(shortDigest(m.Digest), ":")
	}
	status := statusWord(m.Status)
	switch m.Status {
	case "downloading", "unpacking":
		if m.Total > 0 {
			return fmt.Sprintf("%s: %s %s %s/%s", id, status, progressBar(m.Offset, m.Total, barWidth), humanSize(m.Offset), humanSize(m.Total))
		}
		if m.Offset > 0 {
			return fmt.Sprintf("%s: %s %s", id, status, humanSize(m.Offset))
		}
	}
	return id + ": " + status
}

func statusWord(s string) string {
	switch s {
	case "exists":
		return "Already exists"
	case "done":
		return "Download complete"
	case "complete":
		return "Pull complete"
	case "":
		return "Waiting"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// progressBar draws "[=====>    ]" for done of total in width cells.
func progressBar(done, total int64, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat(" ", width) + "]"
	}
	if done > total {
		done = total
	}
	if done < 0 {
		done = 0
	}
	filled := int(done * int64(width) / total)
	switch {
	case filled >= width:
		return "[" + strings.Repeat("=", width) + "]"
	case filled == 0:
		return "[>" + strings.Repeat(" ", width-1) + "]"
	}
	return "[" + strings.Repeat("=", filled-1) + ">" + strings.Repeat(" ", width-filled) + "]"
}
