package shimmgr

import "testing"

func TestParseStartOutput(t *testing.T) {
	tests := []struct {
		name, out, want string
		wantErr         bool
	}{
		{"bare", "unix:///run/containerd/s/abc", "unix:///run/containerd/s/abc", false},
		{"bare with newline", "unix:///run/xstack/s/abc\n", "unix:///run/xstack/s/abc", false},
		{"json v2", `{"version":2,"address":"unix:///s/x","protocol":"ttrpc"}`, "unix:///s/x", false},
		{"json no protocol", `{"version":2,"address":"unix:///s/x"}`, "unix:///s/x", false},
		{"json v3", `{"version":3,"address":"unix:///s/x","protocol":"ttrpc"}`, "", true},
		{"json grpc", `{"version":2,"address":"unix:///s/x","protocol":"grpc"}`, "", true},
		{"bad json", `{"version":`, "", true},
		{"empty", "", "", true},
		{"scheme only", "unix://", "", true},
		{"garbage", "time=\"...\" level=error msg=boom", "", true},
		{"stderr after address", "unix:///run/x\nwarning: x", "", true},
		{"tcp", "tcp://127.0.0.1:1", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStartOutput([]byte(tc.out))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseStartOutput(%q) = %q, %v; want %q, error %v", tc.out, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
