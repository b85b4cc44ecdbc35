// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestFileBackendLoad(t *testing.T) {
	rec := testRecord(0x30, 4, true)
	tests := []struct {
		name         string
		setup        func(t *testing.T, path string)
		want         Content
		wantNoCredit string // substring; "" means creditable
		wantErr      bool
	}{
		{name: "missing file", setup: func(*testing.T, string) {}, want: ContentEmpty},
		{name: "proper seed file", setup: func(t *testing.T, path string) {
			writeBoundSeed(t, path, rec)
		}, want: ContentRecord},
		{name: "seed file bound to another file", setup: func(t *testing.T, path string) {
			writeFile(t, path, mustEncode(t, rec), 0o600)
		}, want: ContentRecord, wantNoCredit: "written for"},
		{name: "group-readable", setup: func(t *testing.T, path string) {
			writeFile(t, path, mustEncode(t, rec), 0o640)
		}, want: ContentRecord, wantNoCredit: "mode"},
		{name: "world-writable", setup: func(t *testing.T, path string) {
			writeFile(t, path, mustEncode(t, rec), 0o602)
		}, want: ContentRecord, wantNoCredit: "mode"},
		{name: "second hard link", setup: func(t *testing.T, path string) {
			writeFile(t, path, mustEncode(t, rec), 0o600)
			if err := os.Link(path, path+".copy"); err != nil {
				t.Fatal(err)
			}
		}, want: ContentRecord, wantNoCredit: "links"},
		{name: "owned by another user", setup: func(t *testing.T, path string) {
			if os.Geteuid() != 0 {
				t.Skip("chown: needs root")
			}
			writeFile(t, path, mustEncode(t, rec), 0o600)
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, want: ContentRecord, wantNoCredit: "owned by uid 65534"},
		{name: "foreign content is ours to replace", setup: func(t *testing.T, path string) {
			writeFile(t, path, []byte("some old seed format"), 0o600)
		}, want: ContentForeign},
		{name: "torn record", setup: func(t *testing.T, path string) {
			writeFile(t, path, mustEncode(t, rec)[:50], 0o600)
		}, want: ContentTorn},
		{name: "symlink refused", setup: func(t *testing.T, path string) {
			target := filepath.Join(filepath.Dir(path), "target")
			writeFile(t, target, mustEncode(t, rec), 0o600)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, wantErr: true},
		{name: "FIFO refused without blocking", setup: func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantErr: true},
		{name: "directory refused", setup: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seed")
			tt.setup(t, path)
			l, err := FileBackend{Path: path}.Load()
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Load = %v, want a refusal", l)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Content != tt.want {
				t.Fatalf("Content = %v, want %v", l.Content, tt.want)
			}
			if (tt.wantNoCredit == "") != (l.NoCredit == "") || !strings.Contains(l.NoCredit, tt.wantNoCredit) {
				t.Fatalf("NoCredit = %q, want %q", l.NoCredit, tt.wantNoCredit)
			}
		})
	}
}

// writeBoundSeed writes rec to a new seed file at path, bound to that file,
// as FileBackend.Store would.
func writeBoundSeed(t *testing.T, path string, rec Record) {
	t.Helper()
	writeFile(t, path, make([]byte, RecordSize), 0o600)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if rec.Binding, err = (FileBackend{}).binding(f); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(mustEncode(t, rec), 0); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, b []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func TestFileBackendMissingDirectory(t *testing.T) {
	_, err := FileBackend{Path: filepath.Join(t.TempDir(), "no", "seed")}.Load()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load = %v, want ErrNotExist", err)
	}
}

