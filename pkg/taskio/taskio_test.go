package taskio

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// shimEnd opens the FIFO's write end the way a shim or container does.
func shimEnd(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func waitDone(t *testing.T, p *IO) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("output never ended")
	}
}

func TestOutputReachesLogAndAttached(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "c.log")
	p, err := Create(Config{Dir: filepath.Join(dir, "io"), Name: "init", Stdin: true, LogPath: logPath})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	paths := p.Paths()
	if paths.Stdin == "" || paths.Stdout == "" || paths.Stderr == "" {
		t.Fatalf("paths %+v", paths)
	}
	sub := p.Attach()
	out, errw := shimEnd(t, paths.Stdout), shimEnd(t, paths.Stderr)
	// Before the shim has its ends, xd's hold keeps EOF away.
	p.Started()
	out.Write([]byte("hello\n"))
	errw.Write([]byte("oops\n"))
	out.Close()
	errw.Close()

	got := map[string]string{}
	for c := range sub.C {
		got[c.Stream] += string(c.Data)
	}
	if got[Stdout] != "hello\n" || got[Stderr] != "oops\n" {
		t.Fatalf("attached got %q", got)
	}
	waitDone(t, p)
	p.Close()

	var entries []Entry
	if err := ReadLog(context.Background(), logPath, ReadOptions{Tail: EveryLine}, nil, func(e Entry) error {
		entries = append(entries, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	logged := map[string]string{}
	for _, e := range entries {
		logged[e.Stream] += string(e.Data)
		if e.Time.IsZero() {
			t.Errorf("entry without time: %+v", e)
		}
	}
	if logged[Stdout] != "hello\n" || logged[Stderr] != "oops\n" {
		t.Fatalf("log has %q", logged)
	}
	// Attaching after the end returns a closed channel at once.
	if _, ok := <-p.Attach().C; ok {
		t.Fatal("late attach got data")
	}
}

func TestNoEarlyEOFBeforeShimOpens(t *testing.T) {
	dir := t.TempDir()
	p, err := Create(Config{Dir: dir, Name: "init", Terminal: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Paths().Stderr != "" {
		t.Fatal("a terminal has no stderr fifo")
	}
	select {
	case <-p.Done():
		t.Fatal("EOF before any writer opened the fifo")
	case <-time.After(200 * time.Millisecond):
	}
	w := shimEnd(t, p.Paths().Stdout)
	p.Started()
	w.Close()
	waitDone(t, p)
}

func TestStdin(t *testing.T) {
	dir := t.TempDir()
	p, err := Create(Config{Dir: dir, Name: "e1", Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r, err := os.OpenFile(p.Paths().Stdin, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := p.WriteStdin([]byte("input")); err != nil {
		t.Fatal(err)
	}
	p.CloseStdin()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "input" {
		t.Fatalf("container read %q", buf.String())
	}
	if err := p.WriteStdin([]byte("x")); err == nil {
		t.Fatal("write after CloseStdin succeeded")
	}
}

func TestReopenAfterRestart(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "c.log")
	cfg := Config{Dir: dir, Name: "init", LogPath: logPath}
	p, err := Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, errw := shimEnd(t, p.Paths().Stdout), shimEnd(t, p.Paths().Stderr)
	// The shim keeps a reader of its own, so the container never gets
	// EPIPE while xd is away.
	keep, err := os.OpenFile(p.Paths().Stdout, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	p.Started()
	out.Write([]byte("before\n"))
	time.Sleep(100 * time.Millisecond)
	p.Close() // xd goes away; the container keeps its ends

	if _, err := out.Write([]byte("during\n")); err != nil {
		t.Fatal(err)
	}
	q, err := Reopen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out.Write([]byte("after\n"))
	out.Close()
	errw.Close()
	waitDone(t, q)
	q.Close()

	var all string
	ReadLog(context.Background(), logPath, ReadOptions{Tail: EveryLine}, nil, func(e Entry) error { all += string(e.Data); return nil })
	if all != "before\nduring\nafter\n" {
		t.Fatalf("log across restart = %q", all)
	}
}

func TestReadLogFollow(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "c.log")
	p, err := Create(Config{Dir: dir, Name: "init", LogPath: logPath})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	out, errw := shimEnd(t, p.Paths().Stdout), shimEnd(t, p.Paths().Stderr)
	p.Started()
	got := make(chan string, 1)
	go func() {
		var all string
		ReadLog(context.Background(), logPath, ReadOptions{Follow: true, Tail: EveryLine}, p.Done(), func(e Entry) error { all += string(e.Data); return nil })
		got <- all
	}()
	out.Write([]byte("one\n"))
	time.Sleep(150 * time.Millisecond)
	out.Write([]byte("two\n"))
	out.Close()
	errw.Close()
	select {
	case all := <-got:
		if all != "one\ntwo\n" {
			t.Fatalf("followed %q", all)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end with the output")
	}
}
