package nsenter

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestEnv(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"nothing to join", Config{SyncFd: 3, CloneFlags: 0}, EnvName + "=3 0"},
		{"new namespaces", Config{SyncFd: 5, CloneFlags: unix.CLONE_NEWPID | unix.CLONE_NEWNS}, EnvName + "=5 20020000"},
		{"joins", Config{SyncFd: 4, Joins: []Join{{Fd: 6, Type: unix.CLONE_NEWNET}, {Fd: 7, Type: unix.CLONE_NEWUSER}}},
			EnvName + "=4 0 6:40000000 7:10000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.Env(); got != tt.want {
				t.Fatalf("Env() = %q, want %q", got, tt.want)
			}
		})
	}
}