// An exposed seed file is mixed, never credited, and replaced by a proper one.
func TestFileBackendReplacesExposedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seed")
	rec := testRecord(0x30, 4, true)
	writeFile(t, path, mustEncode(t, rec), 0o644)
	k := &FakeKernel{}
	res := Seeder{Backend: FileBackend{Path: path}, Kernel: k}.Seed()
	noCall(t, k, OpCredit)
	if !onlyCall(t, k, OpMix).Carries(rec.seed()) || !res.Refreshed {
		t.Fatalf("Seed = %+v, want the seed mixed and replaced", res)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("replacement: %v, %v; want mode 0600", st, err)
	}
	if l, err := (FileBackend{Path: path}).Load(); err != nil || l.NoCredit != "" {
		t.Fatalf("replacement Load = %v, %v; want a creditable location", l, err)
	}
}

// A symlink at the seed path is neither followed nor replaced.
func TestFileBackendLeavesSymlinkAlone(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "precious")
	writeFile(t, target, []byte("not a seed"), 0o600)
	path := filepath.Join(dir, "seed")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	k := &FakeKernel{}
	res := Seeder{Backend: FileBackend{Path: path}, Kernel: k}.Seed()
	if res.Err == nil || res.Refreshed || len(k.Calls()) != 0 {
		t.Fatalf("Seed = %+v, calls %v; want a refusal that touches nothing", res, k.Calls())
	}
	if b, _ := os.ReadFile(target); string(b) != "not a seed" {
		t.Fatal("symlink target changed")
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatal("symlink replaced")
	}
}

// Rule 2 and 3 on a real read-only file system: mixed, never credited,
// nothing written.
func TestFileBackendReadOnlyFileSystem(t *testing.T) {
	dir := mountTemp(t, "tmpfs", "size=1m")
	path := filepath.Join(dir, "seed")
	rec := testRecord(0x30, 4, true)
	writeFile(t, path, mustEncode(t, rec), 0o600)
	if err := remountReadOnly(dir); err != nil {
		t.Skipf("remount read-only: %v", err)
	}
	k := &FakeKernel{}
	res := Seeder{Backend: FileBackend{Path: path}, Kernel: k}.Seed()
	noCall(t, k, OpCredit)
	if !onlyCall(t, k, OpMix).Carries(rec.seed()) || res.Refreshed || !strings.Contains(res.Reason, "read-only") {
		t.Fatalf("Seed = %+v, want mixed only because the medium is read-only", res)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, mustEncode(t, rec)) {
		t.Fatal("seed file on a read-only file system changed")
	}
	if err := (FileBackend{Path: path}).Store(testRecord(1, 1, true)); err == nil {
		t.Fatal("Store on a read-only file system succeeded")
	}
}

func remountReadOnly(dir string) error {
	return syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, "")
}

func TestFileStoreFailureLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seed")
	if err := os.Mkdir(path, 0o700); err != nil { // rename over a directory fails
		t.Fatal(err)
	}
	if err := (FileBackend{Path: path}).Store(testRecord(1, 1, true)); err == nil {
		t.Fatal("Store over a directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after a failed store, want the original only", len(entries))
	}
}

// TestStoreScrubsTheOldSeed checks that a replaced seed file's old bytes
// are zeroed where they were, not merely unlinked: on flash or vfat the
// freed blocks would otherwise keep a seed that was credited.
func TestStoreScrubsTheOldSeed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seed")
	k := &FakeKernel{Initialized: true}
	first, err := NextRecord(k, Env{}, Loaded{})
	if err != nil {
		t.Fatal(err)
	}
	b := FileBackend{Path: path}
	if err := b.Store(first); err != nil {
		t.Fatal(err)
	}
	// Keep the old file's inode open to look at its blocks afterwards.
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	second, _ := NextRecord(k, Env{}, Loaded{})
	if err := b.Store(second); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, RecordSize)
	if _, err := old.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, make([]byte, RecordSize)) {
		t.Errorf("the replaced seed file's bytes were not scrubbed")
	}
	loaded, err := b.Load()
	if err != nil || loaded.Content != ContentRecord || loaded.Record.Generation != second.Generation {
		t.Errorf("after the replacement: %v, %v", loaded, err)
	}
}
