package xctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/xstack/xstack/pkg/version"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// runEvents is `xctl events`: the Events.Subscribe stream, from every
// namespace unless --namespace was given.
func runEvents(ctx context.Context, e *env, fs *flagSet, args []string) error {
	asJSON, err := wantJSON(fs, "text")
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	req := &xdv1.SubscribeRequest{Topics: fs.list("topic")}
	if e.namespaceSet {
		req.Namespace = e.namespace
	}
	stream, err := c.Events().Subscribe(ctx, req)
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if asJSON {
			b, err := json.Marshal(newEventJSON(ev))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s\n", b)
			continue
		}
		fmt.Fprintln(e.stdout, eventLine(ev))
	}
}

// eventLine is "TIMESTAMP NAMESPACE TOPIC key=value...".
func eventLine(ev *xdv1.Event) string {
	var b strings.Builder
	ts := "-"
	if ev.Timestamp != nil {
		ts = ev.Timestamp.AsTime().Local().Format(time.RFC3339Nano)
	}
	fmt.Fprintf(&b, "%s %s %s", ts, ev.Namespace, ev.Topic)
	if ev.ContainerId != "" {
		fmt.Fprintf(&b, " container=%s", ev.ContainerId)
	}
	if ev.ExecId != "" {
		fmt.Fprintf(&b, " exec=%s", ev.ExecId)
	}
	if ev.Image != "" {
		fmt.Fprintf(&b, " image=%s", ev.Image)
	}
	if ev.Pid != 0 {
		fmt.Fprintf(&b, " pid=%d", ev.Pid)
	}
	if strings.HasSuffix(ev.Topic, "/exit") || ev.ExitStatus != 0 {
		fmt.Fprintf(&b, " exit=%d", ev.ExitStatus)
	}
	return b.String()
}

type eventJSON struct {
	Timestamp   *time.Time `json:"timestamp,omitempty"`
	Namespace   string     `json:"namespace"`
	Topic       string     `json:"topic"`
	ContainerID string     `json:"container_id,omitempty"`
	ExecID      string     `json:"exec_id,omitempty"`
	Image       string     `json:"image,omitempty"`
	Pid         uint32     `json:"pid,omitempty"`
	ExitStatus  *uint32    `json:"exit_status,omitempty"`
	ExitedAt    *time.Time `json:"exited_at,omitempty"`
}

func newEventJSON(ev *xdv1.Event) eventJSON {
	j := eventJSON{
		Timestamp: tsPtr(ev.Timestamp), Namespace: ev.Namespace, Topic: ev.Topic,
		ContainerID: ev.ContainerId, ExecID: ev.ExecId, Image: ev.Image, Pid: ev.Pid,
		ExitedAt: tsPtr(ev.ExitedAt),
	}
	if strings.HasSuffix(ev.Topic, "/exit") || ev.ExitStatus != 0 {
		s := ev.ExitStatus
		j.ExitStatus = &s
	}
	return j
}

func printClientVersion(e *env) error {
	fmt.Fprintf(e.stdout, "xctl version %s (commit %s)\n", version.Version, version.Commit)
	return nil
}

// runVersion is `xctl version`: ours, then Version.Version.
func runVersion(ctx context.Context, e *env, fs *flagSet, args []string) error {
	fmt.Fprintf(e.stdout, "Client:\n  Version: %s\n  Commit:  %s\n", version.Version, version.Commit)
	c, err := e.connect()
	if err != nil {
		return err
	}
	v, err := c.Version().Version(ctx, emptyReq())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Server (xd):\n  Version: %s\n  Commit:  %s\n", v.Version, v.Commit)
	return nil
}

// runInfo is `xctl info`: Version.Info.
func runInfo(ctx context.Context, e *env, fs *flagSet, args []string) error {
	asJSON, err := wantJSON(fs, "text")
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	in, err := c.Version().Info(ctx, emptyReq())
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e.stdout, in)
	}
	fmt.Fprintf(e.stdout, "Server version:   %s\nPid:              %d\nAddress:          %s\nRoot:             %s\nState:            %s\nUptime:           %s\nGoroutines:       %d\nFile descriptors: %d\nNamespace:        %s\nDefault runtime:  %s\nRuntimes:\n",
		in.Version, in.Pid, in.Address, in.Root, in.State, humanDuration(time.Duration(in.UptimeSeconds)*time.Second), in.Goroutines, in.OpenFds, c.Namespace(), in.DefaultRuntime)
	for _, name := range sortedKeys(in.Runtimes) {
		fmt.Fprintf(e.stdout, "  %s: %s\n", name, in.Runtimes[name])
	}
	return nil
}
