package main

import (
	"archive/tar"
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestParseCtrTasks(t *testing.T) {
	out := "TASK            PID      STATUS    \n" +
		"xb-sleep-0      10093    RUNNING\n" +
		"xb-sleep-1      10144    STOPPED\n" +
		"xb-sleep-2      10193    RUNNING\n" +
		"\n"
	got := parseCtrTasks([]byte(out))
	want := map[string]int{"xb-sleep-0": 10093, "xb-sleep-2": 10193}
	if !maps.Equal(got, want) {
		t.Fatalf("parseCtrTasks = %v, want %v", got, want)
	}
	if got := parseCtrTasks([]byte("TASK    PID    STATUS    \n")); len(got) != 0 {
		t.Fatalf("header only: %v", got)
	}
}

func TestParseXctlPs(t *testing.T) {
	out := `[
  {"id": "s2", "state": "running", "pid": 10049, "status": "Up 1 second"},
  {"id": "s1", "state": "paused", "pid": 9926},
  {"id": "r1", "state": "stopped", "exit_code": 0}
]`
	got, err := parseXctlPs([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"s2": 10049}; !maps.Equal(got, want) {
		t.Fatalf("parseXctlPs = %v, want %v", got, want)
	}
	if got, err := parseXctlPs([]byte("null\n")); err != nil || len(got) != 0 {
		t.Fatalf("empty list: %v, %v", got, err)
	}
	if _, err := parseXctlPs([]byte("CONTAINER ID\n")); err == nil {
		t.Fatal("a table parsed as JSON")
	}
}

func TestComparePids(t *testing.T) {
	ids := []string{"a", "b", "c"}
	before := map[string]int{"a": 1, "b": 2, "c": 3}
	now := map[string]int{"a": 1, "b": 20}
	if got := comparePids(ids, before, now); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("comparePids = %v, want [b c]", got)
	}
	if got := comparePids(ids, nil, now); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("comparePids without before = %v, want [c]", got)
	}
}

func layoutTar(t *testing.T, name, index string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{{"oci-layout", `{"imageLayoutVersion":"1.0.0"}`}, {name, index}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestImageRefFromLayout(t *testing.T) {
	index := `{"schemaVersion":2,"manifests":[{"annotations":{"io.containerd.image.name":"xstack.local/busybox:latest","org.opencontainers.image.ref.name":"latest"}}]}`
	for _, name := range []string{"index.json", "./index.json"} {
		got, err := imageRefFromLayout(layoutTar(t, name, index))
		if err != nil || got != "xstack.local/busybox:latest" {
			t.Fatalf("%s: got %q, %v", name, got, err)
		}
	}
	if _, err := imageRefFromLayout(layoutTar(t, "index.json", `{"manifests":[{}]}`)); err == nil {
		t.Fatal("an index without a name annotation was accepted")
	}
	if _, err := imageRefFromLayout(layoutTar(t, "manifest.json", `[]`)); err == nil || !strings.Contains(err.Error(), "index.json") {
		t.Fatalf("a docker archive: %v", err)
	}
}

func TestContainerdConfig(t *testing.T) {
	var cfg struct {
		Version  int      `toml:"version"`
		Root     string   `toml:"root"`
		State    string   `toml:"state"`
		Disabled []string `toml:"disabled_plugins"`
		GRPC     struct {
			Address string `toml:"address"`
		} `toml:"grpc"`
		TTRPC struct {
			Address string `toml:"address"`
		} `toml:"ttrpc"`
		Plugins map[string]map[string]string `toml:"plugins"`
	}
	text := containerdConfig("/t/root", "/t/state", "/t/c.sock", "/t/opt")
	if _, err := toml.Decode(text, &cfg); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if cfg.Version != 2 || cfg.Root != "/t/root" || cfg.State != "/t/state" || cfg.GRPC.Address != "/t/c.sock" ||
		cfg.TTRPC.Address != "/t/c.sock.ttrpc" || !slices.Contains(cfg.Disabled, "io.containerd.grpc.v1.cri") ||
		cfg.Plugins["io.containerd.internal.v1.opt"]["path"] != "/t/opt" {
		t.Fatalf("config decodes to %+v", cfg)
	}
}
