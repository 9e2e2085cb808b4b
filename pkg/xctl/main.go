package xctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/xstack/xstack/pkg/client"
)

// Exit codes of xctl itself (the container's own status is passed through).
const (
	exitError      = 1
	exitRunFailure = 125 // run/create/start failed before the container ran
)

// exitCode makes xctl exit with code; err, when set, is printed first.
type exitCode struct {
	code int
	err  error
}

func (e *exitCode) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e *exitCode) Unwrap() error { return e.err }

// runFailure marks err as a failure before the container started (125).
func runFailure(err error) error {
	if err == nil {
		return nil
	}
	var ec *exitCode
	if errors.As(err, &ec) {
		return err
	}
	return &exitCode{code: exitRunFailure, err: err}
}

// env is what a command runs with: the global options, the standard
// streams and, once connect is called, a client.
type env struct {
	address      string
	namespace    string
	namespaceSet bool // --namespace/-n or XD_NAMESPACE was given
	debug        bool
	getenv       func(string) string

	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	client *client.Client
}

// connect dials xd once.
func (e *env) connect() (*client.Client, error) {
	if e.client != nil {
		return e.client, nil
	}
	var opts []client.Option
	if e.debug {
		opts = append(opts, client.WithDebug(func(format string, args ...any) {
			fmt.Fprintf(e.stderr, "DEBU "+format+"\n", args...)
		}))
	}
	c, err := client.New(e.address, e.namespace, opts...)
	if err != nil {
		return nil, err
	}
	e.client = c
	return c, nil
}

// command is one xctl command (or a group of subcommands).
type command struct {
	name      string
	aliases   []string
	usage     string
	argsUsage string
	flags     []*flagDef
	// verbatim stops flag parsing at the first positional argument (run,
	// exec: what follows belongs to the container).
	verbatim bool
	// minArgs/maxArgs bound the positional arguments (maxArgs < 0: any).
	minArgs, maxArgs int
	sub              []*command
	run              func(ctx context.Context, e *env, fs *flagSet, args []string) error
}

var globalFlags = []*flagDef{
	{long: "address", short: "a", kind: stringFlag, usage: "xd's socket (env XD_ADDRESS)", def: client.DefaultAddress},
	{long: "namespace", short: "n", kind: stringFlag, usage: "namespace (env XD_NAMESPACE)", def: "default"},
	{long: "debug", kind: boolFlag, usage: "log every call to xd on stderr"},
	{long: "version", short: "v", kind: boolFlag, usage: "print the client version"},
}

// Main runs xctl with os.Args and returns the process exit code.
func Main(args []string) int {
	return Run(args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// Run runs xctl with argv (without the program name) and the given streams
// and returns the exit code.
func Run(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runWith(argv, stdin, stdout, stderr, os.Getenv)
}

// runWith is Run reading XD_ADDRESS and XD_NAMESPACE through getenv.
func runWith(argv []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	err := run(e, argv)
	if e.client != nil {
		e.client.Close()
	}
	if err == nil {
		return 0
	}
	code := exitError
	var ec *exitCode
	if errors.As(err, &ec) {
		code = ec.code
		err = ec.err
	}
	if err != nil {
		fmt.Fprintf(stderr, "xctl: %s\n", client.Message(err))
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, "See 'xctl --help'.")
		}
	}
	return code
}

func run(e *env, argv []string) error {
	gfs := newFlagSet(globalFlags, false)
	rest, err := gfs.parse(argv)
	if err != nil {
		return err
	}
	e.address = firstNonEmpty(flagOrEnv(gfs, "address", e.getenv("XD_ADDRESS")), client.DefaultAddress)
	e.namespace = firstNonEmpty(flagOrEnv(gfs, "namespace", e.getenv("XD_NAMESPACE")), "default")
	e.namespaceSet = gfs.isSet("namespace") || e.getenv("XD_NAMESPACE") != ""
	e.debug = gfs.boolean("debug")
	if gfs.boolean("version") {
		return printClientVersion(e)
	}
	cmds := commands()
	if len(rest) == 0 || gfs.boolean("help") {
		printHelp(e.stdout, "xctl", "xd's command line client", cmds)
		return nil
	}
	if rest[0] == "help" {
		return dispatchHelp(e, cmds, rest[1:])
	}
	return dispatch(e, cmds, "xctl", rest)
}

func dispatchHelp(e *env, cmds []*command, path []string) error {
	prefix := "xctl"
	for _, name := range path {
		c := findCommand(cmds, name)
		if c == nil {
			return usagef("unknown command %q", name)
		}
		prefix += " " + c.name
		if len(c.sub) == 0 {
			printCommandHelp(e.stdout, prefix, c)
			return nil
		}
		cmds = c.sub
	}
	printHelp(e.stdout, prefix, "", cmds)
	return nil
}

func dispatch(e *env, cmds []*command, prefix string, argv []string) error {
	c := findCommand(cmds, argv[0])
	if c == nil {
		return usagef("unknown command %q for %q", argv[0], prefix)
	}
	prefix += " " + c.name
	if len(c.sub) > 0 {
		if len(argv) < 2 || argv[1] == "--help" || argv[1] == "-h" {
			printHelp(e.stdout, prefix, c.usage, c.sub)
			return nil
		}
		return dispatch(e, c.sub, prefix, argv[1:])
	}
	fs := newFlagSet(c.flags, !c.verbatim)
	args, err := fs.parse(argv[1:])
	if err != nil {
		return err
	}
	if fs.boolean("help") {
		printCommandHelp(e.stdout, prefix, c)
		return nil
	}
	if len(args) < c.minArgs || (c.maxArgs >= 0 && len(args) > c.maxArgs) {
		return usagef("%q: wrong number of arguments\nUsage: %s [OPTIONS] %s", prefix, prefix, c.argsUsage)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	return c.run(ctx, e, fs, args)
}

func findCommand(cmds []*command, name string) *command {
	for _, c := range cmds {
		if c.name == name {
			return c
		}
		for _, a := range c.aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

func printHelp(w io.Writer, prefix, usage string, cmds []*command) {
	if usage != "" {
		fmt.Fprintf(w, "%s - %s\n\n", prefix, usage)
	}
	fmt.Fprintf(w, "Usage: %s [OPTIONS] COMMAND\n\nCommands:\n", prefix)
	for _, c := range cmds {
		name := c.name
		if len(c.aliases) > 0 {
			name += ", " + strings.Join(c.aliases, ", ")
		}
		fmt.Fprintf(w, "  %-16s %s\n", name, c.usage)
	}
	if prefix == "xctl" {
		fmt.Fprint(w, "\nGlobal options:\n")
		printFlags(w, globalFlags)
	}
	fmt.Fprintf(w, "\nRun '%s COMMAND --help' for more information on a command.\n", prefix)
}

func printCommandHelp(w io.Writer, prefix string, c *command) {
	fmt.Fprintf(w, "Usage: %s [OPTIONS] %s\n\n%s\n", prefix, c.argsUsage, c.usage)
	if len(c.aliases) > 0 {
		fmt.Fprintf(w, "\nAliases: %s\n", strings.Join(c.aliases, ", "))
	}
	fmt.Fprint(w, "\nOptions:\n")
	printFlags(w, c.flags)
}

func flagOrEnv(fs *flagSet, name, envValue string) string {
	if fs.isSet(name) {
		return fs.str(name)
	}
	return envValue
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// notifySignals returns a channel of the given signals and a stop func.
func notifySignals(sigs ...os.Signal) (chan os.Signal, func()) {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, sigs...)
	return ch, func() { signal.Stop(ch) }
}
