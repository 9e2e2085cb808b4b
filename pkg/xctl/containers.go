package xctl

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/xstack/xstack/pkg/client"
	"github.com/xstack/xstack/pkg/flowctl"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// psRow is one container of ps, also its --format json object.
type psRow struct {
	ID        string    `json:"id"`
	Image     string    `json:"image"`
	Command   string    `json:"command"`
	CreatedAt time.Time `json:"created_at"`
	Status    string    `json:"status"`
	State     string    `json:"state"`
	Pid       uint32    `json:"pid,omitempty"`
	ExitCode  *uint32   `json:"exit_code,omitempty"`
	Runtime   string    `json:"runtime"`
}

// runPs is `xctl ps`: Containers.List and Tasks.List (at once, on the one
// connection), joined on the id.
func runPs(ctx context.Context, e *env, fs *flagSet, args []string) error {
	asJSON, err := wantJSON(fs, "table")
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	type taskList struct {
		r   *xdv1.ListTasksResponse
		err error
	}
	tasks := make(chan taskList, 1)
	go func() {
		r, err := c.Tasks().List(ctx, &xdv1.ListTasksRequest{})
		tasks <- taskList{r, err}
	}()
	cl, err := c.Containers().List(ctx, &xdv1.ListContainersRequest{})
	tl := <-tasks
	if err != nil {
		return err
	}
	if tl.err != nil {
		return tl.err
	}
	rows := psRows(cl.Containers, tl.r.Tasks, fs.boolean("all"), time.Now())
	switch {
	case fs.boolean("quiet"):
		for _, r := range rows {
			fmt.Fprintln(e.stdout, r.ID)
		}
	case asJSON:
		return writeJSON(e.stdout, rows)
	default:
		w := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
		fmt.Fprintln(w, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPID")
		now := time.Now()
		for _, r := range rows {
			pid := ""
			if r.Pid != 0 {
				pid = fmt.Sprint(r.Pid)
			}
			fmt.Fprintf(w, "%s\t%s\t%q\t%s\t%s\t%s\n", r.ID, r.Image, truncate(r.Command, 20), ago(r.CreatedAt, now), r.Status, pid)
		}
		return w.Flush()
	}
	return nil
}

// psRows joins containers with their init tasks, newest first; without all
// only running or paused ones are kept.
func psRows(ctrs []*xdv1.Container, tasks []*xdv1.Task, all bool, now time.Time) []psRow {
	byID := map[string]*xdv1.Task{}
	for _, t := range tasks {
		if t.ExecId == "" {
			byID[t.ContainerId] = t
		}
	}
	var rows []psRow
	for _, ctr := range ctrs {
		t := byID[ctr.Id]
		if !all && !isLive(t) {
			continue
		}
		r := psRow{
			ID:      ctr.Id,
			Image:   ctr.Image,
			Command: quoteArgs(specArgs(ctr.Spec)),
			Status:  taskStatus(t, now),
			State:   "created",
			Runtime: ctr.Runtime,
		}
		if ctr.CreatedAt != nil {
			r.CreatedAt = ctr.CreatedAt.AsTime()
		}
		if t != nil {
			r.State = strings.ToLower(t.Status.String())
			if isLive(t) {
				r.Pid = t.Pid
			}
			if t.Status == xdv1.Status_STOPPED {
				code := t.ExitStatus
				r.ExitCode = &code
			}
		}
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].CreatedAt.After(rows[j].CreatedAt) })
	return rows
}

// specArgs is process.args of an OCI spec in JSON.
func specArgs(spec []byte) []string {
	var s struct {
		Process struct {
			Args []string `json:"args"`
		} `json:"process"`
	}
	if json.Unmarshal(spec, &s) != nil {
		return nil
	}
	return s.Process.Args
}

// forEach runs fn for every name, printing the name after each success
// (as docker kill/stop/rm do); it returns an error if any failed, after
// reporting each failure on stderr.
func (e *env) forEach(args []string, fn func(id string) error) error {
	failed := 0
	var last error
	for _, id := range args {
		if err := fn(id); err != nil {
			failed++
			last = err
			if len(args) > 1 {
				fmt.Fprintf(e.stderr, "xctl: %s\n", client.Message(err))
			}
			continue
		}
		fmt.Fprintln(e.stdout, id)
	}
	switch {
	case failed == 0:
		return nil
	case len(args) == 1:
		return last
	}
	return &exitCode{code: exitError}
}

