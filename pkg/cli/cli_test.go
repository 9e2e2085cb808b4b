package cli

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// result is what a test command's Action saw.
type result struct {
	cmd    string
	args   []string
	str    string // --bundle
	pid    string // --pid-file
	detach bool   // --detach
	tty    bool   // --tty
	envs   []string
	debug  bool   // global --debug
	root   string // global --root
	isSet  map[string]bool
}

// newTestApp builds a small runc-like App whose commands record what they
// parsed into *got.
func newTestApp(got *result, out *bytes.Buffer) *App {
	record := func(c *Context) error {
		*got = result{
			cmd:    c.Command.Name,
			args:   append([]string{}, c.Args...),
			debug:  c.Global.Bool("debug"),
			root:   c.Global.String("root"),
			isSet:  map[string]bool{},
			envs:   nil,
			detach: false,
		}
		for _, n := range []string{"bundle", "pid-file", "detach", "tty", "env"} {
			if _, ok := c.flags[n]; ok {
				got.isSet[n] = c.IsSet(n)
			}
		}
		if _, ok := c.flags["bundle"]; ok {
			got.str = c.String("bundle")
			got.pid = c.String("pid-file")
			got.detach = c.Bool("detach")
		}
		if _, ok := c.flags["tty"]; ok {
			got.tty = c.Bool("tty")
			got.envs = c.List("env")
		}
		return nil
	}
	return &App{
		Name:    "xtest",
		Usage:   "a test app",
		Version: "xtest version 1.2.3\n",
		Stdout:  out,
		Flags: []Flag{
			{Names: []string{"debug"}, Kind: Bool, Usage: "debug output"},
			{Names: []string{"root"}, Kind: String, Default: "/run/xtest", Usage: "state dir"},
		},
		Commands: []*Command{
			{
				Name:  "run",
				Usage: "run a container",
				Flags: []Flag{
					{Names: []string{"bundle", "b"}, Kind: String, Default: ".", Usage: "bundle dir"},
					{Names: []string{"pid-file"}, Kind: String},
					{Names: []string{"detach", "d"}, Kind: Bool},
				},
				Action: record,
			},
			{
				Name:         "exec",
				Usage:        "exec a process",
				KeepArgOrder: true,
				Flags: []Flag{
					{Names: []string{"tty", "t"}, Kind: Bool},
					{Names: []string{"env", "e"}, Kind: List},
				},
				Action: record,
			},
		},
	}
}

