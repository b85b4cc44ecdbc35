// SPDX-License-Identifier: GPL-3.0-or-later

package packaging

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSnapshotAndDiff(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/kept.conf", "a")
	write("etc/edited.conf", "a")
	write("etc/gone.conf", "a")
	write("var/lib/dpkg/status", "before")
	before, err := Snapshot(root, "var/lib/dpkg")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := before["var/lib/dpkg/status"]; ok {
		t.Error("Snapshot walked into a skipped folder")
	}
	write("etc/edited.conf", "longer")
	write("var/lib/dpkg/status", "after, ignored")
	write("usr/share/left/behind", "x")
	if err := os.Remove(filepath.Join(root, "etc/gone.conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/lib/x.service", filepath.Join(root, "etc/x.service")); err != nil {
		t.Fatal(err)
	}
	after, err := Snapshot(root, "var/lib/dpkg")
	if err != nil {
		t.Fatal(err)
	}
	added, removed, changed := Diff(before, after)
	for _, tt := range []struct {
		name      string
		got, want []string
	}{
		{name: "added", got: added, want: []string{
			"etc/x.service: link -> /usr/lib/x.service", "usr: drwxr-xr-x", "usr/share: drwxr-xr-x",
			"usr/share/left: drwxr-xr-x", "usr/share/left/behind: file -rw-r--r-- 1 bytes"}},
		{name: "removed", got: removed, want: []string{"etc/gone.conf: file -rw-r--r-- 1 bytes"}},
		{name: "changed", got: changed, want: []string{"etc/edited.conf: file -rw-r--r-- 1 bytes => file -rw-r--r-- 6 bytes"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !slices.Equal(tt.got, tt.want) {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	if added, removed, changed := Diff(after, after); len(added)+len(removed)+len(changed) > 0 {
		t.Errorf("a tree differs from itself: %q %q %q", added, removed, changed)
	}
}
