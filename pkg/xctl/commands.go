package xctl

import (
	"context"
	"sort"

	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/xstack/xstack/pkg/client"
	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

func formatFlag(usage string) *flagDef {
	return &flagDef{long: "format", kind: stringFlag, usage: usage}
}

// graceFlag is stop's and restart's --time.
func graceFlag() *flagDef {
	return &flagDef{long: "time", short: "t", kind: stringFlag, def: "0", usage: "seconds to wait before SIGKILL (0: xd's stop_timeout, 10 s by default)"}
}

// wantJSON reads --format: json, or human (the default: "table" or
// "text").
func wantJSON(fs *flagSet, human string) (bool, error) {
	switch f := fs.str("format"); f {
	case "", human:
		return false, nil
	case "json":
		return true, nil
	default:
		return false, usagef("unknown --format %q: want %s or json", f, human)
	}
}

// imageCommands are the `images` subcommands; import, pull, rmi and tag
// are also top-level aliases.
func imageCommands() (importCmd, pullCmd, lsCmd, rmCmd, tagCmd *command) {
	importCmd = &command{name: "import", usage: "Import an OCI image-layout or docker-archive tar (read by xd from its filesystem)", argsUsage: "FILE",
		flags:   []*flagDef{{long: "name", kind: stringFlag, usage: "name the image (when the archive names none, or to override it)"}},
		minArgs: 1, maxArgs: 1, run: runImport}
	pullCmd = &command{name: "pull", usage: "Pull an image from a registry", argsUsage: "REF",
		flags: []*flagDef{
			{long: "plain-http", kind: boolFlag, usage: "use http instead of https"},
			{long: "insecure", kind: boolFlag, usage: "skip TLS certificate verification"},
			{long: "user", short: "u", kind: stringFlag, usage: "registry credentials USER:PASSWORD"},
		},
		minArgs: 1, maxArgs: 1, run: runPull}
	lsCmd = &command{name: "ls", aliases: []string{"list"}, usage: "List images", maxArgs: 0,
		flags: []*flagDef{{long: "quiet", short: "q", kind: boolFlag, usage: "only print names"}, formatFlag("table or json")},
		run:   runImages}
	rmCmd = &command{name: "rm", aliases: []string{"remove"}, usage: "Remove image names", argsUsage: "REF...", minArgs: 1, maxArgs: -1, run: runRmi}
	tagCmd = &command{name: "tag", usage: "Give an image another name", argsUsage: "SOURCE TARGET", minArgs: 2, maxArgs: 2, run: runTag}
	return
}

func commands() []*command {
	imp, pull, ls, rm, tag := imageCommands()
	alias := func(c *command, name string) *command {
		a := *c
		a.name, a.aliases = name, nil
		return &a
	}
	byName := func(call func(ctx context.Context, c *client.Client, id string) error) func(context.Context, *env, *flagSet, []string) error {
		return runSimple(call)
	}
	return []*command{
		{name: "run", usage: "Create and run a container", argsUsage: "IMAGE [COMMAND [ARG...]]", flags: runFlags(), verbatim: true, minArgs: 1, maxArgs: -1, run: runRun},
		{name: "create", usage: "Create a container (start it with xctl start)", argsUsage: "IMAGE [COMMAND [ARG...]]", flags: containerFlags(), verbatim: true, minArgs: 1, maxArgs: -1, run: runCreate},
		{name: "start", usage: "Start created or stopped containers", argsUsage: "CONTAINER...", minArgs: 1, maxArgs: -1, run: runStart,
			flags: []*flagDef{
				{long: "attach", short: "a", kind: boolFlag, usage: "attach to the output and exit with the container's status"},
				{long: "interactive", short: "i", kind: boolFlag, usage: "with -a: forward stdin (the container must have been created with -i)"},
			}},
		{name: "attach", usage: "Attach to a running container's output (and stdin, if created with -i) until it exits", argsUsage: "CONTAINER", minArgs: 1, maxArgs: 1, run: runAttach,
			flags: []*flagDef{{long: "no-stdin", kind: boolFlag, usage: "do not forward stdin"}}},
		{name: "restart", usage: "Stop containers if they run, then start them again", argsUsage: "CONTAINER...", minArgs: 1, maxArgs: -1, run: runRestart,
			flags: []*flagDef{graceFlag()}},
		{name: "exec", usage: "Run a command in a running container", argsUsage: "CONTAINER COMMAND [ARG...]", verbatim: true, minArgs: 2, maxArgs: -1, run: runExec,
			flags: []*flagDef{
				{long: "interactive", short: "i", kind: boolFlag, usage: "keep stdin open"},
				{long: "tty", short: "t", kind: boolFlag, usage: "allocate a pseudo-terminal"},
				{long: "detach", short: "d", kind: boolFlag, usage: "run in the background"},
				{long: "env", short: "e", kind: listFlag, usage: "set an environment variable KEY=VALUE"},
				{long: "user", short: "u", kind: stringFlag, usage: "user: name, uid, uid:gid or name:group"},
				{long: "workdir", short: "w", kind: stringFlag, usage: "working directory"},
			}},
		{name: "ps", usage: "List containers", maxArgs: 0, run: runPs,
			flags: []*flagDef{
				{long: "all", short: "a", kind: boolFlag, usage: "show all containers (default: running and paused)"},
				{long: "quiet", short: "q", kind: boolFlag, usage: "only print names"},
				formatFlag("table or json"),
			}},
		{name: "logs", usage: "Print a container's output", argsUsage: "CONTAINER", minArgs: 1, maxArgs: 1, run: runLogs,
			flags: []*flagDef{
				{long: "follow", short: "f", kind: boolFlag, usage: "keep printing new output"},
				{long: "tail", short: "n", kind: stringFlag, def: "all", usage: "how many of the last lines to print, or all"},
				{long: "since", kind: stringFlag, usage: "only what was logged since a time (2026-12-06T10:00:00Z, a Unix time) or for a while (10m, 1h30m)"},
				{long: "timestamps", short: "t", kind: boolFlag, usage: "begin each line with the time it was logged"},
			}},
		{name: "kill", usage: "Send a signal to containers", argsUsage: "CONTAINER...", minArgs: 1, maxArgs: -1, run: runKill,
			flags: []*flagDef{
				{long: "signal", short: "s", kind: stringFlag, def: "KILL", usage: "signal: name (TERM, SIGTERM) or number"},
				{long: "all", kind: boolFlag, usage: "signal every process of the container"},
			}},
		{name: "stop", usage: "Stop containers: SIGTERM, then SIGKILL after a grace period", argsUsage: "CONTAINER...", minArgs: 1, maxArgs: -1, run: runStop,
			flags: []*flagDef{graceFlag()}},
		{name: "rm", usage: "Remove containers", argsUsage: "CONTAINER...", minArgs: 1, maxArgs: -1, run: runRm,
			flags: []*flagDef{{long: "force", short: "f", kind: boolFlag, usage: "kill and remove running containers"}}},
		{name: "wait", usage: "Wait for containers to exit and print their exit codes", argsUsage: "CONTAINER...", minArgs: 1, maxArgs: -1, run: runWait},
		{name: "inspect", usage: "Show containers and their tasks as JSON", argsUsage: "CONTAINER...", minArgs: 1, maxArgs: -1, run: runInspect},
		{name: "pause", usage: "Freeze all processes of containers", argsUsage: "CONTAINER...", minArgs: 1, maxArgs: -1,
			run: byName(func(ctx context.Context, c *client.Client, id string) error {
				_, err := c.Tasks().Pause(ctx, &xdv1.ContainerRequest{ContainerId: id})
				return err
			})},
		{name: "unpause", aliases: []string{"resume"}, usage: "Thaw paused containers", argsUsage: "CONTAINER...", minArgs: 1, maxArgs: -1,
			run: byName(func(ctx context.Context, c *client.Client, id string) error {
				_, err := c.Tasks().Resume(ctx, &xdv1.ContainerRequest{ContainerId: id})
				return err
			})},
		{name: "top", usage: "List a container's processes", argsUsage: "CONTAINER", minArgs: 1, maxArgs: 1, run: runTop,
			flags: []*flagDef{formatFlag("table or json")}},
		{name: "stats", usage: "Show containers' CPU, memory, block I/O and pids (all running ones without names)", argsUsage: "[CONTAINER...]", maxArgs: -1, run: runStats,
			flags: []*flagDef{
				{long: "no-stream", kind: boolFlag, usage: "print once instead of every second"},
				formatFlag("table or json (with each container's full cgroup metrics)"),
			}},
		{name: "images", aliases: []string{"image"}, usage: "Manage images", sub: []*command{imp, pull, ls, rm, tag}},
		alias(pull, "pull"), alias(imp, "import"), alias(rm, "rmi"), alias(tag, "tag"),
		{name: "events", usage: "Print xd's events as they happen", maxArgs: 0, run: runEvents,
			flags: []*flagDef{formatFlag("text or json"), {long: "topic", kind: listFlag, usage: "keep topics with this prefix (/tasks/, /images/...)"}}},
		{name: "version", usage: "Print the client and server versions", maxArgs: 0, run: runVersion},
		{name: "info", usage: "Print xd's configuration and state", maxArgs: 0, run: runInfo, flags: []*flagDef{formatFlag("text or json")}},
	}
}

func emptyReq() *emptypb.Empty { return &emptypb.Empty{} }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
