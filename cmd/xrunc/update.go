package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/pkg/cli"
)

// updateFlags are runc's per-resource flags of update; they apply when
// --resources is not given.
var updateFlags = []cli.Flag{
	{Names: []string{"resources", "r"}, Usage: "path to a file with the resources to update (a LinuxResources JSON), or '-' for stdin"},
	{Names: []string{"blkio-weight"}, Usage: "block IO weight (10 to 1000)"},
	{Names: []string{"cpu-period"}, Usage: "CPU CFS period in microseconds"},
	{Names: []string{"cpu-quota"}, Usage: "CPU CFS quota in microseconds"},
	{Names: []string{"cpu-share"}, Usage: "CPU shares (relative weight)"},
	{Names: []string{"cpu-rt-period"}, Usage: "CPU realtime period in microseconds"},
	{Names: []string{"cpu-rt-runtime"}, Usage: "CPU realtime runtime in microseconds"},
	{Names: []string{"cpuset-cpus"}, Usage: "CPUs to use"},
	{Names: []string{"cpuset-mems"}, Usage: "memory nodes to use"},
	{Names: []string{"memory"}, Usage: "memory limit (in bytes, or with a k/m/g suffix)"},
	{Names: []string{"memory-reservation"}, Usage: "memory reservation or soft limit"},
	{Names: []string{"memory-swap"}, Usage: "total memory plus swap; -1 for unlimited swap"},
	{Names: []string{"pids-limit"}, Usage: "maximum number of pids; -1 for unlimited"},
}

var updateCommand = &cli.Command{
	Name:      "update",
	Usage:     "update container resource constraints",
	ArgsUsage: "<container-id>",
	Flags:     updateFlags,
	Action: func(ctx *cli.Context) error {
		if err := ctx.NArg(1, 1); err != nil {
			return err
		}
		res, err := updateResources(ctx, os.Stdin)
		if err != nil {
			return err
		}
		c, err := g.rt.Load(ctx.Args[0])
		if err != nil {
			return err
		}
		return c.Update(res)
	},
}

// updateResources builds the update from --resources or from the flags.
func updateResources(ctx *cli.Context, stdin io.Reader) (*specs.LinuxResources, error) {
	if path := ctx.String("resources"); path != "" {
		var data []byte
		var err error
		if path == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(path)
		}
		if err != nil {
			return nil, fmt.Errorf("read resources: %w", err)
		}
		var res specs.LinuxResources
		if err := json.Unmarshal(data, &res); err != nil {
			return nil, fmt.Errorf("decode resources from %s: %w", path, err)
		}
		return &res, nil
	}
	res := &specs.LinuxResources{}
	var p flagParser
	p.ctx = ctx
	if v, ok := p.uint("blkio-weight", false); ok {
		w := uint16(v)
		res.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	cpu := &specs.LinuxCPU{}
	if v, ok := p.uint("cpu-period", false); ok {
		cpu.Period = &v
	}
	if v, ok := p.int("cpu-quota", false); ok {
		cpu.Quota = &v
	}
	if v, ok := p.uint("cpu-share", false); ok {
		cpu.Shares = &v
	}
	if v, ok := p.uint("cpu-rt-period", false); ok {
		cpu.RealtimePeriod = &v
	}
	if v, ok := p.int("cpu-rt-runtime", false); ok {
		cpu.RealtimeRuntime = &v
	}
	cpu.Cpus, cpu.Mems = ctx.String("cpuset-cpus"), ctx.String("cpuset-mems")
	if *cpu != (specs.LinuxCPU{}) {
		res.CPU = cpu
	}
	mem := &specs.LinuxMemory{}
	if v, ok := p.int("memory", true); ok {
		mem.Limit = &v
	}
	if v, ok := p.int("memory-reservation", true); ok {
		mem.Reservation = &v
	}
	if v, ok := p.int("memory-swap", true); ok {
		mem.Swap = &v
	}
	if mem.Limit != nil || mem.Reservation != nil || mem.Swap != nil {
		res.Memory = mem
	}
	if v, ok := p.int("pids-limit", false); ok {
		res.Pids = &specs.LinuxPids{Limit: &v}
	}
	if p.err != nil {
		return nil, p.err
	}
	return res, nil
}

// flagParser reads numeric flags, keeping the first error.
type flagParser struct {
	ctx *cli.Context
	err error
}

func (p *flagParser) int(name string, bytes bool) (int64, bool) {
	s := p.ctx.String(name)
	if s == "" || p.err != nil {
		return 0, false
	}
	var v int64
	var err error
	if bytes {
		v, err = parseBytes(s)
	} else {
		v, err = strconv.ParseInt(s, 10, 64)
	}
	if err != nil {
		p.err = fmt.Errorf("invalid value for --%s: %q", name, s)
		return 0, false
	}
	return v, true
}

func (p *flagParser) uint(name string, bytes bool) (uint64, bool) {
	v, ok := p.int(name, bytes)
	if ok && v < 0 {
		p.err = fmt.Errorf("invalid value for --%s: %d is negative", name, v)
		return 0, false
	}
	return uint64(v), ok
}

// parseBytes reads a size like 512, 64k, 128m or 1g (binary units); -1
// means unlimited.
func parseBytes(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	mult := int64(1)
	lower := strings.ToLower(strings.TrimSuffix(strings.ToLower(s), "b"))
	switch {
	case strings.HasSuffix(lower, "k"):
		mult, lower = 1<<10, strings.TrimSuffix(lower, "k")
	case strings.HasSuffix(lower, "m"):
		mult, lower = 1<<20, strings.TrimSuffix(lower, "m")
	case strings.HasSuffix(lower, "g"):
		mult, lower = 1<<30, strings.TrimSuffix(lower, "g")
	}
	n, err := strconv.ParseInt(lower, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}