func TestRunParsing(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want result
	}{
		{
			name: "defaults",
			argv: []string{"run", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: ".", root: "/run/xtest"},
		},
		{
			name: "double dash space value",
			argv: []string{"run", "--bundle", "/b", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: "/b", root: "/run/xtest"},
		},
		{
			name: "double dash equals value",
			argv: []string{"run", "--bundle=/b", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: "/b", root: "/run/xtest"},
		},
		{
			name: "equals value containing equals",
			argv: []string{"run", "--bundle=/a=b", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: "/a=b", root: "/run/xtest"},
		},
		{
			name: "empty value with equals",
			argv: []string{"run", "--bundle=", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: "", root: "/run/xtest"},
		},
		{
			name: "single dash long flag",
			argv: []string{"run", "-bundle", "/b", "-pid-file", "/p", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: "/b", pid: "/p", root: "/run/xtest"},
		},
		{
			name: "single dash long flag with equals",
			argv: []string{"run", "-pid-file=/p", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: ".", pid: "/p", root: "/run/xtest"},
		},
		{
			name: "short alias",
			argv: []string{"run", "-b", "/b", "-d", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: "/b", detach: true, root: "/run/xtest"},
		},
		{
			name: "short alias double dash",
			argv: []string{"run", "--b=/b", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: "/b", root: "/run/xtest"},
		},
		{
			name: "last string value wins",
			argv: []string{"run", "--bundle", "/one", "-b", "/two", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: "/two", root: "/run/xtest"},
		},
		{
			name: "bool without value",
			argv: []string{"run", "--detach", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: ".", detach: true, root: "/run/xtest"},
		},
		{
			name: "bool equals true",
			argv: []string{"run", "--detach=true", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: ".", detach: true, root: "/run/xtest"},
		},
		{
			name: "bool equals false",
			argv: []string{"run", "--detach=false", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: ".", detach: false, root: "/run/xtest"},
		},
		{
			name: "bool later false wins",
			argv: []string{"run", "-d", "--detach=false", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: ".", detach: false, root: "/run/xtest"},
		},
		{
			name: "bool does not consume the next word",
			argv: []string{"run", "--detach", "false"},
			want: result{cmd: "run", args: []string{"false"}, str: ".", detach: true, root: "/run/xtest"},
		},
		{
			name: "flags after positional moved to front",
			argv: []string{"run", "ctr", "--bundle", "/b", "-d"},
			want: result{cmd: "run", args: []string{"ctr"}, str: "/b", detach: true, root: "/run/xtest"},
		},
		{
			name: "positionals interleaved with flags keep order",
			argv: []string{"run", "a", "-d", "b", "--pid-file=/p", "c"},
			want: result{cmd: "run", args: []string{"a", "b", "c"}, str: ".", pid: "/p", detach: true, root: "/run/xtest"},
		},
		{
			name: "double dash ends flags",
			argv: []string{"run", "--", "-d", "--bundle=/x"},
			want: result{cmd: "run", args: []string{"-d", "--bundle=/x"}, str: ".", root: "/run/xtest"},
		},
		{
			name: "double dash after flags",
			argv: []string{"run", "-d", "--", "ctr", "-b"},
			want: result{cmd: "run", args: []string{"ctr", "-b"}, str: ".", detach: true, root: "/run/xtest"},
		},
		{
			name: "single dash is positional",
			argv: []string{"run", "-"},
			want: result{cmd: "run", args: []string{"-"}, str: ".", root: "/run/xtest"},
		},
		{
			name: "string value may look like a flag",
			argv: []string{"run", "--pid-file", "-d", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: ".", pid: "-d", root: "/run/xtest"},
		},
		{
			name: "global flags before command",
			argv: []string{"--debug", "--root", "/r", "run", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: ".", debug: true, root: "/r"},
		},
		{
			name: "global single dash and equals",
			argv: []string{"-debug=true", "-root=/r", "run", "ctr"},
			want: result{cmd: "run", args: []string{"ctr"}, str: ".", debug: true, root: "/r"},
		},
		{
			name: "exec keeps words after the first positional verbatim",
			argv: []string{"exec", "-t", "ctr", "ls", "-l", "--tty", "-e", "X=1"},
			want: result{cmd: "exec", args: []string{"ctr", "ls", "-l", "--tty", "-e", "X=1"}, tty: true, root: "/run/xtest"},
		},
		{
			name: "exec keeps double dash after positional",
			argv: []string{"exec", "ctr", "--", "ls"},
			want: result{cmd: "exec", args: []string{"ctr", "--", "ls"}, root: "/run/xtest"},
		},
		{
			name: "exec double dash before positional is consumed",
			argv: []string{"exec", "--", "ctr", "-t"},
			want: result{cmd: "exec", args: []string{"ctr", "-t"}, root: "/run/xtest"},
		},
		{
			name: "list flag accumulates in order",
			argv: []string{"exec", "-e", "A=1", "--env", "B=2", "--env=C=3", "-e=D", "ctr", "sh"},
			want: result{cmd: "exec", args: []string{"ctr", "sh"}, envs: []string{"A=1", "B=2", "C=3", "D"}, root: "/run/xtest"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got result
			var out bytes.Buffer
			app := newTestApp(&got, &out)
			if err := app.Run(tt.argv); err != nil {
				t.Fatalf("Run(%q) = %v", tt.argv, err)
			}
			got.isSet = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Run(%q):\n got  %+v\n want %+v", tt.argv, got, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("unexpected output %q", out.String())
			}
		})
	}
}