// runKill is `xctl kill`: Tasks.Kill of each init.
func runKill(ctx context.Context, e *env, fs *flagSet, args []string) error {
	sig, err := parseSignal(fs.str("signal"))
	if err != nil {
		return usagef("%v", err)
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	return e.forEach(args, func(id string) error {
		_, err := c.Tasks().Kill(ctx, &xdv1.KillRequest{ContainerId: id, Signal: uint32(sig), All: fs.boolean("all")})
		return err
	})
}

// runStop is `xctl stop`: Tasks.Stop (SIGTERM, SIGKILL after -t seconds).
func runStop(ctx context.Context, e *env, fs *flagSet, args []string) error {
	timeout, err := graceSeconds(fs)
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	return e.forEach(args, func(id string) error {
		_, err := c.Tasks().Stop(ctx, &xdv1.StopRequest{ContainerId: id, TimeoutSeconds: timeout})
		return err
	})
}

// graceSeconds reads --time (graceFlag).
func graceSeconds(fs *flagSet) (uint32, error) {
	timeout, err := fs.integer("time")
	if err != nil {
		return 0, err
	}
	if timeout < 0 || timeout > math.MaxUint32 {
		return 0, usagef("invalid --time %d", timeout)
	}
	return uint32(timeout), nil
}

// runRm is `xctl rm`: with -f, Containers.Delete force; without, a
// stopped task is removed first (Tasks.Get, Tasks.Delete) as docker rm of
// an exited container does, then Containers.Delete (xd refuses a live one).
func runRm(ctx context.Context, e *env, fs *flagSet, args []string) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	force := fs.boolean("force")
	return e.forEach(args, func(id string) error {
		if !force {
			t, err := c.Tasks().Get(ctx, &xdv1.ContainerRequest{ContainerId: id})
			switch {
			case err == nil && (t.Status == xdv1.Status_STOPPED || t.Status == xdv1.Status_CREATED && t.Pid == 0):
				if _, err := c.Tasks().Delete(ctx, &xdv1.DeleteTaskRequest{ContainerId: id}); err != nil && !client.IsNotFound(err) {
					return err
				}
			case err == nil && isLive(t):
				return fmt.Errorf("cannot remove container %q: it is %s: stop it first or use rm -f", id, strings.ToLower(t.Status.String()))
			}
		}
		_, err := c.Containers().Delete(ctx, &xdv1.DeleteContainerRequest{Id: id, Force: force})
		return err
	})
}

// runWait is `xctl wait`: Tasks.Wait of each init, printing each status;
// xctl exits with the last one.
func runWait(ctx context.Context, e *env, fs *flagSet, args []string) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	var last uint32
	for _, id := range args {
		st, err := c.Tasks().Wait(ctx, &xdv1.WaitRequest{ContainerId: id})
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, st.ExitStatus)
		last = st.ExitStatus
	}
	if last != 0 {
		return &exitCode{code: int(last)}
	}
	return nil
}

// inspectTask is the task part of inspect.
type inspectTask struct {
	Status      string     `json:"status"`
	Pid         uint32     `json:"pid"`
	ExitCode    uint32     `json:"exit_code"`
	Signal      string     `json:"signal,omitempty"`
	ExitedAt    *time.Time `json:"exited_at,omitempty"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	OOMKilled   bool       `json:"oom_killed"`
	Error       string     `json:"error,omitempty"`
	TTY         bool       `json:"tty"`
	Stdin       bool       `json:"stdin"`
	Runtime     string     `json:"runtime,omitempty"`
	ShimAddress string     `json:"shim_address,omitempty"`
	// What the restart policy did and will do.
	RestartCount  uint32 `json:"restart_count"`
	StoppedByUser bool   `json:"stopped_by_user,omitempty"`
}

// inspectRecord is one element of inspect's JSON array.
type inspectRecord struct {
	ID            string            `json:"id"`
	Image         string            `json:"image"`
	Runtime       string            `json:"runtime"`
	RuntimeBinary string            `json:"runtime_binary,omitempty"`
	SnapshotKey   string            `json:"snapshot_key,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	CreatedAt     *time.Time        `json:"created_at,omitempty"`
	UpdatedAt     *time.Time        `json:"updated_at,omitempty"`
	Options       json.RawMessage   `json:"options,omitempty"`
	Spec          json.RawMessage   `json:"spec,omitempty"`
	Task          *inspectTask      `json:"task"`
}

