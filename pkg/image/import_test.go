package image

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// dockerArchive builds a legacy `docker save` style archive for img:
// <id>/layer.tar (uncompressed), <confighex>.json, manifest.json.
// A second layer may be a symlink to the first layer's file, as docker
// writes for duplicate layers.
func dockerArchive(t *testing.T, img testImage, raw [][]byte, repoTags []string, symlinkLast bool) []byte {
	t.Helper()
	var entries []tarEntry
	var layerPaths []string
	for i, l := range raw {
		id := fmt.Sprintf("%064x", i+1)
		p := id + "/layer.tar"
		if symlinkLast && i == len(raw)-1 && i > 0 {
			entries = append(entries, tarEntry{name: p, link: "../" + layerPaths[0]})
		} else {
			entries = append(entries, tarEntry{name: id + "/VERSION", data: []byte("1.0")}, tarEntry{name: p, data: l})
		}
		layerPaths = append(layerPaths, p)
	}
	cfgName := img.cfgDesc.Digest.Encoded() + ".json"
	entries = append(entries, tarEntry{name: cfgName, data: img.config})
	man := []map[string]any{{"Config": cfgName, "RepoTags": repoTags, "Layers": layerPaths}}
	entries = append(entries, tarEntry{name: "manifest.json", data: mustJSON(t, man)})
	return archiveOf(t, entries)
}

