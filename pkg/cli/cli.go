// Package cli parses command lines the way urfave/cli v1 does, because
// callers of an OCI runtime (containerd's go-runc, podman's conmon, shell
// scripts written for runc) depend on its quirks: "--flag value",
// "--flag=value", single-dash long flags ("-bundle", "-no-subreaper"), short
// aliases, boolean flags with "=true|false", global flags only before the
// command, and flags after positional arguments moved to the front unless the
// command keeps its arguments verbatim (exec, whose trailing words belong to
// the executed command).
//
// Internal to xstack; no API stability.
package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Kind is the value type of a flag.
type Kind int

const (
	// String takes one value; the last occurrence wins.
	String Kind = iota
	// Bool takes no value, or "=true"/"=false".
	Bool
	// List takes one value per occurrence and keeps them all.
	List
)

// Flag declares one flag. Names[0] is the canonical name used for lookups.
type Flag struct {
	Names   []string
	Kind    Kind
	Default string
	Usage   string
	Hidden  bool
}

// Command declares one subcommand.
type Command struct {
	Name      string
	Usage     string
	ArgsUsage string
	Flags     []Flag
	// KeepArgOrder stops flag parsing at the first positional argument.
	KeepArgOrder bool
	Hidden       bool
	Action       func(*Context) error
}

// App is a command-line program with global flags and subcommands.
type App struct {
	Name     string
	Usage    string
	Version  string // printed by --version/-v
	Flags    []Flag
	Commands []*Command
	// Stdout receives help and version output.
	Stdout io.Writer
	// Before runs after global flags are parsed and before the command.
	Before func(*Context) error
}

// Context holds parsed values for one level (global or command).
type Context struct {
	App     *App
	Command *Command
	Global  *Context
	Args    []string
	values  map[string][]string
	flags   map[string]*Flag
}

// UsageError is returned for malformed command lines.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ErrHelpShown is returned when help or version output was requested and
// printed; the caller should exit 0.
var ErrHelpShown = errors.New("help shown")

// Run parses argv (without the program name) and runs the selected command.
func (a *App) Run(argv []string) error {
	global := newContext(a, nil, a.Flags)
	global.addFlag(&Flag{Names: []string{"help", "h"}, Kind: Bool})
	global.addFlag(&Flag{Names: []string{"version", "v"}, Kind: Bool})
	rest, err := global.parse(argv, true)
	if err != nil {
		return err
	}
	if global.Bool("version") {
		fmt.Fprint(a.Stdout, a.Version)
		return ErrHelpShown
	}
	if len(rest) == 0 || global.Bool("help") {
		a.printHelp()
		return ErrHelpShown
	}
	name := rest[0]
	if name == "help" {
		if len(rest) > 1 {
			if c := a.find(rest[1]); c != nil {
				a.printCommandHelp(c)
				return ErrHelpShown
			}
		}
		a.printHelp()
		return ErrHelpShown
	}
	cmd := a.find(name)
	if cmd == nil {
		return &UsageError{Msg: fmt.Sprintf("command %q does not exist", name)}
	}
	ctx := newContext(a, cmd, cmd.Flags)
	ctx.Global = global
	ctx.addFlag(&Flag{Names: []string{"help", "h"}, Kind: Bool})
	args, err := ctx.parse(rest[1:], cmd.KeepArgOrder)
	if err != nil {
		return err
	}
	if ctx.Bool("help") {
		a.printCommandHelp(cmd)
		return ErrHelpShown
	}
	ctx.Args = args
	if a.Before != nil {
		if err := a.Before(ctx); err != nil {
			return err
		}
	}
	return cmd.Action(ctx)
}

