package hooks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	one := 1
	state := &specs.State{Version: "1.2.0", ID: "c1", Status: "creating", Pid: 42, Bundle: "/b"}
	tests := []struct {
		name    string
		kind    string // CreateRuntime if empty
		hooks   []specs.Hook
		wantErr string
		check   func(t *testing.T)
	}{
		{
			name:  "state on stdin, args and env",
			hooks: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", `cat > ` + out + `; echo " $0 $FOO" >> ` + out, "argzero"}, Env: []string{"FOO=bar"}}},
			check: func(t *testing.T) {
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				s := string(b)
				if !strings.Contains(s, `"id":"c1"`) || !strings.Contains(s, `"pid":42`) || !strings.Contains(s, " argzero bar") {
					t.Fatalf("hook saw %q", s)
				}
			},
		},
		{name: "failure stops the sequence", hooks: []specs.Hook{
			{Path: "/bin/sh", Args: []string{"sh", "-c", "echo boom; exit 3"}},
			{Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + out + ".second"}},
		}, wantErr: "boom", check: func(t *testing.T) {
			if _, err := os.Stat(out + ".second"); err == nil {
				t.Fatal("the hook after a failing one ran")
			}
		}},
		{name: "poststop failures do not stop the others", kind: Poststop, hooks: []specs.Hook{
			{Path: "/bin/sh", Args: []string{"sh", "-c", "echo first; exit 3"}},
			{Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + out + ".after"}},
			{Path: "/bin/sh", Args: []string{"sh", "-c", "echo third; exit 4"}},
		}, wantErr: "third", check: func(t *testing.T) {
			if _, err := os.Stat(out + ".after"); err != nil {
				t.Fatal("the poststop hook after a failing one did not run")
			}
		}},
		{name: "timeout", hooks: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "10"}, Timeout: &one}}, wantErr: "timed out"},
		{name: "missing binary", hooks: []specs.Hook{{Path: "/no/such/hook"}}, wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind := tt.kind
			if kind == "" {
				kind = CreateRuntime
			}
			err := Run(kind, tt.hooks, state)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Run error = %v, want one containing %q", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
}
