package shim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/xstack/xstack/pkg/ocicli"
	"github.com/xstack/xstack/pkg/shim/reaper"
)

func mustAny(t *testing.T, v any) *anypb.Any {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(v)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRuntimeOptions(t *testing.T) {
	t.Parallel()
	full := &options.Options{BinaryName: "/usr/sbin/runc", Root: "/run/r", SystemdCgroup: true, NoPivotRoot: true, NoNewKeyring: true, IoUid: 1000, IoGid: 1001}
	googleURL, err := anypb.New(full)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		any     typeurl.Any
		want    *options.Options
		wantErr bool
	}{
		{name: "untyped nil", any: nil, want: &options.Options{}},
		{name: "typed nil", any: (*anypb.Any)(nil), want: &options.Options{}},
		{name: "empty Any", any: &anypb.Any{}, want: &options.Options{}},
		{name: "containerd.runc.v1.Options", any: mustAny(t, full), want: full},
		{name: "type.googleapis.com prefix", any: googleURL, want: full},
		{name: "empty options", any: mustAny(t, &options.Options{}), want: &options.Options{}},
		{name: "another known type", any: mustAny(t, &options.ProcessDetails{ExecID: "e1"}), wantErr: true},
		{name: "unknown type", any: &anypb.Any{TypeUrl: "example.com/NoSuchOptions", Value: []byte{1, 2, 3}}, wantErr: true},
		{name: "corrupt value", any: &anypb.Any{TypeUrl: "containerd.runc.v1.Options", Value: []byte{0xff, 0xff, 0xff}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := runtimeOptions(tt.any)
			if tt.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("runtimeOptions = %v, %v; want InvalidArgument", got, err)
				}
				if strings.Contains(err.Error(), "invalid argument") {
					t.Errorf("the class shows in the text: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tt.want) {
				t.Errorf("runtimeOptions = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRuntimeBinary changes PATH: not parallel.
func TestRuntimeBinary(t *testing.T) {
	dir := t.TempDir()
	pathDir := filepath.Join(dir, "path")
	if err := os.Mkdir(pathDir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "myruntime")
	writeExecutable(t, exe, "#!/bin/sh\n")
	notExe := filepath.Join(dir, "notexec")
	if err := os.WriteFile(notExe, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeExecutable(t, filepath.Join(pathDir, "onpath"), "#!/bin/sh\n")
	t.Setenv("PATH", pathDir)

	tests := []struct {
		name string
		in   string
		want string // "" = FailedPrecondition
	}{
		{"absolute path", exe, exe},
		{"absolute path missing", filepath.Join(dir, "missing"), ""},
		{"absolute path not executable", notExe, ""},
		{"name on PATH", "onpath", filepath.Join(pathDir, "onpath")},
		{"name not on PATH", "nosuchruntime", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runtimeBinary(tt.in)
			if tt.want == "" {
				if !errdefs.IsFailedPrecondition(err) {
					t.Fatalf("runtimeBinary(%q) = %q, %v; want FailedPrecondition", tt.in, got, err)
				}
				if !strings.Contains(err.Error(), tt.in) {
					t.Errorf("error %q does not name %q", err, tt.in)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("runtimeBinary(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	beside := filepath.Join(filepath.Dir(self), DefaultRuntime)
	if _, err := os.Stat(beside); err == nil {
		t.Logf("%s exists: default-to-PATH cases skipped", beside)
		return
	}
	t.Run("default: not beside the shim nor on PATH", func(t *testing.T) {
		if got, err := runtimeBinary(""); !errdefs.IsFailedPrecondition(err) {
			t.Fatalf("runtimeBinary(\"\") = %q, %v; want FailedPrecondition", got, err)
		}
	})
	t.Run("default: xrunc on PATH", func(t *testing.T) {
		onPath := filepath.Join(pathDir, DefaultRuntime)
		writeExecutable(t, onPath, "#!/bin/sh\n")
		defer os.Remove(onPath)
		if got, err := runtimeBinary(""); err != nil || got != onPath {
			t.Fatalf("runtimeBinary(\"\") = %q, %v; want %q", got, err, onPath)
		}
	})
	t.Run("default: xrunc beside the shim wins over PATH", func(t *testing.T) {
		// The test binary plays the shim: its directory is go test's
		// private build directory. The file is removed again at once.
		onPath := filepath.Join(pathDir, DefaultRuntime)
		writeExecutable(t, onPath, "#!/bin/sh\n")
		defer os.Remove(onPath)
		f, err := os.OpenFile(beside, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
		if err != nil {
			t.Skipf("cannot place %s: %v", beside, err)
		}
		f.Close()
		defer os.Remove(beside)
		if got, err := runtimeBinary(""); err != nil || got != beside {
			t.Fatalf("runtimeBinary(\"\") = %q, %v; want %q", got, err, beside)
		}
	})
}

// TestRuntimeBinaryRelative: a relative binary_name with a slash resolves
// against the current directory into the absolute path ocicli.Runtime
// needs (it refuses a relative one on every command). Not parallel: t.Chdir.
func TestRuntimeBinaryRelative(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeExecutable(t, filepath.Join(dir, "bin", "rt"), "#!/bin/sh\n")
	t.Chdir(dir)
	got, err := runtimeBinary("bin/rt")
	if err != nil {
		t.Fatalf("runtimeBinary(\"bin/rt\"): %v", err)
	}
	if want := filepath.Join(dir, "bin", "rt"); got != want {
		t.Fatalf("runtimeBinary(\"bin/rt\") = %q, want %q", got, want)
	}
}

func ptr[T any](v T) *T { return &v }

func TestSharesPidNamespace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		config  *string // nil: no config.json
		want    bool
		class   error // expected error class, nil for none
		anyErr  bool
		errText string
	}{
		{name: "no linux section", config: ptr(`{"ociVersion":"1.0.2","process":{"args":["sh"]}}`), want: true},
		{name: "linux without namespaces", config: ptr(`{"linux":{}}`), want: true},
		{name: "other namespaces only", config: ptr(`{"linux":{"namespaces":[{"type":"mount"},{"type":"network"}]}}`), want: true},
		{name: "private pid namespace", config: ptr(`{"linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}`), want: false},
		{name: "pid namespace joined by path", config: ptr(`{"linux":{"namespaces":[{"type":"pid","path":"/proc/1/ns/pid"}]}}`), want: true},
		{name: "missing config", config: nil, class: errdefs.ErrNotFound},
		{name: "broken JSON", config: ptr(`{"linux":`), class: errdefs.ErrInvalidArgument},
		{name: "namespaces not a list", config: ptr(`{"linux":{"namespaces":{"type":"pid"}}}`), class: errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bundle := t.TempDir()
			if tt.config != nil {
				if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(*tt.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := sharesPidNamespace(bundle)
			if tt.class != nil {
				if !errors.Is(err, tt.class) {
					t.Fatalf("sharesPidNamespace = %v, %v; want class %v", got, err, tt.class)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("sharesPidNamespace = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestReadPidFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content *string
		want    int
	}{
		{"plain", ptr("1234"), 1234},
		{"newline", ptr("1234\n"), 1234},
		{"whitespace", ptr("  42 \n\n"), 42},
		{"garbage", ptr("abc"), 0},
		{"two numbers", ptr("12 34"), 0},
		{"zero", ptr("0"), 0},
		{"negative", ptr("-5"), 0},
		{"empty", ptr(""), 0},
		{"overflow", ptr("99999999999999999999"), 0},
		{"missing", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "init.pid")
			if tt.content != nil {
				if err := os.WriteFile(path, []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := readPidFile(path)
			if tt.want == 0 {
				if err == nil || got != 0 {
					t.Fatalf("readPidFile = %d, %v; want an error", got, err)
				}
				if tt.content == nil && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("missing file: %v does not wrap ErrNotExist", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("readPidFile = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestRuntimeError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		op    string
		err   error
		class error
		text  string
	}{
		{"log message preferred", "create", &ocicli.Error{Command: "create", ExitStatus: 1, Output: "noise", LogMessage: "unable to start container process: exec: \"x\": not found"},
			errdefs.ErrUnknown, `OCI runtime create failed: unable to start container process: exec: "x": not found`},
		{"does not exist is NotFound", "kill", &ocicli.Error{Command: "kill", ExitStatus: 1, LogMessage: "container does not exist"},
			errdefs.ErrNotFound, "OCI runtime kill failed: container does not exist"},
		{"not running is NotFound", "kill", &ocicli.Error{Command: "kill", ExitStatus: 1, LogMessage: "container not running"},
			errdefs.ErrNotFound, "OCI runtime kill failed: container not running"},
		{"no such process is NotFound", "kill", &ocicli.Error{Command: "kill", ExitStatus: 1, Output: "no such process"},
			errdefs.ErrNotFound, ""},
		{"process already finished is NotFound", "kill", &ocicli.Error{Command: "kill", ExitStatus: 1, LogMessage: "process already finished"},
			errdefs.ErrNotFound, "OCI runtime kill failed: process already finished"},
		{"wrapped runtime error", "delete", fmt.Errorf("x: %w", &ocicli.Error{Command: "delete", ExitStatus: 1, LogMessage: "container does not exist"}),
			errdefs.ErrNotFound, "OCI runtime delete failed: container does not exist"},
		{"already exists is Unknown", "create", &ocicli.Error{Command: "create", ExitStatus: 1, LogMessage: "container with given ID already exists"},
			errdefs.ErrUnknown, "OCI runtime create failed: container with given ID already exists"},
		{"runtime did not start", "start", fmt.Errorf("start: %w", fmt.Errorf("%w: fork/exec /x: no such file or directory", reaper.ErrNotStarted)),
			errdefs.ErrFailedPrecondition, "OCI runtime start failed: start: command did not start: fork/exec /x: no such file or directory"},
		{"other error", "pause", errors.New("pause: something broke"),
			errdefs.ErrUnknown, "OCI runtime pause failed: pause: something broke"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := runtimeError(tt.op, tt.err)
			if !errors.Is(got, tt.class) {
				t.Errorf("class of %v: want %v", got, tt.class)
			}
			for _, other := range []error{errdefs.ErrNotFound, errdefs.ErrFailedPrecondition, errdefs.ErrUnknown} {
				if other != tt.class && errors.Is(got, other) {
					t.Errorf("%v is also %v", got, other)
				}
			}
			if tt.text != "" && got.Error() != tt.text {
				t.Errorf("text %q, want %q", got.Error(), tt.text)
			}
			if !strings.HasPrefix(got.Error(), "OCI runtime "+tt.op+" failed: ") {
				t.Errorf("text %q lacks containerd's prefix", got.Error())
			}
		})
	}
}
