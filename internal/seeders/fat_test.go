// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fatOnDir is a FAT backend on a plain directory with a live/ folder,
// behind a fake mount that starts read-only.
func fatOnDir(t *testing.T) (FATBackend, *fakeMounts, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "live"), 0o700); err != nil {
		t.Fatal(err)
	}
	m := readOnlyMount()
	return FATBackend{Medium: dir, Mounts: m}, m, filepath.Join(dir, DefaultFATSeedFile)
}

// entries lists a directory, to catch temporary files left behind.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestFATBackendName(t *testing.T) {
	if got := (FATBackend{}).Name(); got != "fat:/run/live/medium/live/entropy-gate.seed" {
		t.Fatalf("Name = %q", got)
	}
}

// The seed protocol through the FAT backend on a medium with no block
// device to write through (this fake): every store remounts read-write
// and back, and a refreshed seed is credited at the next boot.
func TestFATBackendProtocol(t *testing.T) {
	b, m, path := fatOnDir(t)
	k := &FakeKernel{}
	res := Seeder{Backend: b, Kernel: k}.Seed()
	if res.Err != nil || res.Content != ContentEmpty || !res.Refreshed {
		t.Fatalf("first Seed = %+v, want a new seed file", res)
	}
	noCall(t, k, OpCredit)
	k.Initialized = true // the gate opened
	if res := (Seeder{Backend: b, Kernel: k}).Refresh(); !res.Refreshed || !res.StoredCreditable {
		t.Fatalf("Refresh = %+v, want a creditable seed stored", res)
	}
	stored, err := ParseRecord(readFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	k = &FakeKernel{} // next boot
	res = Seeder{Backend: b, Kernel: k}.Seed()
	if res.CreditedBits != 256 || !onlyCall(t, k, OpCredit).Carries(stored.seed()) {
		t.Fatalf("Seed = %+v, want the stored seed credited", res)
	}
	if m.calls() != "rw,ro,rw,ro,rw,ro" || !m.medium.MountedReadOnly {
		t.Fatalf("remounts %q, read-only now %t; want three read-write windows, read-only at the end", m.calls(), m.medium.MountedReadOnly)
	}
	if got := entries(t, filepath.Dir(path)); len(got) != 1 {
		t.Fatalf("seed directory holds %v, want only the seed file", got)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The replacement is written inside the read-write window: still the old
// file when the medium becomes writable, already the new one when it goes
// back to read-only.
func TestFATStoreWritesWhileWritable(t *testing.T) {
	b, m, path := fatOnDir(t)
	old, next := mustEncode(t, testRecord(1, 1, true)), testRecord(2, 2, true)
	writeFile(t, path, old, 0o600)
	var atRW, atRO []byte
	m.onRemount = func(readOnly bool) {
		content, _ := os.ReadFile(path)
		if readOnly {
			atRO = content
		} else {
			atRW = content
		}
	}
	if err := b.Store(next); err != nil {
		t.Fatal(err)
	}
	if stored, err := ParseRecord(atRO); !bytes.Equal(atRW, old) || err != nil || !bytes.Equal(stored.seed(), next.seed()) {
		t.Fatal("the seed file was not replaced between the read-write and the read-only remount")
	}
}

// Every way a store can fail leaves the medium read-only and the seed
// file as it was.
func TestFATStoreFailureLeavesReadOnly(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, m *fakeMounts, path string)
		wantCalls string
		wantErr   error
	}{
		{name: "read-only device refuses the remount", setup: func(_ *testing.T, m *fakeMounts, _ string) { m.rwErr = unix.EACCES },
			wantCalls: "rw,ro", wantErr: ErrReadOnly},
		{name: "remount fails", setup: func(_ *testing.T, m *fakeMounts, _ string) { m.rwErr = unix.EIO },
			wantCalls: "rw,ro", wantErr: unix.EIO},
		{name: "seed path is a directory", setup: func(t *testing.T, _ *fakeMounts, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, wantCalls: "rw,ro"},
		{name: "seed directory gone", setup: func(t *testing.T, _ *fakeMounts, path string) {
			if err := os.RemoveAll(filepath.Dir(path)); err != nil {
				t.Fatal(err)
			}
		}, wantCalls: "rw,ro", wantErr: os.ErrNotExist},
		{name: "medium known unwritable", setup: func(_ *testing.T, m *fakeMounts, _ string) { m.medium.Unwritable = "read-only device" },
			wantErr: ErrReadOnly},
		{name: "medium gone", setup: func(_ *testing.T, m *fakeMounts, _ string) { m.mediumErr = ErrNoBootMedium },
			wantErr: ErrNoBootMedium},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, m, path := fatOnDir(t)
			old := mustEncode(t, testRecord(1, 1, true))
			writeFile(t, path, old, 0o600)
			tt.setup(t, m, path)
			before := entriesIfAny(filepath.Dir(path))

			err := b.Store(testRecord(2, 2, true))
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("Store = %v, want a failure matching %v", err, tt.wantErr)
			}
			if m.calls() != tt.wantCalls || !m.medium.MountedReadOnly {
				t.Fatalf("remounts %q, read-only now %t; want %q and read-only", m.calls(), m.medium.MountedReadOnly, tt.wantCalls)
			}
			if got := entriesIfAny(filepath.Dir(path)); strings.Join(got, ",") != strings.Join(before, ",") {
				t.Fatalf("seed directory went from %v to %v", before, got)
			}
			if content, err := os.ReadFile(path); err == nil && !bytes.Equal(content, old) {
				t.Fatal("seed file changed by a failed store")
			}
		})
	}
}

