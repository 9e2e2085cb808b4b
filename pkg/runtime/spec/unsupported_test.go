package spec

import "testing"

func TestHasFilesystem(t *testing.T) {
	for name, want := range map[string]bool{"proc": true, "tmpfs": true, "no-such-fs": false, "": false} {
		if got := hasFilesystem(name); got != want {
			t.Errorf("hasFilesystem(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestHostLacks(t *testing.T) {
	if got := hostLacks("AppArmor", true); got != "" {
		t.Errorf("hostLacks with the feature = %q", got)
	}
	if got := hostLacks("AppArmor", false); got != ", and this host has no AppArmor enabled" {
		t.Errorf("hostLacks without the feature = %q", got)
	}
}