func TestImport(t *testing.T) {
	amd := buildImage(t, "amd64", true, map[string]string{"bin/sh": "amd"}, map[string]string{"etc/motd": "hi"})
	arm := buildImage(t, "arm64", true, map[string]string{"bin/sh": "arm"})
	idxBytes, idxDesc := buildIndex(t, arm, amd)

	ociWith := func(target ocispec.Descriptor, kv ...string) []tarEntry {
		l := newLayout()
		l.add(amd.blobs())
		if target.Digest == idxDesc.Digest {
			l.add(arm.blobs())
			l.add(map[digest.Digest][]byte{idxDesc.Digest: idxBytes})
		}
		l.entry(target, kv...)
		return l.entries(t)
	}
	tarOfEntries := func(e []tarEntry) []byte { return archiveOf(t, e) }

	// Docker archive: uncompressed layers, the second one a duplicate symlink.
	l1 := tarOf(t, map[string]string{"bin/sh": "docker"})
	dimg := testImage{}
	dcfg := mustJSON(t, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(l1), digest.FromBytes(l1)}}})
	dimg.config = dcfg
	dimg.cfgDesc = ocispec.Descriptor{Digest: digest.FromBytes(dcfg), Size: int64(len(dcfg))}
	dockerTagged := dockerArchive(t, dimg, [][]byte{l1, l1}, []string{"busybox:latest", "example.com/x/y:2"}, true)
	dockerUntagged := dockerArchive(t, dimg, [][]byte{l1, l1}, nil, false)

	// Wrong digest: a blob whose content does not match its name.
	wrong := ociWith(amd.desc, AnnotationImageName, "docker.io/library/a:1")
	for i := range wrong {
		if wrong[i].name == "blobs/sha256/"+amd.layerDesc[0].Digest.Encoded() {
			wrong[i].data = gzipOf(t, tarOf(t, map[string]string{"evil": "x"}))
		}
	}
	// Missing blob: drop the config.
	var missing []tarEntry
	for _, e := range ociWith(amd.desc, AnnotationImageName, "a") {
		if e.name != "blobs/sha256/"+amd.cfgDesc.Digest.Encoded() {
			missing = append(missing, e)
		}
	}
	// Docker archive whose config file name lies.
	var dockerWrongCfg []tarEntry
	fake := strings.Repeat("ab", 32) + ".json"
	dockerWrongCfg = append(dockerWrongCfg,
		tarEntry{name: "l/layer.tar", data: l1},
		tarEntry{name: fake, data: dcfg},
		tarEntry{name: "manifest.json", data: mustJSON(t, []map[string]any{{"Config": fake, "RepoTags": []string{"a:1"}, "Layers": []string{"l/layer.tar", "l/layer.tar"}}})})

	good := tarOfEntries(ociWith(amd.desc, AnnotationImageName, "docker.io/library/a:1"))

	tests := []struct {
		name     string
		archive  []byte
		fallback string
		want     []string // names
		target   digest.Digest
		wantErr  string
	}{
		{name: "oci containerd name", archive: good, want: []string{"docker.io/library/a:1"}, target: amd.desc.Digest},
		{name: "oci containerd name wins over ref.name", archive: tarOfEntries(ociWith(amd.desc, AnnotationImageName, "b:2", ocispec.AnnotationRefName, "zzz")),
			want: []string{"docker.io/library/b:2"}},
		{name: "oci full ref.name", archive: tarOfEntries(ociWith(amd.desc, ocispec.AnnotationRefName, "localhost:5000/x:3")), want: []string{"localhost:5000/x:3"}},
		{name: "oci tag-only ref.name + fallback", archive: tarOfEntries(ociWith(amd.desc, ocispec.AnnotationRefName, "v1")), fallback: "myimg:9",
			want: []string{"docker.io/library/myimg:v1"}},
		{name: "oci tag-only ref.name, no fallback", archive: tarOfEntries(ociWith(amd.desc, ocispec.AnnotationRefName, "latest")),
			wantErr: `named only by the tag "latest"`},
		{name: "oci unnamed + fallback", archive: tarOfEntries(ociWith(amd.desc)), fallback: "quay.io/q/r", want: []string{"quay.io/q/r:latest"}},
		{name: "oci unnamed, no fallback", archive: tarOfEntries(ociWith(amd.desc)), wantErr: "no name in the archive and no name was given"},
		{name: "oci multi-arch index", archive: tarOfEntries(ociWith(idxDesc, AnnotationImageName, "multi:1")),
			want: []string{"docker.io/library/multi:1"}, target: idxDesc.Digest},
		{name: "oci gzipped archive", archive: gzipOf(t, good), want: []string{"docker.io/library/a:1"}},
		{name: "docker-archive RepoTags + symlinked layer", archive: dockerTagged, want: []string{"docker.io/library/busybox:latest", "example.com/x/y:2"}},
		{name: "docker-archive untagged + fallback", archive: dockerUntagged, fallback: "imported", want: []string{"docker.io/library/imported:latest"}},
		{name: "docker-archive untagged, no fallback", archive: dockerUntagged, wantErr: "no RepoTags and no name was given"},
		{name: "docker-archive config name lies", archive: archiveOf(t, dockerWrongCfg), wantErr: "digest mismatch"},
		{name: "bad RepoTag", archive: dockerArchive(t, dimg, [][]byte{l1, l1}, []string{"Bad:Tag"}, false), wantErr: "must be lowercase"},
		{name: "wrong digest", archive: tarOfEntries(wrong), wantErr: "digest mismatch"},
		{name: "missing blob", archive: tarOfEntries(missing), wantErr: "no such file"},
		{name: "index.json entry missing", archive: archiveOf(t, []tarEntry{{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
			{name: "index.json", data: mustJSON(t, ocispec.Index{Manifests: []ocispec.Descriptor{amd.desc}})}}), fallback: "x", wantErr: "missing blob"},
		{name: "corrupt tar", archive: []byte(strings.Repeat("garbage!", 200)), wantErr: "read archive"},
		{name: "truncated tar", archive: good[:len(good)/2], wantErr: "unexpected EOF"},
		{name: "empty tar", archive: archiveOf(t, nil), wantErr: "neither index.json"},
		{name: "traversal", archive: archiveOf(t, append([]tarEntry{{name: "../../etc/evil", data: []byte("x")}}, ociWith(amd.desc, AnnotationImageName, "a")...)),
			wantErr: "escapes the archive"},
		{name: "absolute", archive: archiveOf(t, []tarEntry{{name: "/etc/evil", data: []byte("x")}}), wantErr: "escapes the archive"},
		{name: "symlink traversal", archive: archiveOf(t, []tarEntry{{name: "a/layer.tar", link: "../../../etc/shadow"}}), wantErr: "escapes the archive"},
		{name: "hostile blob name", archive: archiveOf(t, []tarEntry{{name: "blobs/sha256/abc", data: []byte("x")}}), wantErr: "not a valid blob name"},
		{name: "bad layout version", archive: archiveOf(t, append(ociWith(amd.desc, AnnotationImageName, "a"), tarEntry{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"9"}`)})),
			wantErr: "oci-layout version"},
		{name: "two images one name", archive: func() []byte {
			l := newLayout()
			l.add(amd.blobs())
			l.add(arm.blobs())
			l.add(map[digest.Digest][]byte{idxDesc.Digest: idxBytes})
			l.entry(amd.desc)
			l.entry(idxDesc)
			return archiveOf(t, l.entries(t))
		}(), fallback: "same", wantErr: "given to two images"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cs := newTestStore(t)
			named, err := Import(context.Background(), cs, bytes.NewReader(tt.archive), tt.fallback)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if named != nil {
					t.Fatalf("named %v on error", named)
				}
				return
			}
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			var got []string
			for _, n := range named {
				got = append(got, n.Name)
				if tt.target != "" && n.Target.Digest != tt.target {
					t.Errorf("%s target %s, want %s", n.Name, n.Target.Digest, tt.target)
				}
				res, err := Resolve(context.Background(), cs, n.Target)
				if err != nil {
					t.Fatalf("Resolve(%s): %v", n.Name, err)
				}
				for _, b := range res.Blobs {
					if !cs.Has(b) {
						t.Errorf("blob %s missing", b)
					}
				}
				// Every layer can be opened as a tar stream.
				for _, l := range res.Layers {
					rc, err := OpenLayer(cs, l)
					if err != nil {
						t.Fatalf("OpenLayer: %v", err)
					}
					rc.Close()
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("names = %v, want %v", got, tt.want)
			}
		})
	}
}
