package xctl

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

func TestContainerRequest(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HOME": "/root"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name    string
		args    []string
		want    *xdv1.CreateContainerRequest
		wantErr string
	}{
		{
			name: "image and command",
			args: []string{"busybox", "sh", "-c", "echo hi"},
			want: &xdv1.CreateContainerRequest{Image: "busybox", Options: &xdv1.RunOptions{Args: []string{"sh", "-c", "echo hi"}}},
		},
		{
			name: "everything",
			args: []string{"--name", "web", "-it", "-e", "A=1", "-e", "HOME", "-e", "UNSET", "-u", "1000:1000", "-w", "/srv",
				"--hostname", "h", "-v", "/data:/data:ro", "-v", "/x:/y", "--memory", "64m", "--cpus", "1.5", "--pids-limit", "100",
				"--read-only", "--net", "host", "--entrypoint", "/bin/sh", "--runtime", "io.containerd.runc.v2",
				"--runtime-binary", "/usr/bin/runc", "-l", "k=v", "img", "-c", "true"},
			want: &xdv1.CreateContainerRequest{
				Id: "web", Image: "img", Runtime: "io.containerd.runc.v2", RuntimeBinary: "/usr/bin/runc",
				Labels: map[string]string{"k": "v"},
				Options: &xdv1.RunOptions{
					Args: []string{"-c", "true"}, Entrypoint: []string{"/bin/sh"}, EntrypointSet: true,
					Env: []string{"A=1", "HOME=/root"}, User: "1000:1000", Workdir: "/srv", Hostname: "h",
					Mounts: []*xdv1.Mount{
						{Source: "/data", Destination: "/data", Readonly: true},
						{Source: "/x", Destination: "/y"},
					},
					MemoryBytes: 64 << 20, MilliCpus: 1500, PidsLimit: 100, ReadOnly: true, Network: "host", Tty: true, Stdin: true,
				},
			},
		},
		{
			name: "empty entrypoint clears it",
			args: []string{"--entrypoint", "", "img"},
			want: &xdv1.CreateContainerRequest{Image: "img", Options: &xdv1.RunOptions{EntrypointSet: true, Args: []string{}}},
		},
		{name: "no image", args: []string{"--rm"}, wantErr: "an image is required"},
		{name: "bad memory", args: []string{"--memory", "lots", "img"}, wantErr: "--memory"},
		{name: "bad cpus", args: []string{"--cpus", "0", "img"}, wantErr: "--cpus"},
		{name: "bad pids", args: []string{"--pids-limit", "x", "img"}, wantErr: "not an integer"},
		{name: "bad net", args: []string{"--net", "bridge", "img"}, wantErr: "--net"},
		{name: "relative workdir", args: []string{"-w", "srv", "img"}, wantErr: "absolute"},
		{name: "bad env", args: []string{"-e", "=x", "img"}, wantErr: "environment variable"},
		{name: "bad volume", args: []string{"-v", "/a", "img"}, wantErr: "SRC:DST"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := newFlagSet(runFlags(), false)
			pos, err := fs.parse(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			got, err := containerRequest(fs, pos, lookup)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tc.want) {
				t.Errorf("request =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}

func TestParseVolume(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    *xdv1.Mount
		wantErr string
	}{
		{"/a:/b", &xdv1.Mount{Source: "/a", Destination: "/b"}, ""},
		{"/a:/b:ro", &xdv1.Mount{Source: "/a", Destination: "/b", Readonly: true}, ""},
		{"/a:/b:rw", &xdv1.Mount{Source: "/a", Destination: "/b"}, ""},
		{"/a", nil, "SRC:DST"},
		{"/a:/b:ro:x", nil, "SRC:DST"},
		{"/a:/b:rx", nil, "not ro or rw"},
		{"vol:/b", nil, "absolute host path"},
		{":/b", nil, "absolute host path"},
		{"/a:b", nil, "destination"},
		{"/a:", nil, "destination"},
		{"/a:/", nil, "over /"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseVolume(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !proto.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
