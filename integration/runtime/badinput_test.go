package runtime_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/xstack/xstack/integration/internal/testenv"
)

// TestBadInput: each bad bundle or id makes create (and run) exit 1 with
// an error naming the problem, and leaves nothing behind: no state dir,
// cgroup dir, mount or process. These tests are not parallel, so the host
// mount table is stable while they run.
func TestBadInput(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tc := range []struct {
		name     string
		id       string                  // container id; the bundle's if empty
		opts     []testenv.BundleOption  // bundle edits
		raw      []byte                  // config.json content, if set
		after    func(b *testenv.Bundle) // changes after the bundle is written
		words    []string                // any of these in the error
		skipRunc string                  // reason runc 1.1.5 cannot pass
	}{
		{name: "invalid json", raw: []byte(`{"ociVersion": "1.0.2", "process": {`), words: []string{"JSON", "json", "unexpected end", "unexpected EOF"}},
		{name: "not an object", raw: []byte(`[1,2,3]`), words: []string{"json", "JSON", "unmarshal"}},
		{
			name:     "ociVersion 2.0.0",
			opts:     []testenv.BundleOption{testenv.WithSpec(func(s *specs.Spec) { s.Version = "2.0.0" })},
			words:    []string{"ociVersion", "version"},
			skipRunc: "runc 1.1.5 does not check the ociVersion of config.json (it runs a 2.0.0 config)",
		},
		{
			name:  "missing rootfs",
			after: func(b *testenv.Bundle) { os.RemoveAll(b.Rootfs) },
			words: []string{"rootfs", "no such file or directory"},
		},
		{
			name:  "rootfs is a file",
			after: func(b *testenv.Bundle) { os.RemoveAll(b.Rootfs); os.WriteFile(b.Rootfs, nil, 0o644) },
			words: []string{"rootfs", "not a directory"},
		},
		{
			name:  "missing args",
			opts:  []testenv.BundleOption{testenv.WithArgs()},
			words: []string{"args"},
		},
		{
			name:  "no process",
			opts:  []testenv.BundleOption{testenv.WithSpec(func(s *specs.Spec) { s.Process = nil })},
			words: []string{"process"},
		},
		{name: "id with slash", id: "xit/evil", words: []string{"invalid id format", "id"}},
		{name: "id dotdot", id: "..", words: []string{"invalid id format", "id"}},
		{name: "id with dotdot path", id: "../xit-escape", words: []string{"invalid id format", "id"}},
		{name: "id too long", id: "x" + strings.Repeat("a", 1024), words: []string{"invalid id format", "id", "too long", "name too long"}},
		{name: "empty id", id: " ", words: []string{"id"}},
		{
			name: "namespace path missing",
			opts: []testenv.BundleOption{testenv.WithSpec(func(s *specs.Spec) {
				for i, n := range s.Linux.Namespaces {
					if n.Type == specs.NetworkNamespace {
						s.Linux.Namespaces[i].Path = "/run/xstack-it/no-such-netns"
					}
				}
			})},
			words: []string{"no-such-netns", "namespace"},
		},
		{
			name: "unknown fs type",
			opts: []testenv.BundleOption{testenv.WithSpec(func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt/x", Type: "xstackfs", Source: "none"})
			})},
			words: []string{"xstackfs", "no such device", "/mnt/x"},
		},
		{
			name: "bind source missing",
			opts: []testenv.BundleOption{testenv.WithSpec(func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt/x", Type: "bind", Source: "/nonexistent/xstack-it-src", Options: []string{"bind"}})
			})},
			words: []string{"/nonexistent/xstack-it-src", "no such file or directory"},
		},
		{
			// The runtime, not the init, opens the source here.
			name: "bind source missing, user namespace",
			opts: []testenv.BundleOption{testenv.WithUserNS(100000, 100000), testenv.WithSpec(func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt/x", Type: "bind", Source: "/nonexistent/xstack-it-src", Options: []string{"bind"}})
			})},
			words:    []string{"/nonexistent/xstack-it-src", "no such file or directory"},
			skipRunc: "runc 1.1.5 reports it only as \"can't get final child's PID from pipe: EOF\"",
		},
		{
			name:  "executable not found",
			opts:  []testenv.BundleOption{testenv.WithArgs("xstack-no-such-cmd")},
			words: []string{"executable file not found"},
		},
		{
			name:  "absolute executable missing",
			opts:  []testenv.BundleOption{testenv.WithArgs("/bin/xstack-no-such-cmd")},
			words: []string{"no such file or directory"},
		},
		{
			name: "invalid rlimit",
			opts: []testenv.BundleOption{testenv.WithSpec(func(s *specs.Spec) {
				s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_XSTACK", Soft: 1, Hard: 1})
			})},
			words: []string{"RLIMIT_XSTACK", "rlimit"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.ForEachRuntime(t, func(t *testing.T, rt *testenv.Runtime) {
				if tc.skipRunc != "" {
					rt.SkipIf(t, "runc", tc.skipRunc)
				}
				b := testenv.NewBundle(t, tc.opts...)
				if tc.raw != nil {
					b.WriteConfig(t, tc.raw)
				}
				if tc.after != nil {
					tc.after(b)
				}
				id := b.ID
				if tc.id != "" {
					id = tc.id
				}
				for _, verb := range []string{"create", "run"} {
					snap := testenv.TakeSnapshot(t)
					args := []string{verb, "--bundle", b.Dir}
					if verb == "run" {
						args = append(args, "-d")
					}
					r := rt.Run(t, append(args, id)...)
					if r.Code != 1 {
						t.Errorf("%s: want exit 1, got %s", verb, r)
					}
					msg := rt.ErrorText(t, r)
					found := false
					for _, w := range tc.words {
						found = found || strings.Contains(msg, w)
					}
					if !found {
						t.Errorf("%s: error %q names none of %q", verb, msg, tc.words)
					}
					snap.AssertNoLeaks(t, rt, b, id)
					if tc.id != "" {
						// Nothing escaped the --root either.
						if _, err := os.Lstat(filepath.Join(filepath.Dir(rt.Root), "xit-escape")); err == nil {
							t.Errorf("%s: id %q created %s", verb, id, filepath.Join(filepath.Dir(rt.Root), "xit-escape"))
						}
					}
				}
			})
		})
	}
}
