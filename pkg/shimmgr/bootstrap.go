package shimmgr

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

// maxTaskAPIVersion is the bootstrap version xd speaks: 2 = task v2 over
// ttrpc (containerd 1.7's; 3 is 2.x's task v3).
const maxTaskAPIVersion = 2

// parseStartOutput reads what `start` printed: a bare "unix://" address
// (containerd 1.6) or bootstrap JSON {"version":2,"address":...,
// "protocol":"ttrpc"} (1.7+).
func parseStartOutput(out []byte) (string, error) {
	s := strings.TrimSpace(string(out))
	if strings.HasPrefix(s, "{") {
		var boot struct {
			Version  int    `json:"version"`
			Address  string `json:"address"`
			Protocol string `json:"protocol"`
		}
		if err := json.Unmarshal([]byte(s), &boot); err != nil {
			return "", fmt.Errorf("bad bootstrap JSON %q: %w", s, err)
		}
		if boot.Version > maxTaskAPIVersion {
			return "", fmt.Errorf("shim speaks bootstrap version %d, xd at most %d", boot.Version, maxTaskAPIVersion)
		}
		if boot.Protocol != "" && boot.Protocol != "ttrpc" {
			return "", fmt.Errorf("shim protocol %q, want ttrpc", boot.Protocol)
		}
		s = boot.Address
	}
	// Anything the shim wrote to stderr lands in the output too.
	if !strings.HasPrefix(s, "unix://") || len(s) == len("unix://") || strings.ContainsFunc(s, unicode.IsSpace) {
		return "", fmt.Errorf("start printed %q, want a unix:// address", s)
	}
	return s, nil
}
