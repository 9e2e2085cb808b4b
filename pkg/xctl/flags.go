package xctl

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// flagKind is the value type of a flag.
type flagKind int

const (
	boolFlag   flagKind = iota // no value, or "=true|false"
	stringFlag                 // one value, the last occurrence wins
	listFlag                   // one value per occurrence, all kept
)

// flagDef declares one flag: a long name and an optional one-letter alias.
type flagDef struct {
	long  string
	short string
	kind  flagKind
	def   string
	usage string
}

// flagSet parses a command's arguments docker-style: "--name value",
// "--name=value", "-n value", "-nvalue", combined short booleans ("-it"),
// "--" ends the flags. With interspersed false, parsing stops at the first
// positional word, so the rest (an image and the container's command) is
// kept verbatim.
type flagSet struct {
	defs         []*flagDef
	interspersed bool
	values       map[string][]string
}

// usageError is a malformed command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func newFlagSet(defs []*flagDef, interspersed bool) *flagSet {
	fs := &flagSet{interspersed: interspersed, values: map[string][]string{}}
	fs.defs = append(fs.defs, defs...)
	fs.defs = append(fs.defs, &flagDef{long: "help", short: "h", kind: boolFlag, usage: "show help"})
	return fs
}

func (fs *flagSet) find(name string, short bool) *flagDef {
	for _, d := range fs.defs {
		if (short && d.short == name) || (!short && d.long == name) {
			return d
		}
	}
	return nil
}

// parse consumes the flags and returns the positional arguments.
func (fs *flagSet) parse(args []string) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			return append(pos, args[i+1:]...), nil
		case len(arg) < 2 || arg[0] != '-':
			if !fs.interspersed {
				return append(pos, args[i:]...), nil
			}
			pos = append(pos, arg)
		case strings.HasPrefix(arg, "--"):
			name, value, hasValue := strings.Cut(arg[2:], "=")
			d := fs.find(name, false)
			if d == nil {
				return nil, usagef("unknown flag: --%s", name)
			}
			if d.kind == boolFlag {
				if !hasValue {
					value = "true"
				}
				if err := fs.set(d, value); err != nil {
					return nil, err
				}
				continue
			}
			if !hasValue {
				if i+1 >= len(args) {
					return nil, usagef("flag needs an argument: --%s", name)
				}
				i++
				value = args[i]
			}
			if err := fs.set(d, value); err != nil {
				return nil, err
			}
		default: // one or more short flags
			letters := arg[1:]
			for j := 0; j < len(letters); j++ {
				name := letters[j : j+1]
				d := fs.find(name, true)
				if d == nil {
					return nil, usagef("unknown shorthand flag: %q in %s", name, arg)
				}
				if d.kind == boolFlag {
					value := "true"
					if rest := letters[j+1:]; strings.HasPrefix(rest, "=") {
						value = rest[1:]
						j = len(letters)
					}
					if err := fs.set(d, value); err != nil {
						return nil, err
					}
					continue
				}
				value := strings.TrimPrefix(letters[j+1:], "=")
				if j+1 == len(letters) {
					if i+1 >= len(args) {
						return nil, usagef("flag needs an argument: %q in %s", name, arg)
					}
					i++
					value = args[i]
				}
				if err := fs.set(d, value); err != nil {
					return nil, err
				}
				break
			}
		}
	}
	return pos, nil
}

func (fs *flagSet) set(d *flagDef, value string) error {
	if d.kind == boolFlag {
		if _, err := strconv.ParseBool(value); err != nil {
			return usagef("invalid boolean value %q for --%s", value, d.long)
		}
	}
	if d.kind == listFlag {
		fs.values[d.long] = append(fs.values[d.long], value)
	} else {
		fs.values[d.long] = []string{value}
	}
	return nil
}

func (fs *flagSet) def(name string) *flagDef {
	d := fs.find(name, false)
	if d == nil {
		panic("xctl: undeclared flag " + name)
	}
	return d
}

// isSet reports whether the flag was given.
func (fs *flagSet) isSet(name string) bool { return len(fs.values[fs.def(name).long]) > 0 }

func (fs *flagSet) str(name string) string {
	d := fs.def(name)
	if v := fs.values[d.long]; len(v) > 0 {
		return v[len(v)-1]
	}
	return d.def
}

func (fs *flagSet) boolean(name string) bool {
	b, _ := strconv.ParseBool(fs.str(name))
	return b
}

func (fs *flagSet) list(name string) []string { return fs.values[fs.def(name).long] }

func (fs *flagSet) integer(name string) (int64, error) {
	s := fs.str(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, usagef("invalid value %q for --%s: not an integer", s, name)
	}
	return n, nil
}

// printFlags writes the flag table of a help text.
func printFlags(w io.Writer, defs []*flagDef) {
	for _, d := range defs {
		names := "    --" + d.long
		if d.short != "" {
			names = "-" + d.short + ", --" + d.long
		}
		if d.kind != boolFlag {
			names += " value"
		}
		usage := d.usage
		if d.def != "" {
			usage += fmt.Sprintf(" (default %q)", d.def)
		}
		if d.kind == listFlag {
			usage += " (repeatable)"
		}
		fmt.Fprintf(w, "  %-28s %s\n", names, usage)
	}
}
