package image

import (
	"strings"
	"testing"
)

func TestParseReference(t *testing.T) {
	const dgst = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	tests := []struct {
		in      string
		want    string // normalized; "" when an error is expected
		domain  string
		path    string
		wantErr string
	}{
		{in: "busybox", want: "docker.io/library/busybox:latest", domain: "docker.io", path: "library/busybox"},
		{in: "busybox:1.36", want: "docker.io/library/busybox:1.36"},
		{in: "library/busybox", want: "docker.io/library/busybox:latest"},
		{in: "docker.io/busybox", want: "docker.io/library/busybox:latest"},
		{in: "index.docker.io/library/busybox:x", want: "docker.io/library/busybox:x"},
		{in: "user/app", want: "docker.io/user/app:latest", path: "user/app"},
		{in: "localhost/app", want: "localhost/app:latest", domain: "localhost", path: "app"},
		{in: "localhost:5000/a/b:1", want: "localhost:5000/a/b:1", domain: "localhost:5000", path: "a/b"},
		{in: "127.0.0.1:5000/x@" + dgst, want: "127.0.0.1:5000/x@" + dgst, domain: "127.0.0.1:5000", path: "x"},
		{in: "127.0.0.1:5000/x:t@" + dgst, want: "127.0.0.1:5000/x:t@" + dgst},
		{in: "[::1]:5000/x", want: "[::1]:5000/x:latest", domain: "[::1]:5000"},
		{in: "ghcr.io/a-b/c_d.e__f:v1.2-rc_3", want: "ghcr.io/a-b/c_d.e__f:v1.2-rc_3"},
		{in: "Registry/app", want: "Registry/app:latest", domain: "Registry"},
		{in: "", wantErr: "empty"},
		{in: "Busybox", wantErr: "must be lowercase"},
		{in: "docker.io/Library/busybox", wantErr: "must be lowercase"},
		{in: "busybox:", wantErr: "bad tag"},
		{in: "busybox:-x", wantErr: "bad tag"},
		{in: "busybox:" + strings.Repeat("a", 129), wantErr: "bad tag"},
		{in: "busybox@sha256:abc", wantErr: "bad digest"},
		{in: "busybox@md5:d41d8cd98f00b204e9800998ecf8427e", wantErr: "bad digest"},
		{in: ":latest", wantErr: "missing repository"},
		{in: "a//b", wantErr: "bad repository path component"},
		{in: "a/../b", wantErr: "bad repository path component"},
		{in: "a/b/", wantErr: "bad repository path component"},
		{in: "local_host:5000/x", wantErr: "bad registry domain"},
		{in: "example.com/", wantErr: "missing repository path"},
		{in: " busybox", wantErr: "space"},
		{in: "a/" + strings.Repeat("b", 300), wantErr: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			ref, err := ParseReference(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseReference(%q) = %v, want error %q", tt.in, ref, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.in) {
					t.Fatalf("error %q should mention %q and the input", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseReference(%q): %v", tt.in, err)
			}
			if got := ref.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if tt.domain != "" && ref.Domain != tt.domain {
				t.Errorf("Domain = %q, want %q", ref.Domain, tt.domain)
			}
			if tt.path != "" && ref.Path != tt.path {
				t.Errorf("Path = %q, want %q", ref.Path, tt.path)
			}
			// Normalization is idempotent.
			again, err := ParseReference(ref.String())
			if err != nil || again != ref {
				t.Errorf("reparse of %q = %+v, %v; want %+v", ref.String(), again, err, ref)
			}
		})
	}
}
