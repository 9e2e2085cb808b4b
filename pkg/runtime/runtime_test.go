package runtime

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"c1", true},
		{"my_container-1.2+x", true},
		{strings.Repeat("a", 1024), true},
		{strings.Repeat("a", 1025), false},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"../x", false},
		{"a b", false},
		{"a\x00b", false},
		{"ünïcode", false},
		{"a:b", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			err := ValidateID(tt.id)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidID) {
				t.Fatalf("error %v is not ErrInvalidID", err)
			}
		})
	}
}

func TestContainerResources(t *testing.T) {
	deny := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	limit := int64(100)
	s := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{deny},
		Pids:    &specs.LinuxPids{Limit: &limit},
	}}}
	r := containerResources(s)
	if len(r.Devices) != 1+len(defaultDeviceRules) || r.Devices[0].Allow {
		t.Fatalf("spec rules must come first, then the defaults: %+v", r.Devices)
	}
	if r.Pids == nil || *r.Pids.Limit != 100 {
		t.Fatalf("other resources lost: %+v", r)
	}
	if len(s.Linux.Resources.Devices) != 1 {
		t.Fatalf("the spec was modified: %+v", s.Linux.Resources.Devices)
	}
	if got := containerResources(&specs.Spec{}); len(got.Devices) != len(defaultDeviceRules) {
		t.Fatalf("a spec without resources gets %d rules, want the defaults", len(got.Devices))
	}
}
