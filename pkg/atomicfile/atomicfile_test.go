package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name    string
		initial string // "" = no file before
		data    string
		perm    os.FileMode
		syncDir bool
	}{
		{"new file", "", "hello", 0o600, false},
		{"replace", "old content that is longer", "new", 0o644, true},
		{"empty", "x", "", 0o600, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "state.json")
			if tt.initial != "" {
				if err := os.WriteFile(p, []byte(tt.initial), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(p, []byte(tt.data), tt.perm, tt.syncDir); err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			got, err := os.ReadFile(p)
			if err != nil || string(got) != tt.data {
				t.Fatalf("content = %q, %v; want %q", got, err, tt.data)
			}
			st, _ := os.Stat(p)
			if st.Mode().Perm() != tt.perm {
				t.Fatalf("perm = %v, want %v", st.Mode().Perm(), tt.perm)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Fatalf("temp files left behind: %v", entries)
			}
		})
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope", "f")
	if err := WriteFile(p, []byte("x"), 0o600, false); err == nil {
		t.Fatal("expected an error for a missing directory")
	}
}
