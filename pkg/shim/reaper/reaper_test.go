package reaper

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// One reaper per test binary: it owns SIGCHLD for the whole process.
var (
	once   sync.Once
	shared *Reaper
)

func get(t *testing.T) *Reaper {
	t.Helper()
	once.Do(func() {
		var err error
		if shared, err = New(); err != nil {
			t.Fatal(err)
		}
	})
	return shared
}

func TestRunExitStatus(t *testing.T) {
	r := get(t)
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"zero", []string{"/bin/sh", "-c", "exit 0"}, 0},
		{"code", []string{"/bin/sh", "-c", "exit 42"}, 42},
		{"killed", []string{"/bin/sh", "-c", "kill -9 $$"}, 137},
		{"terminated", []string{"/bin/sh", "-c", "kill -TERM $$"}, 143},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Run(exec.Command(tt.args[0], tt.args[1:]...))
			if err != nil || got != tt.want {
				t.Fatalf("Run = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestRunNotStarted(t *testing.T) {
	if _, err := get(t).Run(exec.Command("/nonexistent/binary")); err == nil {
		t.Fatal("Run of a missing binary succeeded")
	}
}

// TestConcurrentRunsAndSubscribers: many commands at once, each Run gets
// its own exit, and a subscriber sees every one of them, none twice.
func TestConcurrentRunsAndSubscribers(t *testing.T) {
	r := get(t)
	sub := r.Subscribe()
	defer sub.Close()
	const n = 40
	pids := make(chan int, n)
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(code int) {
			defer wg.Done()
			pidFile := dir + "/" + strconv.Itoa(code)
			cmd := exec.Command("/bin/sh", "-c", "echo $$ > $1; exit $0", strconv.Itoa(code%100), pidFile)
			got, err := r.Run(cmd)
			if err != nil || got != code%100 {
				t.Errorf("Run(exit %d) = %d, %v", code%100, got, err)
			}
			b, _ := os.ReadFile(pidFile)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			pids <- pid
		}(i)
	}
	wg.Wait()
	close(pids)
	want := map[int]bool{}
	for p := range pids {
		want[p] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen := map[int]int{}
	for len(seen) < len(want) {
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("subscriber saw %d of %d exits: %v", len(seen), len(want), err)
		}
		if want[e.Pid] {
			seen[e.Pid]++
		}
	}
	for p, c := range seen {
		if c != 1 {
			t.Errorf("pid %d seen %d times", p, c)
		}
	}
}

// TestOrphansAreReaped: a grandchild orphaned by its parent is reparented
// to us (subreaper) and reaped, not left a zombie.
func TestOrphansAreReaped(t *testing.T) {
	r := get(t)
	sub := r.Subscribe()
	defer sub.Close()
	out, err := os.CreateTemp(t.TempDir(), "pid")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", "sleep 0.3 & echo $! > "+out.Name())
	if code, err := r.Run(cmd); err != nil || code != 0 {
		t.Fatalf("parent: %d %v", code, err)
	}
	b, _ := os.ReadFile(out.Name())
	orphan, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if orphan <= 0 {
		t.Fatalf("no orphan pid in %q", b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("orphan %d never reaped: %v", orphan, err)
		}
		if e.Pid == orphan {
			if e.Status != 0 {
				t.Errorf("orphan status %d", e.Status)
			}
			break
		}
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(orphan)); err == nil {
		t.Errorf("orphan %d still in /proc after being reaped", orphan)
	}
}

func TestNextHonoursContext(t *testing.T) {
	sub := get(t).Subscribe()
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := sub.Next(ctx); err == nil {
		t.Fatal("Next returned without an exit")
	}
}
