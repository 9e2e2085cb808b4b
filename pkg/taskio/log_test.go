package taskio

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestReadLogTailAndSince(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	type chunk struct {
		stream, data string
	}
	// Chunks as output arrives: lines split across chunks and several
	// lines in one, both streams, a last line without its newline.
	chunks := []chunk{
		{"stdout", "one\ntwo\n"}, {"stderr", "err1\n"}, {"stdout", "thr"},
		{"stdout", "ee\nfour\nfi"}, {"stderr", "err2\n"}, {"stdout", "ve"},
	}
	tests := []struct {
		name string
		opts ReadOptions
		want string // stream:data of each entry sent
	}{
		{name: "all", opts: ReadOptions{Tail: EveryLine},
			want: "stdout:one\ntwo\n|stderr:err1\n|stdout:thr|stdout:ee\nfour\nfi|stderr:err2\n|stdout:ve"},
		{name: "none", opts: ReadOptions{Tail: 0}, want: ""},
		// Lines are each stream's, in the order they begin: one, two,
		// err1, three, four, five (not ended yet), err2.
		{name: "last one", opts: ReadOptions{Tail: 1}, want: "stderr:err2\n"},
		{name: "last two", opts: ReadOptions{Tail: 2}, want: "stdout:fi|stderr:err2\n|stdout:ve"},
		{name: "last three", opts: ReadOptions{Tail: 3}, want: "stdout:four\n|stdout:fi|stderr:err2\n|stdout:ve"},
		// A line begun in one chunk and ended in another is kept whole.
		{name: "line across chunks", opts: ReadOptions{Tail: 4},
			want: "stdout:thr|stdout:ee\n|stdout:four\n|stdout:fi|stderr:err2\n|stdout:ve"},
		{name: "other stream mid-line", opts: ReadOptions{Tail: 5},
			want: "stderr:err1\n|stdout:thr|stdout:ee\n|stdout:four\n|stdout:fi|stderr:err2\n|stdout:ve"},
		{name: "more than there are", opts: ReadOptions{Tail: 100},
			want: "stdout:one\n|stdout:two\n|stderr:err1\n|stdout:thr|stdout:ee\n|stdout:four\n|stdout:fi|stderr:err2\n|stdout:ve"},
		{name: "since", opts: ReadOptions{Tail: EveryLine, Since: t0.Add(4 * time.Second)}, want: "stderr:err2\n|stdout:ve"},
		// Since goes first: the rest of a line begun before it ("ee") is
		// a line of its own.
		{name: "since and tail", opts: ReadOptions{Tail: 4, Since: t0.Add(3 * time.Second)}, want: "stdout:ee\n|stdout:four\n|stdout:fi|stderr:err2\n|stdout:ve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			l, err := openLog(path, Rotation{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range chunks {
				l.writeAt(c.stream, []byte(c.data), t0.Add(time.Duration(i)*time.Second))
			}
			l.close()
			var got []string
			err = ReadLog(context.Background(), path, tt.opts, nil, func(e Entry) error {
				got = append(got, e.Stream+":"+string(e.Data))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if g := strings.Join(got, "|"); g != tt.want {
				t.Errorf("sent %q\nwant %q", g, tt.want)
			}
		})
	}
}

// TestReadLogTailFollow: with a tail, what is appended after the backlog
// is all sent.
func TestReadLogTailFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := openLog(path, Rotation{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.write("stdout", []byte("a\nb\nc\n"))
	ended := make(chan struct{})
	got := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- ReadLog(context.Background(), path, ReadOptions{Follow: true, Tail: 1}, ended, func(e Entry) error {
			got <- string(e.Data)
			return nil
		})
	}()
	if first := <-got; first != "c\n" {
		t.Fatalf("first entry %q, want the last line c", first)
	}
	l.write("stdout", []byte("d\ne\n"))
	if next := <-got; next != "d\ne\n" {
		t.Fatalf("appended entry %q, want all of it", next)
	}
	l.close()
	close(ended)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// FuzzTail checks the tail against a plain model: each stream's lines are
// numbered, the last n lines by the order they began are chosen, and each
// stream must get exactly its content from the first chosen line on.
func FuzzTail(f *testing.F) {
	f.Add([]byte("one\ntwo\nerr1\nthree\nfour\nfierr2\nve"), []byte{8 << 1, 5<<1 | 1, 3 << 1, 10 << 1, 5<<1 | 1, 2 << 1}, uint8(2))
	f.Add([]byte("\n\n\na"), []byte{2, 3, 2, 3}, uint8(1))
	f.Add([]byte("one\ntwo\nerr1\nthree\nfour\nfierr2\nve"), []byte{16, 11, 6, 22, 11, 4}, uint8(2))
	f.Add([]byte("abc"), []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, data, layout []byte, n uint8) {
		streams := [2]string{"stdout", "stderr"}
		var content [2][]byte
		var starts []int // the stream of each line, in the order they began
		midLine := [2]bool{}
		tl := &tail{lines: int(n)}
		for _, b := range layout {
			s, size := int(b&1), int(b>>1)
			if size > len(data) {
				size = len(data)
			}
			chunk := data[:size]
			data = data[size:]
			for i := range chunk {
				if !midLine[s] {
					starts = append(starts, s)
				}
				midLine[s] = chunk[i] != '\n'
			}
			content[s] = append(content[s], chunk...)
			tl.add(Entry{Stream: streams[s], Data: chunk})
		}
		// Lines of each stream before the chosen ones.
		var skip [2]int
		for i, s := range starts {
			if i < len(starts)-int(n) {
				skip[s]++
			}
		}
		var got [2][]byte
		for _, e := range tl.entries() {
			s := 0
			if e.Stream == "stderr" {
				s = 1
			}
			got[s] = append(got[s], e.Data...)
		}
		for s := range streams {
			want := content[s]
			for range skip[s] {
				if i := bytes.IndexByte(want, '\n'); i >= 0 {
					want = want[i+1:]
				} else {
					want = nil // an unended last line
				}
			}
			if !bytes.Equal(got[s], want) {
				t.Fatalf("%s: got %q, want %q (content %q, last %d lines)", streams[s], got[s], want, content[s], n)
			}
		}
	})
}

