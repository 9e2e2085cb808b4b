package specgen

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

func TestProcessArgs(t *testing.T) {
	t.Parallel()
	imgEP, imgCmd := []string{"/entry.sh"}, []string{"nginx", "-g", "daemon off;"}
	for _, tc := range []struct {
		name      string
		ep, cmd   []string
		opts      *xdv1.RunOptions
		want      []string
		noCommand bool
	}{
		{name: "image entrypoint and cmd", ep: imgEP, cmd: imgCmd, opts: nil, want: []string{"/entry.sh", "nginx", "-g", "daemon off;"}},
		{name: "args replace cmd", ep: imgEP, cmd: imgCmd, opts: &xdv1.RunOptions{Args: []string{"sh"}}, want: []string{"/entry.sh", "sh"}},
		{name: "cmd only", cmd: imgCmd, opts: &xdv1.RunOptions{}, want: imgCmd},
		{name: "entrypoint only", ep: imgEP, opts: &xdv1.RunOptions{}, want: imgEP},
		{name: "args without image command", opts: &xdv1.RunOptions{Args: []string{"/bin/true"}}, want: []string{"/bin/true"}},
		{name: "entrypoint set drops image cmd", ep: imgEP, cmd: imgCmd,
			opts: &xdv1.RunOptions{EntrypointSet: true, Entrypoint: []string{"/bin/sh"}}, want: []string{"/bin/sh"}},
		{name: "entrypoint set with args", ep: imgEP, cmd: imgCmd,
			opts: &xdv1.RunOptions{EntrypointSet: true, Entrypoint: []string{"/bin/sh", "-c"}, Args: []string{"echo hi"}}, want: []string{"/bin/sh", "-c", "echo hi"}},
		{name: "entrypoint cleared, args run", ep: imgEP, cmd: imgCmd,
			opts: &xdv1.RunOptions{EntrypointSet: true, Args: []string{"ls", "-l"}}, want: []string{"ls", "-l"}},
		{name: "entrypoint ignored unless set", ep: imgEP, cmd: imgCmd,
			opts: &xdv1.RunOptions{Entrypoint: []string{"/bin/sh"}}, want: []string{"/entry.sh", "nginx", "-g", "daemon off;"}},
		{name: "entrypoint cleared, nothing left", ep: imgEP, cmd: imgCmd, opts: &xdv1.RunOptions{EntrypointSet: true}, noCommand: true},
		{name: "nothing at all", opts: &xdv1.RunOptions{}, noCommand: true},
		{name: "empty program", opts: &xdv1.RunOptions{Args: []string{""}}, noCommand: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := processArgs(tc.ep, tc.cmd, tc.opts)
			if tc.noCommand {
				if !errors.Is(err, errNoCommand) {
					t.Fatalf("processArgs = %q, %v; want %v", got, err, errNoCommand)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("processArgs = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestMergeEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		base, overrides []string
		want            []string
		wantErr         string
	}{
		{name: "empty", want: []string{}},
		{name: "append", base: []string{"A=1"}, overrides: []string{"B=2"}, want: []string{"A=1", "B=2"}},
		{name: "override in place", base: []string{"A=1", "B=2", "C=3"}, overrides: []string{"B=x"}, want: []string{"A=1", "B=x", "C=3"}},
		{name: "empty value", base: []string{"A=1"}, overrides: []string{"A="}, want: []string{"A="}},
		{name: "value with =", overrides: []string{"A=b=c"}, want: []string{"A=b=c"}},
		{name: "duplicate in base collapses", base: []string{"A=1", "A=2"}, want: []string{"A=2"}},
		{name: "last override wins", overrides: []string{"A=1", "A=2"}, want: []string{"A=2"}},
		{name: "prefix is another key", base: []string{"PATH=/bin"}, overrides: []string{"PATHX=1"}, want: []string{"PATH=/bin", "PATHX=1"}},
		{name: "no =", overrides: []string{"A"}, wantErr: `env[0] "A": want KEY=VALUE`},
		{name: "empty key", overrides: []string{"B=1", "=1"}, wantErr: `env[1] "=1"`},
		{name: "NUL", overrides: []string{"A=\x00"}, wantErr: "want KEY=VALUE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := mergeEnv(tc.base, tc.overrides, "env")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("mergeEnv = %q, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("mergeEnv = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestExecProcess(t *testing.T) {
	t.Parallel()
	rootfs := testRootfs(t)
	spec, err := Generate(testImage(), rootfs, "default", "c1", &xdv1.RunOptions{User: "alice", Workdir: "/work"})
	if err != nil {
		t.Fatal(err)
	}
	alice := specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 100, 10, 999}}
	if !reflect.DeepEqual(spec.Process.User, alice) {
		t.Fatalf("container user = %+v; want %+v", spec.Process.User, alice)
	}

	for _, tc := range []struct {
		name    string
		req     *xdv1.ExecRequest
		check   func(t *testing.T, p *specs.Process)
		wantErr string
	}{
		{name: "defaults from the container", req: &xdv1.ExecRequest{Args: []string{"ps"}}, check: func(t *testing.T, p *specs.Process) {
			if !reflect.DeepEqual(p.Args, []string{"ps"}) || p.Cwd != "/work" || p.Terminal {
				t.Errorf("args %q cwd %q terminal %v", p.Args, p.Cwd, p.Terminal)
			}
			if !reflect.DeepEqual(p.User, alice) {
				t.Errorf("user = %+v; want the container's %+v", p.User, alice)
			}
			if !reflect.DeepEqual(p.Env, spec.Process.Env) {
				t.Errorf("env = %q; want the container's %q", p.Env, spec.Process.Env)
			}
		}},
		{name: "overrides", req: &xdv1.ExecRequest{Args: []string{"sh"}, Env: []string{"FOO=exec", "NEW=1"}, User: "bob:wheel", Cwd: "/tmp/../var", Tty: true},
			check: func(t *testing.T, p *specs.Process) {
				if p.Cwd != "/var" || !p.Terminal {
					t.Errorf("cwd %q terminal %v", p.Cwd, p.Terminal)
				}
				// The explicit group replaces bob's passwd gid (100), which he is
				// not listed in: like docker, it is not kept as a supplementary group.
				if want := (specs.User{UID: 1001, GID: 10, AdditionalGids: []uint32{10, 29}}); !reflect.DeepEqual(p.User, want) {
					t.Errorf("user = %+v; want %+v", p.User, want)
				}
				want := []string{"FOO=exec", "PATH=/opt/bin:/bin", "NEW=1", "TERM=xterm"}
				if !reflect.DeepEqual(p.Env, want) {
					t.Errorf("env = %q; want %q", p.Env, want)
				}
			}},
		{name: "numeric user", req: &xdv1.ExecRequest{Args: []string{"id"}, User: "0"}, check: func(t *testing.T, p *specs.Process) {
			if want := (specs.User{AdditionalGids: []uint32{0}}); !reflect.DeepEqual(p.User, want) {
				t.Errorf("user = %+v; want %+v", p.User, want)
			}
		}},
		{name: "tty keeps a TERM the user set", req: &xdv1.ExecRequest{Args: []string{"sh"}, Env: []string{"TERM=vt100"}, Tty: true},
			check: func(t *testing.T, p *specs.Process) {
				if n := strings.Count(strings.Join(p.Env, "\n"), "TERM="); n != 1 || !contains(p.Env, "TERM=vt100") {
					t.Errorf("env = %q; want only TERM=vt100", p.Env)
				}
			}},
		{name: "no args", req: &xdv1.ExecRequest{}, wantErr: "no command specified"},
		{name: "empty program", req: &xdv1.ExecRequest{Args: []string{""}}, wantErr: "no command specified"},
		{name: "relative cwd", req: &xdv1.ExecRequest{Args: []string{"ls"}, Cwd: "tmp"}, wantErr: `exec: cwd "tmp": must be an absolute path`},
		{name: "unknown user", req: &xdv1.ExecRequest{Args: []string{"ls"}, User: "mallory"}, wantErr: `unknown user "mallory"`},
		{name: "bad env", req: &xdv1.ExecRequest{Args: []string{"ls"}, Env: []string{"NOEQUALS"}}, wantErr: `exec: env[0] "NOEQUALS"`},
		{name: "nil request", req: nil, wantErr: "no request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := ExecProcess(spec, rootfs, tc.req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ExecProcess = %+v, %v; want error %q", p, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Capabilities, spec.Process.Capabilities) ||
				!reflect.DeepEqual(p.Rlimits, spec.Process.Rlimits) ||
				p.NoNewPrivileges != spec.Process.NoNewPrivileges {
				t.Errorf("capabilities/rlimits/noNewPrivileges differ from the init's")
			}
			tc.check(t, p)
		})
	}

	// The exec process owns its slices: editing it must not edit the spec.
	p, err := ExecProcess(spec, rootfs, &xdv1.ExecRequest{Args: []string{"ls"}})
	if err != nil {
		t.Fatal(err)
	}
	p.Capabilities.Bounding[0] = "CAP_SYS_ADMIN"
	p.User.AdditionalGids[0] = 0
	p.Rlimits[0].Hard = 1
	p.Env[0] = "X=1"
	if spec.Process.Capabilities.Bounding[0] == "CAP_SYS_ADMIN" || spec.Process.User.AdditionalGids[0] == 0 ||
		spec.Process.Rlimits[0].Hard == 1 || spec.Process.Env[0] == "X=1" {
		t.Error("ExecProcess shares memory with the container's spec")
	}

	if _, err := ExecProcess(&specs.Spec{}, rootfs, &xdv1.ExecRequest{Args: []string{"ls"}}); err == nil {
		t.Error("ExecProcess with a spec without process succeeded")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
