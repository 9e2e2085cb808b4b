// Command busybox-image builds a small busybox image from the host's static
// busybox (Debian's busybox-static) as an OCI image-layout tar or a
// docker-archive tar, for the quick start and the tests:
//
//	go run ./contrib/busybox-image -o busybox.tar [-name xstack.local/busybox:latest] [-format oci|docker]
//
// The image has /bin/busybox with its applets linked, /etc/passwd and
// /etc/group (root, nobody, and user "app" 1000:1000), /tmp and /root.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

func main() {
	out := flag.String("o", "busybox.tar", "output tar")
	name := flag.String("name", "xstack.local/busybox:latest", "image name recorded in the archive")
	format := flag.String("format", "oci", "oci (image layout) or docker (docker-archive)")
	compression := flag.String("compression", "gzip", "layer compression of an oci image: gzip or zstd")
	busybox := flag.String("busybox", "/bin/busybox", "static busybox binary to put in the image")
	var extra addFlags
	flag.Var(&extra, "add", "SRC:DST: also put host file SRC at DST in the image, mode 0755 (repeatable)")
	flag.Parse()
	if err := build(*out, *name, *format, *compression, *busybox, extra); err != nil {
		fmt.Fprintf(os.Stderr, "busybox-image: %v\n", err)
		os.Exit(1)
	}
}

type addFlags []string

func (a *addFlags) String() string     { return strings.Join(*a, ",") }
func (a *addFlags) Set(v string) error { *a = append(*a, v); return nil }

var epoch = time.Unix(1700000000, 0).UTC()

func layer(busybox string, extra []string) ([]byte, error) {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, err
	}
	list, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busybox, err)
	}
	// containers/storage (podman) refuses a layer that names a path twice.
	added := map[string][]byte{}
	for _, e := range extra {
		src, dst, ok := strings.Cut(e, ":")
		if !ok {
			return nil, fmt.Errorf("-add %q: want SRC:DST", e)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		added[strings.TrimPrefix(dst, "/")] = data
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	var dup []string
	write := func(h *tar.Header) {
		if seen[h.Name] {
			dup = append(dup, h.Name)
		}
		seen[h.Name] = true
		tw.WriteHeader(h)
	}
	dir := func(name string, mode int64, owner int) {
		write(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: owner, Gid: owner, ModTime: epoch})
	}
	file := func(name string, mode int64, data []byte) {
		write(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch})
		tw.Write(data)
	}
	for _, d := range []string{"bin", "etc", "root", "home", "proc", "sys", "dev", "var"} {
		dir(d, 0o755, 0)
	}
	dir("tmp", 0o1777, 0)
	dir("home/app", 0o755, 1000)
	file("bin/busybox", 0o755, bin)
	for _, applet := range strings.Fields(string(list)) {
		if _, replaced := added["bin/"+applet]; applet == "busybox" || replaced {
			continue
		}
		write(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777, ModTime: epoch})
	}
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	file("etc/group", 0o644, []byte("root:x:0:\nwheel:x:10:app\napp:x:1000:\nnogroup:x:65534:\n"))
	file("etc/hostname", 0o644, []byte("busybox\n"))
	for _, e := range extra {
		_, dst, _ := strings.Cut(e, ":")
		dst = strings.TrimPrefix(dst, "/")
		file(dst, 0o755, added[dst])
	}
	if len(dup) > 0 {
		return nil, fmt.Errorf("the layer would name %q more than once", dup)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// compressLayer returns the layer compressed as asked, and its media type.
func compressLayer(raw []byte, compression string) ([]byte, string, error) {
	var buf bytes.Buffer
	switch compression {
	case "gzip":
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(raw); err != nil {
			return nil, "", err
		}
		if err := zw.Close(); err != nil {
			return nil, "", err
		}
		return buf.Bytes(), "application/vnd.oci.image.layer.v1.tar+gzip", nil
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			return nil, "", err
		}
		if _, err := zw.Write(raw); err != nil {
			return nil, "", err
		}
		if err := zw.Close(); err != nil {
			return nil, "", err
		}
		return buf.Bytes(), "application/vnd.oci.image.layer.v1.tar+zstd", nil
	}
	return nil, "", fmt.Errorf("unknown compression %q (gzip or zstd)", compression)
}

func build(out, name, format, compression, busybox string, extra []string) error {
	raw, err := layer(busybox, extra)
	if err != nil {
		return err
	}
	config, err := json.Marshal(map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": "amd64",
		"os":           "linux",
		"config": map[string]any{
			"Env":        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Cmd":        []string{"sh"},
			"WorkingDir": "/",
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + sha(raw)}},
	})
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(path string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	switch format {
	case "docker":
		if err := add(sha(config)+".json", config); err != nil {
			return err
		}
		if err := add(sha(raw)+"/layer.tar", raw); err != nil {
			return err
		}
		manifest, _ := json.Marshal([]map[string]any{{
			"Config": sha(config) + ".json", "RepoTags": []string{name}, "Layers": []string{sha(raw) + "/layer.tar"},
		}})
		if err := add("manifest.json", manifest); err != nil {
			return err
		}
	case "oci":
		layerZ, layerType, err := compressLayer(raw, compression)
		if err != nil {
			return err
		}
		manifest, _ := json.Marshal(map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + sha(config), "size": len(config)},
			"layers":        []any{map[string]any{"mediaType": layerType, "digest": "sha256:" + sha(layerZ), "size": len(layerZ)}},
		})
		tag := name[strings.LastIndex(name, ":")+1:]
		index, _ := json.Marshal(map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.index.v1+json",
			"manifests": []any{map[string]any{
				"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + sha(manifest), "size": len(manifest),
				"annotations": map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
				"platform":    map[string]string{"architecture": "amd64", "os": "linux"},
			}},
		})
		for _, b := range []struct {
			path string
			data []byte
		}{
			{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
			{"blobs/sha256/" + sha(config), config},
			{"blobs/sha256/" + sha(layerZ), layerZ},
			{"blobs/sha256/" + sha(manifest), manifest},
			{"index.json", index},
		} {
			if err := add(b.path, b.data); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown format %q (oci or docker)", format)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