func TestIsSet(t *testing.T) {
	tests := []struct {
		argv []string
		want map[string]bool
	}{
		{[]string{"run", "c"}, map[string]bool{"bundle": false, "pid-file": false, "detach": false}},
		{[]string{"run", "-b", ".", "c"}, map[string]bool{"bundle": true, "pid-file": false, "detach": false}},
		{[]string{"run", "--detach=false", "--pid-file=", "c"}, map[string]bool{"bundle": false, "pid-file": true, "detach": true}},
		{[]string{"exec", "-e", "A=1", "c"}, map[string]bool{"tty": false, "env": true}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.argv, "_"), func(t *testing.T) {
			var got result
			app := newTestApp(&got, &bytes.Buffer{})
			if err := app.Run(tt.argv); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.isSet, tt.want) {
				t.Errorf("IsSet = %v, want %v", got.isSet, tt.want)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want string // exact error text
	}{
		{"unknown command flag", []string{"run", "-x", "ctr"}, "flag provided but not defined: -x"},
		{"unknown long flag", []string{"run", "--nope", "ctr"}, "flag provided but not defined: -nope"},
		{"unknown flag with value", []string{"run", "--nope=1", "ctr"}, "flag provided but not defined: -nope"},
		{"unknown global flag", []string{"-x", "run"}, "flag provided but not defined: -x"},
		{"global flag after command", []string{"run", "--debug", "ctr"}, "flag provided but not defined: -debug"},
		{"command flag before command", []string{"--bundle", "/b", "run"}, "flag provided but not defined: -bundle"},
		{"flag after positional still checked", []string{"run", "ctr", "-x"}, "flag provided but not defined: -x"},
		{"missing value", []string{"run", "ctr", "--bundle"}, "flag needs an argument: -bundle"},
		{"missing value short", []string{"run", "-b"}, "flag needs an argument: -b"},
		{"bad bool", []string{"run", "--detach=yes", "ctr"}, `invalid boolean value "yes" for -detach`},
		{"unknown command", []string{"nope"}, `command "nope" does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got result
			app := newTestApp(&got, &bytes.Buffer{})
			err := app.Run(tt.argv)
			if err == nil {
				t.Fatalf("Run(%q) succeeded, want %q", tt.argv, tt.want)
			}
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Errorf("error %T is not a *UsageError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err.Error(), tt.want)
			}
			if got.cmd != "" {
				t.Errorf("action ran despite the error")
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	tests := []struct {
		name     string
		argv     []string
		contains []string
		absent   []string
	}{
		{"version long", []string{"--version"}, []string{"xtest version 1.2.3\n"}, []string{"COMMANDS:"}},
		{"version short", []string{"-v"}, []string{"xtest version 1.2.3\n"}, []string{"COMMANDS:"}},
		{"version wins over command", []string{"-v", "run", "ctr"}, []string{"xtest version 1.2.3\n"}, nil},
		{"no arguments", nil, []string{"NAME:\n   xtest - a test app", "COMMANDS:", "   run ", "   exec ", "--debug", "--root value", `(default: "/run/xtest")`}, nil},
		{"help command", []string{"help"}, []string{"COMMANDS:", "GLOBAL OPTIONS:"}, nil},
		{"help flag", []string{"--help"}, []string{"COMMANDS:"}, nil},
		{"h flag", []string{"-h"}, []string{"COMMANDS:"}, nil},
		{"help for a command", []string{"help", "run"}, []string{"xtest run - run a container", "OPTIONS:", "--bundle value, -b value", "--detach, -d"}, []string{"COMMANDS:"}},
		{"help for unknown command", []string{"help", "nope"}, []string{"COMMANDS:"}, nil},
		{"command help flag", []string{"run", "--help"}, []string{"xtest run - run a container", "--pid-file value"}, []string{"COMMANDS:"}},
		{"command h flag", []string{"exec", "-h"}, []string{"xtest exec - exec a process", "--env value, -e value", "--tty, -t"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got result
			var out bytes.Buffer
			app := newTestApp(&got, &out)
			err := app.Run(tt.argv)
			if !errors.Is(err, ErrHelpShown) {
				t.Fatalf("Run(%q) = %v, want ErrHelpShown", tt.argv, err)
			}
			if got.cmd != "" {
				t.Errorf("action ran")
			}
			for _, s := range tt.contains {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output does not contain %q:\n%s", s, out.String())
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(out.String(), s) {
					t.Errorf("output contains %q:\n%s", s, out.String())
				}
			}
		})
	}
}

func TestHiddenNotInHelp(t *testing.T) {
	var out bytes.Buffer
	app := &App{
		Name: "x", Stdout: &out,
		Flags: []Flag{{Names: []string{"secret-flag"}, Kind: Bool, Hidden: true}, {Names: []string{"shown"}, Kind: Bool}},
		Commands: []*Command{
			{Name: "visible", Action: func(*Context) error { return nil }},
			{Name: "sneaky", Hidden: true, Action: func(*Context) error { return nil }},
		},
	}
	if err := app.Run(nil); !errors.Is(err, ErrHelpShown) {
		t.Fatalf("Run = %v", err)
	}
	for s, want := range map[string]bool{"visible": true, "sneaky": false, "--shown": true, "secret-flag": false} {
		if got := strings.Contains(out.String(), s); got != want {
			t.Errorf("help contains %q = %v, want %v:\n%s", s, got, want, out.String())
		}
	}
	// Hidden things still work.
	if err := app.Run([]string{"--secret-flag", "sneaky"}); err != nil {
		t.Errorf("hidden flag/command: %v", err)
	}
}

func TestNArg(t *testing.T) {
	tests := []struct {
		args     []string
		min, max int
		want     string // "" means no error
	}{
		{[]string{"a"}, 1, 1, ""},
		{nil, 1, 1, `"cmd" requires exactly 1 argument(s)`},
		{[]string{"a", "b"}, 1, 1, `"cmd" requires exactly 1 argument(s)`},
		{nil, 0, 0, ""},
		{[]string{"a"}, 0, 0, `"cmd" requires exactly 0 argument(s)`},
		{[]string{"a"}, 2, -1, `"cmd" requires a minimum of 2 argument(s)`},
		{[]string{"a", "b", "c", "d"}, 2, -1, ""},
		{nil, 0, 2, ""},
		{[]string{"a", "b", "c"}, 0, 2, `"cmd" requires a maximum of 2 argument(s)`},
		{[]string{"a", "b"}, 1, 2, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, ",")+"_"+tt.want, func(t *testing.T) {
			var nargErr error
			app := &App{Name: "x", Stdout: &bytes.Buffer{}, Commands: []*Command{{
				Name: "cmd",
				Action: func(c *Context) error {
					nargErr = c.NArg(tt.min, tt.max)
					return nargErr
				},
			}}}
			err := app.Run(append([]string{"cmd"}, tt.args...))
			if err != nargErr {
				t.Fatalf("Run returned %v, action returned %v", err, nargErr)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("NArg(%d, %d) with %d args = %v, want nil", tt.min, tt.max, len(tt.args), err)
				}
				return
			}
			var ue *UsageError
			if !errors.As(err, &ue) || err.Error() != tt.want {
				t.Fatalf("NArg(%d, %d) with %d args = %v, want UsageError %q", tt.min, tt.max, len(tt.args), err, tt.want)
			}
		})
	}
}

func TestInt(t *testing.T) {
	tests := []struct {
		argv    []string
		want    int
		wantErr string
	}{
		{[]string{"cmd"}, 3, ""}, // default
		{[]string{"cmd", "--n", "42"}, 42, ""},
		{[]string{"cmd", "--n=-7"}, -7, ""},
		{[]string{"cmd", "-n", "0"}, 0, ""},
		{[]string{"cmd", "--n="}, 0, ""}, // empty means zero
		{[]string{"cmd", "--n", "4x"}, 0, `invalid value "4x" for flag -n`},
		{[]string{"cmd", "--n", "1.5"}, 0, `invalid value "1.5" for flag -n`},
		{[]string{"cmd", "--n", "99999999999999999999"}, 0, `invalid value "99999999999999999999" for flag -n`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.argv, " "), func(t *testing.T) {
			var got int
			var gotErr error
			app := &App{Name: "x", Stdout: &bytes.Buffer{}, Commands: []*Command{{
				Name:  "cmd",
				Flags: []Flag{{Names: []string{"n"}, Kind: String, Default: "3"}},
				Action: func(c *Context) error {
					got, gotErr = c.Int("n")
					return nil
				},
			}}}
			if err := app.Run(tt.argv); err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" {
				var ue *UsageError
				if !errors.As(gotErr, &ue) || !strings.HasPrefix(gotErr.Error(), tt.wantErr) {
					t.Fatalf("Int = %d, %v; want UsageError starting %q", got, gotErr, tt.wantErr)
				}
				return
			}
			if gotErr != nil || got != tt.want {
				t.Fatalf("Int = %d, %v; want %d", got, gotErr, tt.want)
			}
		})
	}
}

func TestBeforeHook(t *testing.T) {
	var order []string
	beforeErr := errors.New("before failed")
	tests := []struct {
		name       string
		before     func(*Context) error
		wantOrder  []string
		wantErr    error
		wantGlobal string
	}{
		{
			name: "runs before action with parsed flags",
			before: func(c *Context) error {
				order = append(order, "before:"+c.Global.String("root")+":"+c.String("bundle")+":"+strings.Join(c.Args, ","))
				return nil
			},
			wantOrder: []string{"before:/r:/b:ctr", "action"},
		},
		{
			name: "error stops the action",
			before: func(c *Context) error {
				order = append(order, "before")
				return beforeErr
			},
			wantOrder: []string{"before"},
			wantErr:   beforeErr,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			order = nil
			app := &App{
				Name:   "x",
				Stdout: &bytes.Buffer{},
				Flags:  []Flag{{Names: []string{"root"}, Kind: String}},
				Before: tt.before,
				Commands: []*Command{{
					Name:  "run",
					Flags: []Flag{{Names: []string{"bundle"}, Kind: String}},
					Action: func(c *Context) error {
						order = append(order, "action")
						return nil
					},
				}},
			}
			err := app.Run([]string{"--root", "/r", "run", "ctr", "--bundle", "/b"})
			if err != tt.wantErr {
				t.Fatalf("Run = %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(order, tt.wantOrder) {
				t.Fatalf("order = %q, want %q", order, tt.wantOrder)
			}
		})
	}
}

func TestBeforeNotRunForHelpOrErrors(t *testing.T) {
	for _, argv := range [][]string{{"--version"}, {"help"}, {"run", "--help"}, {"run", "--nope"}, {"nope"}} {
		t.Run(strings.Join(argv, " "), func(t *testing.T) {
			ran := false
			app := &App{
				Name: "x", Stdout: &bytes.Buffer{},
				Before:   func(*Context) error { ran = true; return nil },
				Commands: []*Command{{Name: "run", Action: func(*Context) error { return nil }}},
			}
			if err := app.Run(argv); err == nil {
				t.Fatalf("Run(%q) succeeded", argv)
			}
			if ran {
				t.Errorf("Before ran for %q", argv)
			}
		})
	}
}

func TestActionErrorReturned(t *testing.T) {
	want := errors.New("boom")
	app := &App{Name: "x", Stdout: &bytes.Buffer{}, Commands: []*Command{{Name: "run", Action: func(*Context) error { return want }}}}
	if err := app.Run([]string{"run"}); err != want {
		t.Fatalf("Run = %v, want %v", err, want)
	}
}

func TestUndeclaredFlagLookupPanics(t *testing.T) {
	app := &App{Name: "x", Stdout: &bytes.Buffer{}, Commands: []*Command{{Name: "run", Action: func(c *Context) error {
		c.String("not-declared")
		return nil
	}}}}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "not-declared") {
			t.Fatalf("recover() = %v, want a panic naming the flag", r)
		}
	}()
	_ = app.Run([]string{"run"})
	t.Fatal("no panic")
}