func TestOpenLogCutsPartialLine(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name, in, want string
	}{
		{name: "empty", in: "", want: ""},
		{name: "whole lines", in: "{\"a\":1}\n{\"b\":2}\n", want: "{\"a\":1}\n{\"b\":2}\n"},
		{name: "cut short", in: "{\"a\":1}\n{\"b\":", want: "{\"a\":1}\n"},
		{name: "only a part", in: "{\"b\":", want: ""},
		// The newline is more than a read back from the end.
		{name: "long part", in: "{}\n" + long, want: "{}\n"},
		{name: "newline at a read's edge", in: strings.Repeat("y", 4095) + "\n" + strings.Repeat("z", 4096), want: strings.Repeat("y", 4095) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			if err := os.WriteFile(path, []byte(tt.in), 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := openLog(path, Rotation{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			l.close()
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("log after open: %q, want %q", truncateForError(got), truncateForError([]byte(tt.want)))
			}
			if l.size != int64(len(tt.want)) {
				t.Errorf("size %d, want %d", l.size, len(tt.want))
			}
		})
	}
}

func truncateForError(b []byte) string {
	if len(b) > 40 {
		return string(b[:20]) + "..." + string(b[len(b)-20:])
	}
	return string(b)
}

// TestLogFullDisk: on a full filesystem the writer drops chunks, says so
// once, never leaves a line cut short, and writes again once there is room.
func TestLogFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16k"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	var said bytes.Buffer
	path := filepath.Join(dir, "log")
	l, err := openLog(path, Rotation{}, slog.New(slog.NewTextHandler(&said, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	// About 1.4 KB a line in base64: five fit in the 8 KiB left, the
	// sixth only in part.
	chunk := bytes.Repeat([]byte("a"), 1000)
	written := 0
	for range 10 {
		before := l.size
		l.write("stdout", chunk)
		if l.size > before {
			written++
		}
	}
	if written == 0 || written == 10 {
		t.Fatalf("%d of 10 chunks written with 8 KiB free, want some", written)
	}
	if n := strings.Count(said.String(), "write failed"); n != 1 {
		t.Errorf("said %d times that writing failed, want once:\n%s", n, said.String())
	}
	if st, err := os.Stat(path); err != nil || st.Size() != l.size {
		t.Errorf("log of %v bytes (%v), want the %d of its whole lines", st.Size(), err, l.size)
	}
	os.Remove(filler)
	l.write("stderr", []byte("back\n"))
	if want := fmt.Sprintf("dropped_chunks=%d", 10-written); !strings.Contains(said.String(), "writing again") || !strings.Contains(said.String(), want) {
		t.Errorf("the writer said:\n%s\nwant it writing again with %s", said.String(), want)
	}
	var got []string
	err = ReadLog(context.Background(), path, ReadOptions{Tail: EveryLine}, nil, func(e Entry) error {
		got = append(got, e.Stream)
		return nil
	})
	if err != nil || len(got) != written+1 || got[written] != "stderr" {
		t.Errorf("log read back: %v, %v; want %d stdout chunks and then stderr", got, err, written)
	}
}

func TestLogRotation(t *testing.T) {
	tests := []struct {
		name     string
		rotation Rotation
		lines    int
	}{
		{name: "never", rotation: Rotation{}, lines: 100},
		{name: "three files", rotation: Rotation{MaxSize: 1000, MaxFiles: 3}, lines: 100},
		{name: "one file", rotation: Rotation{MaxSize: 1000, MaxFiles: 1}, lines: 50},
		// A line larger than the size still goes in, alone in its file.
		{name: "lines over the size", rotation: Rotation{MaxSize: 10, MaxFiles: 2}, lines: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			l, err := openLog(path, tt.rotation, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= tt.lines; i++ {
				l.write("stdout", fmt.Appendf(nil, "line %d\n", i))
			}
			l.close()
			files, _ := filepath.Glob(path + "*")
			if keep := max(tt.rotation.MaxFiles, 1); tt.rotation.MaxSize > 0 && len(files) != keep {
				t.Errorf("%d files %v, want %d", len(files), files, keep)
			}
			for _, f := range files {
				if st, err := os.Stat(f); err != nil || tt.rotation.MaxSize >= 100 && st.Size() > tt.rotation.MaxSize {
					t.Errorf("%s: %v bytes (%v), want at most %d", f, st.Size(), err, tt.rotation.MaxSize)
				}
			}
			numbers := readNumbers(t, path, EveryLine)
			if len(numbers) == 0 || numbers[len(numbers)-1] != tt.lines {
				t.Fatalf("read back %v, want lines up to %d", numbers, tt.lines)
			}
			for i := 1; i < len(numbers); i++ {
				if numbers[i] != numbers[i-1]+1 {
					t.Fatalf("read back %v: not one run of lines", numbers)
				}
			}
			if tt.rotation.MaxSize == 0 && numbers[0] != 1 {
				t.Errorf("read back from line %d, want all", numbers[0])
			}
			if last, want := readNumbers(t, path, 3), numbers[max(0, len(numbers)-3):]; !slices.Equal(last, want) {
				t.Errorf("tail 3: %v, want %v", last, want)
			}
			if err := RemoveLog(path); err != nil {
				t.Fatal(err)
			}
			if left, _ := filepath.Glob(path + "*"); len(left) != 0 {
				t.Errorf("RemoveLog left %v", left)
			}
		})
	}
}

// readNumbers reads back a log of "line N" chunks.
func readNumbers(t *testing.T, path string, tail int) []int {
	t.Helper()
	var numbers []int
	err := ReadLog(context.Background(), path, ReadOptions{Tail: tail}, nil, func(e Entry) error {
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(string(e.Data), "line ")))
		numbers = append(numbers, n)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return numbers
}

// TestReadLogFollowRotation: a follower that falls behind by several
// rotations reads the files it missed, in order, and loses nothing.
func TestReadLogFollowRotation(t *testing.T) {
	defer func(poll time.Duration) { followPoll = poll }(followPoll)
	followPoll = 20 * time.Millisecond
	path := filepath.Join(t.TempDir(), "log")
	// About four lines a file: a batch of 40 lines is ten rotations,
	// written while the follower waits at the end of the file it read.
	l, err := openLog(path, Rotation{MaxSize: 300, MaxFiles: 100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	got := make(chan []int, 1)
	go func() {
		var numbers []int
		err := ReadLog(context.Background(), path, ReadOptions{Follow: true, Tail: EveryLine}, ended, func(e Entry) error {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(string(e.Data), "line ")))
			numbers = append(numbers, n)
			return err
		})
		if err != nil {
			t.Error(err)
		}
		got <- numbers
	}()
	const lines = 500
	for i := 1; i <= lines; i++ {
		l.write("stdout", fmt.Appendf(nil, "line %d\n", i))
		if i%40 == 0 {
			time.Sleep(30 * time.Millisecond)
		}
	}
	l.close()
	close(ended)
	numbers := <-got
	if len(numbers) != lines {
		t.Fatalf("follower read %d lines, want %d: %v", len(numbers), lines, numbers)
	}
	for i, n := range numbers {
		if n != i+1 {
			t.Fatalf("follower read line %d as number %d: %v", n, i+1, numbers)
		}
	}
	if files, _ := filepath.Glob(path + ".*"); len(files) < 99 {
		t.Errorf("%d rotated files: the test wants many rotations", len(files))
	}
}

// TestLogRotationAfterRestart: a log reopened by a new xd numbers its
// rotated files on from the last one, and keeps no more than it is told.
func TestLogRotationAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	first, err := openLog(path, Rotation{MaxSize: 200, MaxFiles: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		first.write("stdout", fmt.Appendf(nil, "line %d\n", i))
	}
	first.close()
	before, _ := rotatedFiles(path)
	if len(before) != 3 {
		t.Fatalf("rotated files %v, want 3", before)
	}
	second, err := openLog(path, Rotation{MaxSize: 200, MaxFiles: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 21; i <= 40; i++ {
		second.write("stdout", fmt.Appendf(nil, "line %d\n", i))
	}
	second.close()
	after, _ := rotatedFiles(path)
	if len(after) != 1 || after[0].n <= before[len(before)-1].n {
		t.Errorf("rotated files after the restart %v (before %v): want one, numbered on", after, before)
	}
	numbers := readNumbers(t, path, EveryLine)
	if len(numbers) == 0 || numbers[len(numbers)-1] != 40 {
		t.Errorf("read back %v, want a run up to 40", numbers)
	}
}
