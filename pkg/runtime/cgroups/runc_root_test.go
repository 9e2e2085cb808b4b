package cgroups

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// TestPathsMatchRunc is a differential test: for the same cgroupsPath and
// id, New must resolve exactly the directories runc's cgroupfs driver puts a
// real container in (as recorded in runc's state.json).
func TestPathsMatchRunc(t *testing.T) {
	requireRoot(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc not installed")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("busybox not installed")
	}
	bundle := busyboxBundle(t, runc)
	stateRoot := t.TempDir()
	name := uniqueName(t)
	tests := []struct {
		cgroupsPath, id string
		parents         int
	}{
		{cgroupsPath: "", id: name, parents: 0},
		{cgroupsPath: "/" + name + "/c1", id: name + "-abs", parents: 1},
		{cgroupsPath: name + "-rel/c1", id: name + "-rel", parents: 1},
	}
	for _, tt := range tests {
		t.Run("path="+tt.cgroupsPath, func(t *testing.T) {
			setCgroupsPath(t, bundle, tt.cgroupsPath)
			// The detached container inherits runc's stdio: give it
			// /dev/null, not a pipe the test would wait on for 100s.
			logFile := filepath.Join(t.TempDir(), "runc.log")
			run := exec.Command(runc, "--root", stateRoot, "--log", logFile, "run", "-d", "--bundle", bundle, tt.id)
			if err := run.Run(); err != nil {
				log, _ := os.ReadFile(logFile)
				t.Fatalf("runc run: %v\n%s", err, log)
			}
			var state struct {
				CgroupPaths map[string]string `json:"cgroup_paths"`
			}
			raw, err := os.ReadFile(filepath.Join(stateRoot, tt.id, "state.json"))
			if err == nil {
				err = json.Unmarshal(raw, &state)
			}
			if out, delErr := exec.Command(runc, "--root", stateRoot, "delete", "-f", tt.id).CombinedOutput(); delErr != nil {
				t.Errorf("runc delete: %v\n%s", delErr, out)
			}
			if err != nil {
				t.Fatal(err)
			}
			// runc leaves the parents it created behind: remove them.
			cleanupCgroups(t, Load(state.CgroupPaths), tt.parents)

			m, err := New(tt.cgroupsPath, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Paths(); !reflect.DeepEqual(got, state.CgroupPaths) {
				t.Errorf("Paths() = %v\nrunc uses %v", got, state.CgroupPaths)
			}
		})
	}
}

// busyboxBundle makes an OCI bundle whose process is "sleep 100", from the
// spec runc generates.
func busyboxBundle(t *testing.T, runc string) string {
	t.Helper()
	bundle := t.TempDir()
	bin := filepath.Join(bundle, "rootfs", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), busybox, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	spec := exec.Command(runc, "spec")
	spec.Dir = bundle
	if out, err := spec.CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v\n%s", err, out)
	}
	editConfig(t, bundle, func(c map[string]any) {
		process := c["process"].(map[string]any)
		process["terminal"] = false
		process["args"] = []string{"sleep", "100"}
	})
	return bundle
}

func setCgroupsPath(t *testing.T, bundle, cgroupsPath string) {
	editConfig(t, bundle, func(c map[string]any) {
		linux := c["linux"].(map[string]any)
		if cgroupsPath == "" {
			delete(linux, "cgroupsPath")
		} else {
			linux["cgroupsPath"] = cgroupsPath
		}
	})
}

func editConfig(t *testing.T, bundle string, edit func(map[string]any)) {
	t.Helper()
	path := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	edit(c)
	if raw, err = json.Marshal(c); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
