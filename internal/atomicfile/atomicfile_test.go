// SPDX-License-Identifier: GPL-3.0-or-later

package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "state.json")
	for _, tt := range []struct {
		name, data string
	}{
		{name: "new file in a new directory", data: "first"},
		{name: "replaced", data: "second, longer than the first"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := Write(path, []byte(tt.data), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != tt.data {
				t.Errorf("content %q, %v; want %q", got, err, tt.data)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, want 0644", fi.Mode().Perm())
			}
			if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
				t.Errorf("temporary files left behind: %v", entries)
			}
		})
	}
}

func TestWriteFailsWithoutChange(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The directory cannot be made: a file is in its place.
	if err := Write(filepath.Join(blocker, "state.json"), []byte("y"), 0o644); err == nil {
		t.Error("Write under a regular file succeeded")
	}
	if b, _ := os.ReadFile(blocker); string(b) != "x" {
		t.Errorf("the file in the way changed: %q", b)
	}
}
