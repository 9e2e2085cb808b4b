package criu

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFirstError(t *testing.T) {
	tests := []struct {
		out  string
		want string
	}{
		{"Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\nError (criu/kerndat.c:1615): kerndat failed\n", "vdso: Unexpected rt vDSO area bounds"},
		{"Warn: x\nError without location\n", "Error without location"},
		{"Looks bad\n", "Looks bad"},
		{"", "exit status 1"},
	}
	for _, tt := range tests {
		if got := firstError(tt.out, errors.New("exit status 1")); got != tt.want {
			t.Errorf("firstError(%q) = %q, want %q", tt.out, got, tt.want)
		}
	}
}

func TestUnsupported(t *testing.T) {
	dir := t.TempDir()
	failing := filepath.Join(dir, "criu-fails")
	passing := filepath.Join(dir, "criu-passes")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\necho 'Error (criu/x.c:1): no such feature' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(passing, []byte("#!/bin/sh\necho 'Looks good.'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		criu string
		want string
	}{
		{filepath.Join(dir, "missing"), "nor is CRIU installed"},
		{failing, "cannot run on this kernel either: criu check: no such feature)"},
		{passing, "passes criu check here"},
	}
	for _, tt := range tests {
		err := Unsupported("checkpoint", tt.criu)
		if !errors.Is(err, ErrNotImplemented) || !strings.HasPrefix(err.Error(), "checkpoint: not supported by this version of xrunc") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Unsupported(%s) = %v, want it to contain %q", tt.criu, err, tt.want)
		}
	}
}
