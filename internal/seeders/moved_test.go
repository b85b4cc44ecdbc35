// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// creditedTwice reports whether k was asked to credit the same bytes
// twice.
func creditedTwice(k *FakeKernel) bool {
	seen := map[Call]bool{}
	for _, c := range k.CallsOf(OpCredit) {
		if seen[c] {
			return true
		}
		seen[c] = true
	}
	return false
}

// Issue 13, finding 2: between Load and the scrub the seed file is renamed
// away. The scrub must not be skipped with the record credited anyway, and
// the moved copy, renamed back, must not be credited a second time.
func TestFileSeedMovedAsideIsNotCreditedTwice(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seed")
	aside := filepath.Join(dir, "aside")
	b := FileBackend{Path: path}
	if res := (Seeder{Backend: b, Kernel: &FakeKernel{Initialized: true}}).Refresh(); !res.Refreshed || !res.StoredCreditable {
		t.Fatalf("first seed: %s", res.Reason)
	}

	moveAside := func() {
		if err := os.Rename(path, aside); err != nil {
			t.Error(err)
		}
	}
	k := &FakeKernel{}
	res := Seeder{Backend: between{b, moveAside}, Kernel: k}.Seed()
	if err := os.Rename(aside, path); err != nil {
		t.Fatal(err)
	}
	Seeder{Backend: b, Kernel: k}.Seed()

	if creditedTwice(k) {
		t.Fatalf("the same seed was credited twice (first load: %s)", res.Reason)
	}
	if res.CreditedBits != 0 {
		t.Fatalf("first load with the file moved aside before Store: %s; want no credit", res.Reason)
	}
}

// A seed file in a directory others can write (rename, replace or link
// it) is never credited, and the reason says so.
func TestFileSeedDirectoryMustBeRootOnly(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{name: "group-writable", setup: func(t *testing.T, dir string) { chmod(t, dir, 0o770) }, want: "directory"},
		{name: "world-writable, sticky", setup: func(t *testing.T, dir string) { chmod(t, dir, 0o1777) }, want: "directory"},
		{name: "owned by another user", setup: func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root: run the tests as root")
			}
			if err := os.Chown(dir, 1234, 0); err != nil {
				t.Fatal(err)
			}
		}, want: "directory"},
		{name: "root-only", setup: func(t *testing.T, dir string) { chmod(t, dir, 0o755) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "seeds")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			b := FileBackend{Path: filepath.Join(dir, "seed")}
			if res := (Seeder{Backend: b, Kernel: &FakeKernel{Initialized: true}}).Refresh(); !res.Refreshed {
				t.Fatalf("first seed: %s", res.Reason)
			}
			tt.setup(t, dir)
			res := Seeder{Backend: b, Kernel: &FakeKernel{}}.Seed()
			if tt.want == "" {
				if res.CreditedBits == 0 {
					t.Fatalf("root-only directory: %s; want credit", res.Reason)
				}
				return
			}
			if res.CreditedBits != 0 || !strings.Contains(res.Reason, tt.want) {
				t.Fatalf("%s: %s; want no credit, the reason naming the %s", tt.name, res.Reason, tt.want)
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// A file-level copy of a seed file (a backup restored, the persistent
// volume cloned file by file) has another inode: mixed, never credited.
func TestFileSeedCopyIsNotCredited(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seed")
	if res := (Seeder{Backend: FileBackend{Path: path}, Kernel: &FakeKernel{Initialized: true}}).Refresh(); !res.Refreshed {
		t.Fatalf("first seed: %s", res.Reason)
	}
	copied := filepath.Join(dir, "copy")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, copied, data, 0o600)
	if res := (Seeder{Backend: FileBackend{Path: copied}, Kernel: &FakeKernel{}}).Seed(); res.CreditedBits != 0 || !res.Mixed {
		t.Fatalf("copy: %s; want mixed only", res.Reason)
	}
	if res := (Seeder{Backend: FileBackend{Path: path}, Kernel: &FakeKernel{}}).Seed(); res.CreditedBits == 0 {
		t.Fatalf("original: %s; want credited", res.Reason)
	}
}
