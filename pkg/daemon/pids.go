package daemon

import (
	"context"
	"strings"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/xstack/xstack/pkg/runtime/proc"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// pids lists a container's processes (the shim reads its cgroup) with
// what `xctl top` shows of each, read in /proc here: xd and the shim
// share the host's pid namespace.
func (s *Server) pids(ctx context.Context, id string) (*xdv1.PidsResponse, error) {
	t, err := s.requireTask(ctx, id)
	if err != nil {
		return nil, err
	}
	resp, err := t.shim.Task().Pids(ctx, &taskapi.PidsRequest{ID: id})
	if err != nil {
		return nil, errgrpc.ToNative(err)
	}
	t.mu.Lock()
	byPid := map[uint32]string{}
	for execID, p := range t.procs {
		if execID != "" {
			byPid[p.pid] = execID
		}
	}
	t.mu.Unlock()
	boot, bootErr := proc.BootTime()
	out := &xdv1.PidsResponse{}
	for _, pi := range resp.Processes {
		info := &xdv1.ProcessInfo{Pid: pi.Pid, ExecId: byPid[pi.Pid]}
		if bootErr == nil {
			describeProcess(info, boot)
		}
		out.Processes = append(out.Processes, info)
	}
	return out, nil
}

// describeProcess fills in what /proc says of info.Pid; nothing if it is
// gone (it may exit between the shim's answer and this).
func describeProcess(info *xdv1.ProcessInfo, boot time.Time) {
	pid := int(info.Pid)
	st, err := proc.ReadStat(pid)
	if err != nil {
		return
	}
	uid, err := proc.EffectiveUID(pid)
	if err != nil {
		return
	}
	args, err := proc.Cmdline(pid)
	if err != nil {
		return
	}
	ticks := func(n uint64) time.Duration { return time.Duration(n) * time.Second / proc.ClockTicks }
	info.Uid, info.Ppid = uid, uint32(st.PPid)
	info.StartedAt = timestamppb.New(boot.Add(ticks(st.StartTime)))
	info.CpuTime = durationpb.New(ticks(st.UTime + st.STime))
	info.Command = strings.Join(args, " ")
	if info.Command == "" {
		info.Command = "[" + st.Comm + "]"
	}
}