func (a *App) find(name string) *Command {
	for _, c := range a.Commands {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func newContext(a *App, cmd *Command, flags []Flag) *Context {
	c := &Context{App: a, Command: cmd, values: map[string][]string{}, flags: map[string]*Flag{}}
	for i := range flags {
		c.addFlag(&flags[i])
	}
	return c
}

func (c *Context) addFlag(f *Flag) {
	for _, n := range f.Names {
		c.flags[n] = f
	}
}

// parse consumes flags from args. With stopAtPositional it stops at the
// first non-flag word and returns it with everything after it; otherwise
// flags anywhere are consumed and the positional words are returned in order.
func (c *Context) parse(args []string, stopAtPositional bool) ([]string, error) {
	var positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return append(positional, args[i+1:]...), nil
		}
		if len(arg) < 2 || arg[0] != '-' {
			if stopAtPositional {
				return append(positional, args[i:]...), nil
			}
			positional = append(positional, arg)
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
		value, hasValue := "", false
		if eq := strings.IndexByte(name, '='); eq >= 0 {
			name, value, hasValue = name[:eq], name[eq+1:], true
		}
		f, ok := c.flags[name]
		if !ok {
			return nil, &UsageError{Msg: "flag provided but not defined: -" + name}
		}
		canonical := f.Names[0]
		switch f.Kind {
		case Bool:
			if !hasValue {
				value = "true"
			} else if _, err := strconv.ParseBool(value); err != nil {
				return nil, &UsageError{Msg: fmt.Sprintf("invalid boolean value %q for -%s", value, name)}
			}
			c.values[canonical] = []string{value}
		default:
			if !hasValue {
				if i+1 >= len(args) {
					return nil, &UsageError{Msg: "flag needs an argument: -" + name}
				}
				i++
				value = args[i]
			}
			if f.Kind == List {
				c.values[canonical] = append(c.values[canonical], value)
			} else {
				c.values[canonical] = []string{value}
			}
		}
	}
	return positional, nil
}

func (c *Context) lookup(name string) (*Flag, []string) {
	f := c.flags[name]
	if f == nil {
		panic("cli: undeclared flag " + name)
	}
	return f, c.values[f.Names[0]]
}

// IsSet reports whether the flag appeared on the command line.
func (c *Context) IsSet(name string) bool {
	_, v := c.lookup(name)
	return len(v) > 0
}

// String returns the flag's last value or its default.
func (c *Context) String(name string) string {
	f, v := c.lookup(name)
	if len(v) == 0 {
		return f.Default
	}
	return v[len(v)-1]
}

// Bool returns the flag's value.
func (c *Context) Bool(name string) bool {
	b, _ := strconv.ParseBool(c.String(name))
	return b
}

// List returns every value given for a List flag.
func (c *Context) List(name string) []string {
	_, v := c.lookup(name)
	return v
}

// Int parses the flag as a decimal integer.
func (c *Context) Int(name string) (int, error) {
	s := c.String(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, &UsageError{Msg: fmt.Sprintf("invalid value %q for flag -%s: %v", s, name, err)}
	}
	return n, nil
}

// NArg checks the number of positional arguments.
func (c *Context) NArg(min, max int) error {
	n := len(c.Args)
	switch {
	case min == max && n != min:
		return &UsageError{Msg: fmt.Sprintf("%q requires exactly %d argument(s)", c.Command.Name, min)}
	case n < min:
		return &UsageError{Msg: fmt.Sprintf("%q requires a minimum of %d argument(s)", c.Command.Name, min)}
	case max >= 0 && n > max:
		return &UsageError{Msg: fmt.Sprintf("%q requires a maximum of %d argument(s)", c.Command.Name, max)}
	}
	return nil
}

func (a *App) printHelp() {
	w := a.Stdout
	fmt.Fprintf(w, "NAME:\n   %s - %s\n\nUSAGE:\n   %s [global options] command [command options] [arguments...]\n\nCOMMANDS:\n", a.Name, a.Usage, a.Name)
	for _, c := range a.Commands {
		if !c.Hidden {
			fmt.Fprintf(w, "   %-10s %s\n", c.Name, c.Usage)
		}
	}
	fmt.Fprint(w, "\nGLOBAL OPTIONS:\n")
	printFlags(w, a.Flags)
}

func (a *App) printCommandHelp(c *Command) {
	fmt.Fprintf(a.Stdout, "NAME:\n   %s %s - %s\n\nUSAGE:\n   %s %s [command options] %s\n\nOPTIONS:\n",
		a.Name, c.Name, c.Usage, a.Name, c.Name, c.ArgsUsage)
	printFlags(a.Stdout, c.Flags)
}

func printFlags(w io.Writer, flags []Flag) {
	lines := make([]string, 0, len(flags))
	for _, f := range flags {
		if f.Hidden {
			continue
		}
		var names []string
		for _, n := range f.Names {
			dash := "--"
			if len(n) == 1 {
				dash = "-"
			}
			if f.Kind == Bool {
				names = append(names, dash+n)
			} else {
				names = append(names, dash+n+" value")
			}
		}
		line := fmt.Sprintf("   %-34s %s", strings.Join(names, ", "), f.Usage)
		if f.Default != "" {
			line += fmt.Sprintf(" (default: %q)", f.Default)
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}
