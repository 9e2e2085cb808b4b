package xctl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	cg1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	cg2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/xstack/xstack/pkg/client"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// statsInterval is how far apart the two readings behind a CPU % are, and
// how often a streaming `xctl stats` refreshes.
var statsInterval = time.Second

// statsSample is one reading of a container's cgroup metrics, reduced to
// what `xctl stats` shows.
type statsSample struct {
	at       time.Time
	cpuNanos uint64 // CPU time used by the container so far
	// memUsage leaves out the inactive page cache, which the kernel
	// reclaims first, as docker counts it.
	memUsage   uint64
	memLimit   uint64 // math.MaxUint64-like values mean none
	pids       uint64
	blockRead  uint64
	blockWrite uint64
	raw        json.RawMessage
}

// sampleOf decodes the metrics xd relays from a shim: cgroup v1 or v2
// stats of github.com/containerd/cgroups, as protobuf JSON.
func sampleOf(typeURL string, raw []byte, at time.Time) (statsSample, error) {
	s := statsSample{at: at, raw: raw}
	switch {
	case strings.HasSuffix(typeURL, "cgroups.v1.Metrics"):
		var m cg1.Metrics
		if err := protojson.Unmarshal(raw, &m); err != nil {
			return s, fmt.Errorf("decode %s: %w", typeURL, err)
		}
		s.cpuNanos = m.GetCPU().GetUsage().GetTotal()
		mem := m.GetMemory()
		s.memUsage = withoutInactive(mem.GetUsage().GetUsage(), mem.GetTotalInactiveFile())
		s.memLimit = mem.GetUsage().GetLimit()
		s.pids = m.GetPids().GetCurrent()
		for _, e := range m.GetBlkio().GetIoServiceBytesRecursive() {
			switch strings.ToLower(e.GetOp()) {
			case "read":
				s.blockRead += e.GetValue()
			case "write":
				s.blockWrite += e.GetValue()
			}
		}
	case strings.HasSuffix(typeURL, "cgroups.v2.Metrics"):
		var m cg2.Metrics
		if err := protojson.Unmarshal(raw, &m); err != nil {
			return s, fmt.Errorf("decode %s: %w", typeURL, err)
		}
		s.cpuNanos = m.GetCPU().GetUsageUsec() * 1000
		mem := m.GetMemory()
		s.memUsage = withoutInactive(mem.GetUsage(), mem.GetInactiveFile())
		s.memLimit = mem.GetUsageLimit()
		s.pids = m.GetPids().GetCurrent()
		for _, e := range m.GetIo().GetUsage() {
			s.blockRead += e.GetRbytes()
			s.blockWrite += e.GetWbytes()
		}
	default:
		return s, fmt.Errorf("metrics of type %q are not cgroup metrics", typeURL)
	}
	return s, nil
}

func withoutInactive(usage, inactive uint64) uint64 {
	if inactive < usage {
		return usage - inactive
	}
	return usage
}

// statsRow is one line of `xctl stats`, and its JSON form.
type statsRow struct {
	ID            string          `json:"id"`
	CPUPercent    float64         `json:"cpu_percent"`
	MemoryUsage   uint64          `json:"memory_usage"`
	MemoryLimit   uint64          `json:"memory_limit"`
	MemoryPercent float64         `json:"memory_percent"`
	BlockRead     uint64          `json:"block_read"`
	BlockWrite    uint64          `json:"block_write"`
	Pids          uint64          `json:"pids"`
	Metrics       json.RawMessage `json:"metrics"`
}

// statsRowOf computes a row from two readings of one container. CPU % is
// of one CPU, as docker and top count it (200% is two CPUs busy). A
// memory limit above the host's memory (none set) shows as the host's.
func statsRowOf(id string, prev, cur statsSample, hostMemory uint64) statsRow {
	r := statsRow{
		ID: id, MemoryUsage: cur.memUsage, MemoryLimit: cur.memLimit, Pids: cur.pids,
		BlockRead: cur.blockRead, BlockWrite: cur.blockWrite, Metrics: cur.raw,
	}
	if hostMemory > 0 && (r.MemoryLimit == 0 || r.MemoryLimit > hostMemory) {
		r.MemoryLimit = hostMemory
	}
	if r.MemoryLimit > 0 {
		r.MemoryPercent = float64(r.MemoryUsage) / float64(r.MemoryLimit) * 100
	}
	if wall := cur.at.Sub(prev.at); wall > 0 && cur.cpuNanos >= prev.cpuNanos {
		r.CPUPercent = float64(cur.cpuNanos-prev.cpuNanos) / float64(wall.Nanoseconds()) * 100
	}
	return r
}