// runInspect is `xctl inspect`: Containers.Get and Tasks.Get of each.
func runInspect(ctx context.Context, e *env, fs *flagSet, args []string) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	out := []inspectRecord{}
	var firstErr error
	for _, id := range args {
		ctr, err := c.Containers().Get(ctx, &xdv1.GetContainerRequest{Id: id})
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		t, err := c.Tasks().Get(ctx, &xdv1.ContainerRequest{ContainerId: id})
		if err != nil && !client.IsNotFound(err) {
			return err
		}
		out = append(out, newInspectRecord(ctr, t))
	}
	if err := writeJSON(e.stdout, out); err != nil {
		return err
	}
	return firstErr
}

func newInspectRecord(ctr *xdv1.Container, t *xdv1.Task) inspectRecord {
	r := inspectRecord{
		ID: ctr.Id, Image: ctr.Image, Runtime: ctr.Runtime, RuntimeBinary: ctr.RuntimeBinary,
		SnapshotKey: ctr.SnapshotKey, Labels: ctr.Labels,
		CreatedAt: tsPtr(ctr.CreatedAt), UpdatedAt: tsPtr(ctr.UpdatedAt),
	}
	if ctr.Options != nil {
		// The generated struct's json tags are the proto names; encoding/json
		// keeps protojson (and its start-up cost) out of every xctl command.
		if b, err := json.Marshal(ctr.Options); err == nil {
			r.Options = b
		}
	}
	if json.Valid(ctr.Spec) {
		r.Spec = ctr.Spec
	}
	if t != nil {
		r.Task = &inspectTask{
			Status: strings.ToLower(t.Status.String()), Pid: t.Pid, ExitCode: t.ExitStatus,
			ExitedAt: tsPtr(t.ExitedAt), StartedAt: tsPtr(t.StartedAt),
			OOMKilled: t.OomKilled, Error: t.Error, TTY: t.Tty, Stdin: t.Stdin,
			Runtime: t.Runtime, ShimAddress: t.ShimAddress,
			RestartCount: t.RestartCount, StoppedByUser: t.StoppedByUser,
		}
		if t.Status == xdv1.Status_STOPPED {
			r.Task.Signal = exitSignal(t.ExitStatus)
		}
	}
	return r
}

func tsPtr(ts *timestamppb.Timestamp) *time.Time {
	if ts == nil {
		return nil
	}
	t := ts.AsTime()
	return &t
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}

// runSimple wraps a per-container call that prints the name on success.
func runSimple(call func(ctx context.Context, c *client.Client, id string) error) func(context.Context, *env, *flagSet, []string) error {
	return func(ctx context.Context, e *env, fs *flagSet, args []string) error {
		c, err := e.connect()
		if err != nil {
			return err
		}
		return e.forEach(args, func(id string) error { return call(ctx, c, id) })
	}
}

// runTop is `xctl top`: the container's processes, as `ps -f` shows them
// on the host (docker's top), with the exec each one runs for.
func runTop(ctx context.Context, e *env, fs *flagSet, args []string) error {
	asJSON, err := wantJSON(fs, "table")
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	r, err := c.Tasks().Pids(ctx, &xdv1.ContainerRequest{ContainerId: args[0]})
	if err != nil {
		return err
	}
	rows := topRows(r.Processes)
	if asJSON {
		return writeJSON(e.stdout, rows)
	}
	now := time.Now()
	w := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(w, "UID\tPID\tPPID\tSTIME\tTIME\tEXEC ID\tCMD")
	for _, p := range rows {
		if p.Command == "" {
			fmt.Fprintf(w, "?\t%d\t?\t?\t?\t%s\t?\n", p.Pid, p.ExecID)
			continue
		}
		fmt.Fprintf(w, "%d\t%d\t%d\t%s\t%s\t%s\t%s\n", p.UID, p.Pid, p.PPid, psStartTime(p.StartedAt, now), psCPUTime(p.CPUTime), p.ExecID, p.Command)
	}
	return w.Flush()
}