func entriesIfAny(dir string) []string {
	des, _ := os.ReadDir(dir)
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// A medium that can never be written (an ISO, a read-only device) is mixed
// from, never credited, and not remounted at all.
func TestFATUnwritableMediumMixesOnly(t *testing.T) {
	b, m, path := fatOnDir(t)
	rec := testRecord(0x40, 3, true)
	writeFile(t, path, mustEncode(t, rec), 0o600)
	m.medium.Unwritable = "iso9660 file system"
	if l, err := b.Load(); err != nil || !l.ReadOnly {
		t.Fatalf("Load = %+v, %v; want a read-only medium", l, err)
	}
	k := &FakeKernel{}
	res := Seeder{Backend: b, Kernel: k}.Seed()
	noCall(t, k, OpCredit)
	if !onlyCall(t, k, OpMix).Carries(rec.seed()) || res.Refreshed || m.calls() != "" || !strings.Contains(res.Reason, "read-only medium") {
		t.Fatalf("Seed = %+v, remounts %q; want mixed only for a read-only medium, no remount", res, m.calls())
	}
	if !bytes.Equal(readFile(t, path), mustEncode(t, rec)) {
		t.Fatal("seed file on an unwritable medium changed")
	}
}

// A remount the kernel refuses (a read-only device Load could not tell)
// costs the credit, never the boot: mixed, and tried once.
func TestFATRefusedRemountMixesOnly(t *testing.T) {
	b, m, path := fatOnDir(t)
	rec := testRecord(0x40, 3, true)
	writeFile(t, path, mustEncode(t, rec), 0o600)
	m.rwErr = unix.EACCES
	k := &FakeKernel{}
	res := Seeder{Backend: b, Kernel: k, WearRewrites: 500}.Seed()
	noCall(t, k, OpCredit)
	if !onlyCall(t, k, OpMix).Carries(rec.seed()) || res.Refreshed || !errors.Is(res.Err, ErrReadOnly) {
		t.Fatalf("Seed = %+v, want mixed only, the store failing with ErrReadOnly", res)
	}
	if strings.Count(m.calls(), "rw") != 1 {
		t.Fatalf("remounts %q, want a single read-write attempt", m.calls())
	}
}

// A seed file others can read, as on a vfat mounted with the default
// umask, is mixed and refreshed but not credited.
func TestFATReadableByOthersIsNotCredited(t *testing.T) {
	b, _, path := fatOnDir(t)
	rec := testRecord(0x40, 3, true)
	writeFile(t, path, mustEncode(t, rec), 0o755)
	k := &FakeKernel{}
	res := Seeder{Backend: b, Kernel: k}.Seed()
	noCall(t, k, OpCredit)
	if !onlyCall(t, k, OpMix).Carries(rec.seed()) || !res.Refreshed || !strings.Contains(res.Reason, "mode") {
		t.Fatalf("Seed = %+v, want mixed because of the file mode, and refreshed", res)
	}
}

func TestFATPathMustStayOnTheMedium(t *testing.T) {
	for _, p := range []string{"../etc/shadow", "/etc/shadow", "live/../../x"} {
		t.Run(p, func(t *testing.T) {
			m := readOnlyMount()
			b := FATBackend{Medium: t.TempDir(), Path: p, Mounts: m}
			if _, err := b.Load(); err == nil {
				t.Fatal("Load accepted a path off the medium")
			}
			if err := b.Store(testRecord(1, 1, true)); err == nil || m.calls() != "" {
				t.Fatalf("Store = %v, remounts %q; want a refusal before any remount", err, m.calls())
			}
		})
	}
}

// The FAT backend on a real read-only mount, through SystemMounts (the
// kernel's mount table and mount(2)). tmpfs stands in for vfat, which this
// kernel may lack (TestVfat* run on vfat, in the QEMU lab if need be): Load
// is not fooled by the read-only mount, Store makes the mount writable
// only while it writes, and keeps its flags.
func TestFATBackendOnReadOnlyTmpfs(t *testing.T) {
	dir := mountTemp(t, "tmpfs", "size=1m", "nosuid", "nodev", "noexec")
	if err := os.Mkdir(filepath.Join(dir, "live"), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	b := FATBackend{Medium: dir}
	l, err := b.Load()
	if err != nil || l.ReadOnly || l.Content != ContentEmpty {
		t.Fatalf("Load = %+v, %v; want an empty, writable location although mounted read-only", l, err)
	}
	k := &FakeKernel{Initialized: true}
	if res := (Seeder{Backend: b, Kernel: k}).Refresh(); !res.Refreshed || res.Err != nil {
		t.Fatalf("Refresh = %+v", res)
	}
	assertMountedReadOnly(t, dir, "nosuid", "nodev", "noexec")
	if _, err := ParseRecord(readFile(t, filepath.Join(dir, DefaultFATSeedFile))); err != nil {
		t.Fatalf("seed file after Refresh: %v", err)
	}
	if err := b.Store(testRecord(1, 1, true)); err != nil {
		t.Fatal(err)
	}
	assertMountedReadOnly(t, dir, "nosuid", "nodev", "noexec")
}

// A boot makes at most one read-write remount cycle of the boot medium:
// once the marker says it was spent, a store that needs a remount fails,
// the seed is mixed, never credited, and its file stays as it was; the
// read-only remount that ends every write attempt is still made.
func TestRemountBudget(t *testing.T) {
	b, m, path := fatOnDir(t)
	b.Mounts = RemountBudget{Mounts: m, Marker: filepath.Join(t.TempDir(), "remounted")}
	if res := (Seeder{Backend: b, Kernel: &FakeKernel{Initialized: true}}).Seed(); !res.Refreshed || res.Err != nil {
		t.Fatalf("first Seed = %+v, want a new seed file", res)
	}
	stored := readFile(t, path)

	k := &FakeKernel{}
	res := Seeder{Backend: b, Kernel: k}.Seed()
	noCall(t, k, OpCredit)
	if !res.Mixed || res.Refreshed || !errors.Is(res.Err, ErrRemountSpent) {
		t.Fatalf("second Seed = %+v, want mixed only, the remount refused", res)
	}
	if !bytes.Equal(readFile(t, path), stored) {
		t.Fatal("the seed file changed without a remount")
	}
	if m.calls() != "rw,ro,ro" || !m.medium.MountedReadOnly {
		t.Fatalf("remounts %q, read-only now %t; want one read-write window, read-only at the end", m.calls(), m.medium.MountedReadOnly)
	}
}

// A second Store of one load is refused (the file Load read was released
// by the first) before anything is made writable.
func TestFATStoreTwiceFromOneLoad(t *testing.T) {
	b, m, _ := fatOnDir(t)
	if res := (Seeder{Backend: b, Kernel: &FakeKernel{Initialized: true}}).Seed(); !res.Refreshed {
		t.Fatalf("first Seed = %+v", res)
	}
	loaded, err := b.Load()
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Release()
	next, err := NextRecord(&FakeKernel{Initialized: true}, Env{}, loaded)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Store(next); err != nil {
		t.Fatal(err)
	}
	before := m.calls()
	if err := b.Store(next); !errors.Is(err, ErrChanged) {
		t.Fatalf("second Store = %v, want ErrChanged", err)
	}
	if m.calls() != before {
		t.Fatalf("remounts went from %q to %q for a refused store", before, m.calls())
	}
}
