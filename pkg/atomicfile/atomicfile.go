// Package atomicfile writes files so that a reader, or a crash at any point,
// sees either the old content or the new one, never a torn mix.
//
// Internal to xstack; no API stability.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes data to a temporary file in path's directory, syncs it,
// sets perm, and renames it over path. With syncDir it also fsyncs the
// directory so the rename itself survives a power loss; state on tmpfs
// (/run) does not need it.
func WriteFile(path string, data []byte, perm os.FileMode, syncDir bool) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if syncDir {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	if syncDir {
		d, err := os.Open(dir)
		if err != nil {
			return fmt.Errorf("sync dir of %s: %w", path, err)
		}
		defer d.Close()
		if err := d.Sync(); err != nil {
			return fmt.Errorf("sync dir of %s: %w", path, err)
		}
	}
	return nil
}
