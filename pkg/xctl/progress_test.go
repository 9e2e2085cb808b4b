package xctl

import (
	"strings"
	"testing"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

func TestProgressBar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		done, total int64
		want        string
	}{
		{0, 10, "[>         ]"},
		{5, 10, "[====>     ]"},
		{10, 10, "[==========]"},
		{20, 10, "[==========]"},
		{-1, 10, "[>         ]"},
		{1, 0, "[          ]"},
	}
	for _, tc := range tests {
		if got := progressBar(tc.done, tc.total, 10); got != tc.want {
			t.Errorf("progressBar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	t.Parallel()
	const d = "sha256:0123456789abcdef"
	p := newPullProgress(nil, "busybox:latest", false)
	tests := []struct {
		m    *xdv1.PullProgress
		want string
	}{
		{&xdv1.PullProgress{Status: "resolving"}, "busybox:latest: Resolving"},
		{&xdv1.PullProgress{Status: "downloading", Digest: d, Offset: 1_000_000, Total: 2_000_000},
			"0123456789ab: Downloading [" + strings.Repeat("=", 14) + ">" + strings.Repeat(" ", 15) + "] 1MB/2MB"},
		{&xdv1.PullProgress{Status: "downloading", Digest: d, Offset: 5000}, "0123456789ab: Downloading 5kB"},
		{&xdv1.PullProgress{Status: "downloading", Digest: d}, "0123456789ab: Downloading"},
		{&xdv1.PullProgress{Status: "done", Digest: d}, "0123456789ab: Download complete"},
		{&xdv1.PullProgress{Status: "exists", Digest: d}, "0123456789ab: Already exists"},
		{&xdv1.PullProgress{Status: "complete"}, "busybox:latest: Pull complete"},
	}
	for _, tc := range tests {
		if got := p.line(tc.m); got != tc.want {
			t.Errorf("line(%v) =\n%q\nwant\n%q", tc.m, got, tc.want)
		}
	}
}

func TestProgressRender(t *testing.T) {
	t.Parallel()
	msgs := []*xdv1.PullProgress{
		{Status: "resolving"},
		{Status: "downloading", Digest: "sha256:aaaaaaaaaaaa1", Total: 100},
		{Status: "downloading", Digest: "sha256:bbbbbbbbbbbb2", Total: 100},
		{Status: "downloading", Digest: "sha256:aaaaaaaaaaaa1", Offset: 50, Total: 100},
		{Status: "done", Digest: "sha256:aaaaaaaaaaaa1"},
		{Status: "exists", Digest: "sha256:bbbbbbbbbbbb2"},
	}
	tests := []struct {
		name string
		tty  bool
		want string
	}{
		{
			name: "plain: one line per status change",
			want: "r: Resolving\n" +
				"aaaaaaaaaaaa: Downloading [>                             ] 0B/100B\n" +
				"bbbbbbbbbbbb: Downloading [>                             ] 0B/100B\n" +
				"aaaaaaaaaaaa: Download complete\n" +
				"bbbbbbbbbbbb: Already exists\n",
		},
		{
			name: "tty: redrawn in place",
			tty:  true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			p := newPullProgress(&b, "r", tc.tty)
			for _, m := range msgs {
				p.update(m)
			}
			out := b.String()
			if !tc.tty {
				if out != tc.want {
					t.Errorf("output =\n%s\nwant\n%s", out, tc.want)
				}
				return
			}
			// Every redraw after the first moves up over the lines drawn
			// before; the last frame shows each line's final state.
			if n := strings.Count(out, "\x1b[1A"); n != 1 {
				t.Errorf("cursor-up 1 count = %d, want 1", n)
			}
			if n := strings.Count(out, "\x1b[2A"); n != 1 {
				t.Errorf("cursor-up 2 count = %d, want 1", n)
			}
			if n := strings.Count(out, "\x1b[3A"); n != 3 {
				t.Errorf("cursor-up 3 count = %d, want 3", n)
			}
			last := out[strings.LastIndex(out, "\x1b[3A")+len("\x1b[3A"):]
			want := "\x1b[2Kr: Resolving\n\x1b[2Kaaaaaaaaaaaa: Download complete\n\x1b[2Kbbbbbbbbbbbb: Already exists\n"
			if last != want {
				t.Errorf("last frame = %q, want %q", last, want)
			}
		})
	}
}