// topRow is a line of `xctl top`, and its JSON form.
type topRow struct {
	UID       uint32        `json:"uid"`
	Pid       uint32        `json:"pid"`
	PPid      uint32        `json:"ppid"`
	StartedAt time.Time     `json:"started_at"`
	CPUTime   time.Duration `json:"cpu_time_ns"`
	ExecID    string        `json:"exec_id,omitempty"`
	// Empty when the process was gone before xd could read it.
	Command string `json:"command"`
}

func topRows(procs []*xdv1.ProcessInfo) []topRow {
	rows := make([]topRow, 0, len(procs))
	for _, p := range procs {
		r := topRow{UID: p.Uid, Pid: p.Pid, PPid: p.Ppid, ExecID: p.ExecId, Command: p.Command}
		if p.StartedAt != nil {
			r.StartedAt = p.StartedAt.AsTime().Local()
		}
		if p.CpuTime != nil {
			r.CPUTime = p.CpuTime.AsDuration()
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b topRow) int { return cmp.Compare(a.Pid, b.Pid) })
	return rows
}

// psStartTime is a start time as ps prints STIME: the time of day within
// the last day, else the date within the year, else the year.
func psStartTime(t, now time.Time) string {
	switch {
	case now.Sub(t) < 24*time.Hour:
		return t.Format("15:04")
	case t.Year() == now.Year():
		return t.Format("Jan02")
	default:
		return t.Format("2006")
	}
}

// psCPUTime is CPU time as ps prints TIME: [DD-]HH:MM:SS.
func psCPUTime(d time.Duration) string {
	s := int64(d / time.Second)
	hms := fmt.Sprintf("%02d:%02d:%02d", s/3600%24, s/60%60, s%60)
	if days := s / 86400; days > 0 {
		return fmt.Sprintf("%d-%s", days, hms)
	}
	return hms
}

// runLogs is `xctl logs`: the Tasks.Logs stream, stdout entries to our
// stdout and stderr entries to our stderr.
func runLogs(ctx context.Context, e *env, fs *flagSet, args []string) error {
	req := &xdv1.LogsRequest{ContainerId: args[0], Follow: fs.boolean("follow")}
	if n := fs.str("tail"); n != "all" {
		lines, err := strconv.ParseUint(n, 10, 32)
		if err != nil {
			return usagef("--tail %q: want a number of lines or all", n)
		}
		req.Tail = proto.Uint32(uint32(lines))
	}
	if v := fs.str("since"); v != "" {
		since, err := parseSince(v, time.Now())
		if err != nil {
			return usagef("--since: %v", err)
		}
		req.Since = timestamppb.New(since)
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	req.Namespace, req.FlowControl = c.Namespace(), true
	stream, err := c.Tasks().Logs(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(req); err != nil {
		return err
	}
	out := map[string]*stampedWriter{
		"stdout": {w: e.stdout, stamp: fs.boolean("timestamps"), lineStart: true},
		"stderr": {w: e.stderr, stamp: fs.boolean("timestamps"), lineStart: true},
	}
	var consumed flowctl.Receiver
	flow := false
	for {
		entry, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if entry.FlowControl {
			flow = true
			continue
		}
		if entry.Stream == "stderr" {
			out["stderr"].write(entry)
		} else if err := out["stdout"].write(entry); err != nil {
			return err
		}
		// Written out: xd may send more (see pkg/flowctl).
		if n, due := consumed.Consumed(); flow && due {
			if err := stream.Send(&xdv1.LogsRequest{Consumed: n}); err != nil {
				return err
			}
		}
	}
}

// stampedWriter writes one stream's log entries, each line preceded by
// the time it was logged when stamp is set (docker's logs -t).
type stampedWriter struct {
	w         io.Writer
	stamp     bool
	lineStart bool // the next byte starts a line
}

// rfc3339NanoFixed keeps the column of the stamps straight.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

func (s *stampedWriter) write(entry *xdv1.LogEntry) error {
	if !s.stamp {
		_, err := s.w.Write(entry.Data)
		return err
	}
	stamp := entry.Time.AsTime().UTC().Format(rfc3339NanoFixed) + " "
	var b []byte
	for data := entry.Data; len(data) > 0; {
		if s.lineStart {
			b = append(b, stamp...)
		}
		n := bytes.IndexByte(data, '\n') + 1
		if n == 0 {
			n = len(data)
		}
		b = append(b, data[:n]...)
		s.lineStart = data[n-1] == '\n'
		data = data[n:]
	}
	_, err := s.w.Write(b)
	return err
}
