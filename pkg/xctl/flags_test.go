package xctl

import (
	"reflect"
	"strings"
	"testing"
)

func TestFlagParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		defs    []*flagDef
		verbat  bool
		args    []string
		wantPos []string
		want    map[string][]string
		wantErr string
	}{
		{
			name: "run stops at the image", defs: runFlags(), verbat: true,
			args:    []string{"--rm", "-e", "A=1", "busybox", "sh", "-c", "echo hi", "--rm"},
			wantPos: []string{"busybox", "sh", "-c", "echo hi", "--rm"},
			want:    map[string][]string{"rm": {"true"}, "env": {"A=1"}},
		},
		{
			name: "repeated -e and attached values", defs: runFlags(), verbat: true,
			args:    []string{"-e", "A=1", "--env=B=2", "-eC=3", "--env", "D", "img"},
			wantPos: []string{"img"},
			want:    map[string][]string{"env": {"A=1", "B=2", "C=3", "D"}},
		},
		{
			name: "combined short booleans", defs: runFlags(), verbat: true,
			args:    []string{"-it", "--name=web", "img"},
			wantPos: []string{"img"},
			want:    map[string][]string{"interactive": {"true"}, "tty": {"true"}, "name": {"web"}},
		},
		{
			name: "combined with a value flag last", defs: runFlags(), verbat: true,
			args:    []string{"-itv", "/a:/b", "img"},
			wantPos: []string{"img"},
			want:    map[string][]string{"interactive": {"true"}, "tty": {"true"}, "volume": {"/a:/b"}},
		},
		{
			name: "double dash", defs: runFlags(), verbat: true,
			args:    []string{"-d", "--", "-img"},
			wantPos: []string{"-img"},
			want:    map[string][]string{"detach": {"true"}},
		},
		{
			name: "bool with value", defs: runFlags(), verbat: true,
			args:    []string{"--rm=false", "img"},
			wantPos: []string{"img"},
			want:    map[string][]string{"rm": {"false"}},
		},
		{
			name: "interspersed", defs: []*flagDef{{long: "force", short: "f", kind: boolFlag}},
			args:    []string{"a", "-f", "b"},
			wantPos: []string{"a", "b"},
			want:    map[string][]string{"force": {"true"}},
		},
		{name: "unknown long", defs: runFlags(), verbat: true, args: []string{"--nope", "img"}, wantErr: "unknown flag: --nope"},
		{name: "unknown short", defs: runFlags(), verbat: true, args: []string{"-iZ", "img"}, wantErr: `unknown shorthand flag: "Z"`},
		{name: "missing value", defs: runFlags(), verbat: true, args: []string{"--name"}, wantErr: "flag needs an argument: --name"},
		{name: "bad bool", defs: runFlags(), verbat: true, args: []string{"--rm=maybe", "img"}, wantErr: "invalid boolean"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := newFlagSet(tc.defs, !tc.verbat)
			pos, err := fs.parse(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pos, tc.wantPos) {
				t.Errorf("positional = %q, want %q", pos, tc.wantPos)
			}
			if !reflect.DeepEqual(fs.values, tc.want) {
				t.Errorf("values = %v, want %v", fs.values, tc.want)
			}
		})
	}
}
