package runtime_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestEvents: "events --stats" prints one stats event in runc's JSON shape
// for a running container; an unknown id and a stopped container fail.
func TestEvents(t *testing.T) {
	t.Parallel()
	testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
		b := testenv.NewBundle(t)
		c := rt.CreateStart(t, b)
		r := rt.MustRun(t, "events", "--stats", c.ID)
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if len(lines) != 1 {
			t.Fatalf("events --stats printed %d lines: %q", len(lines), r.Stdout)
		}
		var ev struct {
			Type string `json:"type"`
			ID   string `json:"id"`
			Data struct {
				CPU struct {
					Usage struct {
						Total uint64 `json:"total"`
					} `json:"usage"`
				} `json:"cpu"`
				Memory struct {
					Usage struct {
						Usage uint64 `json:"usage"`
					} `json:"usage"`
				} `json:"memory"`
				Pids struct {
					Current uint64 `json:"current"`
				} `json:"pids"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
			t.Fatalf("events --stats: %v: %q", err, lines[0])
		}
		if ev.Type != "stats" || ev.ID != c.ID {
			t.Errorf("type %q id %q, want stats %q", ev.Type, ev.ID, c.ID)
		}
		if ev.Data.Pids.Current < 1 {
			t.Errorf("pids.current = %d", ev.Data.Pids.Current)
		}
		if ev.Data.Memory.Usage.Usage == 0 {
			t.Errorf("memory.usage.usage = 0: %s", lines[0])
		}
		if ev.Data.CPU.Usage.Total == 0 {
			t.Errorf("cpu.usage.total = 0: %s", lines[0])
		}
		if r := rt.Run(t, "events", "--stats", "no-such-container"); r.Code != 1 || !strings.Contains(rt.ErrorText(t, r), "container does not exist") {
			t.Errorf("events of a missing container: %s", r)
		}
		rt.Kill(t, c.ID, "KILL")
		rt.WaitStatus(t, c.ID, "stopped", 10*time.Second)
		if r := rt.Run(t, "events", "--stats", c.ID); r.Code != 1 || !strings.Contains(rt.ErrorText(t, r), "is not running") {
			t.Errorf("events of a stopped container: %s", r)
		}
	})
}