// hostMemory is MemTotal of /proc/meminfo in bytes, 0 if unknown. xctl
// reaches xd over a unix socket, so this is xd's host.
func hostMemory() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	return memTotal(f)
}

func memTotal(r io.Reader) uint64 {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			if kb, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// humanBinarySize is a byte count in binary units, as docker prints
// memory: "1.5MiB", "7.77GiB", "1023B" (at least three significant
// digits, no exponent).
func humanBinarySize(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	decimals := 0
	switch {
	case f < 10:
		decimals = 2
	case f < 100:
		decimals = 1
	}
	s := strconv.FormatFloat(f, 'f', decimals, 64)
	if decimals > 0 {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s + units[i]
}

// runStats is `xctl stats`: a table of the containers' CPU, memory, block
// I/O and pids, refreshed every second until interrupted, or printed once
// with --no-stream. Without names it shows every running container.
func runStats(ctx context.Context, e *env, fs *flagSet, args []string) error {
	asJSON, err := wantJSON(fs, "table")
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	st := &statsRun{c: c, named: args, memory: hostMemory()}
	prev, err := st.collect(ctx)
	if err != nil {
		return err
	}
	_, tty := terminalFd(e.stdout)
	clear := !asJSON && !fs.boolean("no-stream") && tty
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(statsInterval):
		}
		cur, err := st.collect(ctx)
		if err != nil {
			return err
		}
		rows := st.rows(prev, cur)
		var out bytes.Buffer
		if clear {
			out.WriteString("\033[2J\033[H")
		}
		if asJSON {
			err = writeJSON(&out, rows)
		} else {
			err = writeStatsTable(&out, rows)
		}
		if err != nil {
			return err
		}
		if _, err := e.stdout.Write(out.Bytes()); err != nil {
			return err
		}
		if fs.boolean("no-stream") {
			return nil
		}
		prev = cur
	}
}

// statsRun is what one `xctl stats` watches.
type statsRun struct {
	c      *client.Client
	named  []string // the containers asked for; none: all running
	memory uint64   // the host's, for limits that are none
}

// collect reads the metrics of the containers asked for, or of every
// running one; a listed container that is gone by the time it is read
// is left out, a named one is an error.
func (st *statsRun) collect(ctx context.Context) (map[string]statsSample, error) {
	ids := st.named
	if len(ids) == 0 {
		l, err := st.c.Tasks().List(ctx, &xdv1.ListTasksRequest{})
		if err != nil {
			return nil, err
		}
		for _, t := range l.Tasks {
			if isLive(t) {
				ids = append(ids, t.ContainerId)
			}
		}
	}
	samples := make(map[string]statsSample, len(ids))
	for _, id := range ids {
		r, err := st.c.Tasks().Metrics(ctx, &xdv1.ContainerRequest{ContainerId: id})
		if err == nil {
			var s statsSample
			if s, err = sampleOf(r.TypeUrl, r.Json, time.Now()); err == nil {
				samples[id] = s
				continue
			}
		}
		if len(st.named) > 0 {
			return nil, fmt.Errorf("stats of %s: %w", id, err)
		}
	}
	return samples, nil
}

// rows pairs the two readings of each container read both times, in the
// order asked for, else by id.
func (st *statsRun) rows(prev, cur map[string]statsSample) []statsRow {
	ids := st.named
	if len(ids) == 0 {
		for id := range cur {
			ids = append(ids, id)
		}
		slices.Sort(ids)
	}
	rows := []statsRow{}
	for _, id := range ids {
		p, okPrev := prev[id]
		c, okCur := cur[id]
		if okPrev && okCur {
			rows = append(rows, statsRowOf(id, p, c, st.memory))
		}
	}
	return rows
}

func writeStatsTable(w io.Writer, rows []statsRow) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tCPU %\tMEM USAGE / LIMIT\tMEM %\tBLOCK I/O\tPIDS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.2f%%\t%s / %s\t%.2f%%\t%s / %s\t%d\n", r.ID, r.CPUPercent,
			humanBinarySize(r.MemoryUsage), humanBinarySize(r.MemoryLimit), r.MemoryPercent,
			humanSize(int64(r.BlockRead)), humanSize(int64(r.BlockWrite)), r.Pids)
	}
	return tw.Flush()
}
