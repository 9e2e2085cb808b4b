package shim_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1/stats"
	eventsapi "github.com/containerd/containerd/api/events"
	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
)

// TestLogURIs: stdout "file://PATH" gives the process the file itself
// (stdout and stderr both land in it, parent dirs are created);
// "binary://PATH?k=v" starts the logger with the process's stdout on fd 3,
// stderr on fd 4, a ready pipe on fd 5, CONTAINER_ID and
// CONTAINER_NAMESPACE in its environment and the query as arguments.
func TestLogURIs(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		t.Run("file", func(t *testing.T) {
			e.c.SkipForShim(t, "containerd-shim-runc-v2", "1.6.20 copies stdout and stderr into the file through pipes and, in some runs here, drops stderr (the file keeps only to-out)")
			b := e.newBundle(t, newID("logf"), withArgs("/bin/sh", "-c", "echo to-out; echo to-err >&2"))
			s := e.startShim(t, b)
			logPath := filepath.Join(e.dir, "logs", b.ID, "out.log")
			req := s.createReq(nil, false)
			// As containerd's cio.LogURI: stdout and stderr name the same URI.
			req.Stdout = "file://" + logPath
			req.Stderr = req.Stdout
			if _, err := s.tryCreate(req); err != nil {
				t.Fatalf("Create: %v", err)
			}
			s.startTask(t, "")
			if w := s.mustWait(t, ""); w.ExitStatus != 0 {
				t.Fatalf("exit %d", w.ExitStatus)
			}
			waitFileContains(t, logPath, "to-out")
			waitFileContains(t, logPath, "to-err")
			s.mustDelete(t, "")
		})
		t.Run("binary", func(t *testing.T) {
			b := e.newBundle(t, newID("logb"), withArgs("/bin/sh", "-c", "echo to-out; echo to-err >&2"))
			s := e.startShim(t, b)
			dir := filepath.Join(e.dir, "logger-"+b.ID)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			logger := filepath.Join(dir, "logger")
			script := fmt.Sprintf(`#!/bin/sh
echo "$CONTAINER_ID $CONTAINER_NAMESPACE $*" > %[1]s/env
exec 5>&-
cat <&3 > %[1]s/out &
cat <&4 > %[1]s/err &
exec 3<&- 4<&-
wait
`, dir)
			if err := os.WriteFile(logger, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			req := s.createReq(nil, false)
			req.Stdout = "binary://" + logger + "?tag=t1"
			req.Stderr = req.Stdout
			if _, err := s.tryCreate(req); err != nil {
				t.Fatalf("Create: %v", err)
			}
			s.startTask(t, "")
			if w := s.mustWait(t, ""); w.ExitStatus != 0 {
				out, _ := os.ReadFile(filepath.Join(dir, "out"))
				errOut, _ := os.ReadFile(filepath.Join(dir, "err"))
				env, _ := os.ReadFile(filepath.Join(dir, "env"))
				t.Fatalf("exit %d; logger got out %q err %q env %q", w.ExitStatus, out, errOut, env)
			}
			waitFileContains(t, filepath.Join(dir, "out"), "to-out")
			waitFileContains(t, filepath.Join(dir, "err"), "to-err")
			waitFileContains(t, filepath.Join(dir, "env"), b.ID+" "+e.ns+" tag t1")
			s.mustDelete(t, "")
		})
	})
}

func waitFileContains(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(exitTimeout)
	for {
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q, want it to contain %q", path, data, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNoFdLeak: the container's init and an exec have exactly stdin,
// stdout and stderr open: nothing of the shim (its socket, the log FIFO,
// the reaper's or the console's descriptors) reaches them.
func TestNoFdLeak(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		b := e.newBundle(t, newID("fds"), withArgs("/xtest", "fds"))
		s := e.startShim(t, b)
		io := e.newStdio(t, true, true, true)
		s.create(t, io, false)
		s.startTask(t, "")
		s.mustWait(t, "")
		out := io.waitOut(t, "2 ")
		checkOnlyStdio(t, "init", out)

		b2 := e.newBundle(t, newID("fdx"), withArgs("/xtest", "sleep", "60"))
		s2 := e.startShim(t, b2)
		s2.run(t, nil)
		eio := e.newStdio(t, false, true, true)
		s2.exec(t, "fds", eio, false, "/xtest", "fds")
		s2.startTask(t, "fds")
		s2.mustWait(t, "fds")
		checkOnlyStdio(t, "exec", eio.waitOut(t, "2 "))
	})
}

