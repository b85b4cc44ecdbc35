// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

var copiesDisks = flag.String("copies-disks", "", "for TestGuestCopies in the QEMU lab: the stick, a blank disk with another serial, a blank disk without one, another stick")

// TestGuestCopies runs in the guest of internal/integration's
// TestLabCopies: a stick gets a sector
// and a FAT seed; it is copied byte for byte onto a disk with another
// serial and onto one without a serial, and its seed file is copied onto
// another stick's system partition. No copy is credited; the stick is.
func TestGuestCopies(t *testing.T) {
	if *copiesDisks == "" {
		t.Skip("runs in the QEMU lab's guest: go test -run TestLabCopies ./internal/integration")
	}
	d := strings.Split(*copiesDisks, ",")
	stick, otherSerial, noSerial, otherStick := d[0], d[1], d[2], d[3]
	ready := &FakeKernel{Initialized: true}

	if res := (Seeder{Backend: SectorBackend{Path: stick}, Kernel: ready}).Refresh(); !res.StoredCreditable {
		t.Fatalf("sector seed on the stick: %s", res.Reason)
	}
	medium := mountFS(t, stick+"1", "vfat", "fmask=0077,dmask=0077")
	if err := os.MkdirAll(filepath.Join(medium, "live"), 0o700); err != nil {
		t.Fatal(err)
	}
	if res := (Seeder{Backend: FATBackend{Medium: medium}, Kernel: ready}).Refresh(); !res.StoredCreditable {
		t.Fatalf("FAT seed on the stick: %s", res.Reason)
	}
	seedFile := readFile(t, filepath.Join(medium, DefaultFATSeedFile))
	unmount(t, medium)

	for _, target := range []string{otherSerial, noSerial} {
		byteCopy(t, stick, target)
		if res := (Seeder{Backend: SectorBackend{Path: target}, Kernel: &FakeKernel{}}).Seed(); res.CreditedBits != 0 || !res.Mixed {
			t.Errorf("sector seed copied byte for byte onto %s: %s; want mixed only", target, res.Reason)
		}
		dir := mountFS(t, target+"1", "vfat", "fmask=0077,dmask=0077")
		if res := (Seeder{Backend: FATBackend{Medium: dir}, Kernel: &FakeKernel{}}).Seed(); res.CreditedBits != 0 || !res.Mixed {
			t.Errorf("FAT seed copied byte for byte onto %s: %s; want mixed only", target, res.Reason)
		}
		unmount(t, dir)
	}

	dir := mountFS(t, otherStick+"1", "vfat", "fmask=0077,dmask=0077")
	if err := os.MkdirAll(filepath.Join(dir, "live"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, DefaultFATSeedFile), seedFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if res := (Seeder{Backend: FATBackend{Medium: dir}, Kernel: &FakeKernel{}}).Seed(); res.CreditedBits != 0 || !res.Mixed {
		t.Errorf("FAT seed file copied onto another stick: %s; want mixed only", res.Reason)
	}
	unmount(t, dir)

	if res := (Seeder{Backend: SectorBackend{Path: stick}, Kernel: &FakeKernel{}}).Seed(); res.CreditedBits != 8*SeedSize {
		t.Errorf("the stick's own sector seed: %s; want credited", res.Reason)
	}
	medium = mountFS(t, stick+"1", "vfat", "fmask=0077,dmask=0077")
	if res := (Seeder{Backend: FATBackend{Medium: medium}, Kernel: &FakeKernel{}}).Seed(); res.CreditedBits != 8*SeedSize {
		t.Errorf("the stick's own FAT seed, mounted again: %s; want credited", res.Reason)
	}
}

// byteCopy copies the whole disk from onto to, as dd does, and has the
// kernel read to's new partition table.
func byteCopy(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetInt(int(dst.Fd()), unix.BLKRRPART, 0); err != nil {
		t.Fatalf("re-read the partition table of %s: %v", to, err)
	}
}
