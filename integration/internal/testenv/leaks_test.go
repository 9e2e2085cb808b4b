package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOwnMounts(t *testing.T) {
	tmp := filepath.Clean(os.TempDir())
	bundle := tmp + "/bundle-1"
	other := tmp + "/other-test"
	tests := []struct {
		name string
		line string // major:minor root mountpoint opts...
		mine bool
	}{
		{"host mount outside the temp dir", "0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw", true},
		{"the bundle's rootfs bound onto itself", "254:0 " + bundle + "/rootfs " + bundle + "/rootfs rw - ext4 /dev/vda rw", true},
		{"a mount inside the bundle", "0:50 / " + bundle + "/rootfs/proc rw - proc proc rw", true},
		{"the bundle bound elsewhere under tmp", "254:0 " + bundle + "/rootfs " + other + "/x rw - ext4 /dev/vda rw", true},
		{"another test's mount", "0:51 / " + other + "/rootfs rw - overlay overlay rw", false},
		{"a sibling whose name extends the bundle's", "0:52 / " + bundle + "0/rootfs rw - tmpfs tmpfs rw", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ownMounts([]string{tt.line}, bundle, "")
			if (got[tt.line] == 1) != tt.mine {
				t.Errorf("ownMounts(%q) kept=%v, want %v", tt.line, got[tt.line] == 1, tt.mine)
			}
		})
	}
}