func checkOnlyStdio(t *testing.T, what, out string) {
	t.Helper()
	var fds []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			fds = append(fds, f[0])
		}
	}
	if strings.Join(fds, " ") != "0 1 2" {
		t.Errorf("%s has fds %v, want only 0 1 2:\n%s", what, fds, out)
	}
}

// TestStatsAndUpdate: Stats returns the container's cgroup v1 metrics
// (this host) under containerd's type URL; Update sets a new pids limit
// that the next Stats reports.
func TestStatsAndUpdate(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		b := e.newBundle(t, newID("stats"), withArgs("/xtest", "sleep", "60"))
		s := e.startShim(t, b)
		s.run(t, nil)
		m := s.metrics(t)
		if m.Pids == nil || m.Pids.Current < 1 {
			t.Errorf("pids %v, want current >= 1", m.Pids)
		}
		if m.CPU == nil || m.Memory == nil || m.Memory.Usage == nil || m.Memory.Usage.Usage == 0 {
			t.Errorf("cpu %v memory %v, want both with usage", m.CPU, m.Memory)
		}

		limit := int64(42)
		res, err := json.Marshal(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := s.ctx()
		defer cancel()
		if _, err := s.task.Update(ctx, &taskapi.UpdateTaskRequest{
			ID:        b.ID,
			Resources: &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources", Value: res},
		}); err != nil {
			t.Fatalf("Update: %v", err)
		}
		if m := s.metrics(t); m.Pids == nil || m.Pids.Limit != 42 {
			t.Errorf("pids after Update %v, want limit 42", m.Pids)
		}
	})
}

func (s *shim) metrics(t *testing.T) *stats.Metrics {
	t.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	r, err := s.task.Stats(ctx, &taskapi.StatsRequest{ID: s.b.ID})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if r.Stats.GetTypeUrl() != "io.containerd.cgroups.v1.Metrics" {
		t.Fatalf("Stats type %q, want io.containerd.cgroups.v1.Metrics", r.Stats.GetTypeUrl())
	}
	v, err := typeurl.UnmarshalAny(r.Stats)
	if err != nil {
		t.Fatalf("decode Stats: %v", err)
	}
	return v.(*stats.Metrics)
}

// TestOOM: a container that goes over its memory limit is OOM-killed;
// the shim publishes /tasks/oom for it, and the init exits 137.
func TestOOM(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		limit := int64(16 << 20)
		b := e.newBundle(t, newID("oom"), withArgs("/bin/sh", "-c", "sleep 0.3; dd if=/dev/zero of=/dev/null bs=64M count=1"), func(b *bundle) {
			b.Spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
		})
		s := e.startShim(t, b)
		s.run(t, nil)
		if w := s.mustWait(t, ""); w.ExitStatus != 128+uint32(syscall.SIGKILL) {
			t.Errorf("exit %d, want 137 (OOM-killed)", w.ExitStatus)
		}
		evs, ok := e.events.WaitFor(exitTimeout, func(evs []recordedEvent) bool {
			for _, ev := range eventsFor(evs, b.ID) {
				if ev.Topic == topicOOM {
					return true
				}
			}
			return false
		})
		if !ok {
			t.Fatalf("no %s event for %s; got %q", topicOOM, b.ID, topics(eventsFor(evs, b.ID)))
		}
		for _, ev := range eventsFor(evs, b.ID) {
			if ev.Topic == topicOOM {
				if o, ok := ev.Event.(*eventsapi.TaskOOM); !ok || o.ContainerID != b.ID {
					t.Errorf("oom event %v, want TaskOOM for %s", ev.Event, b.ID)
				}
			}
		}
		s.mustDelete(t, "")
	})
}
