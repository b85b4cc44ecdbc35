// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

// buildGuestTests builds this package's tests as a static binary, the
// lab guest's program.
func buildGuestTests(ctx context.Context, t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "seeders.test")
	build := exec.CommandContext(ctx, "go", "test", "-c", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the test binary: %v: %s", err, out)
	}
	return bin
}

var copiesDisks = flag.String("copies-disks", "", "for TestGuestCopies in the QEMU lab: the stick, a blank disk with another serial, a blank disk without one, another stick")

// TestLabCopies boots the real kernel with virtio disks that have serial
// numbers, as USB sticks do, and runs TestGuestCopies there: issue 13's
// copies, on real block devices and a real vfat.
func TestLabCopies(t *testing.T) {
	lab := vmtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := buildGuestTests(ctx, t, dir)
	var disks []vmtest.Disk
	for i, serial := range []string{"STICK-A", "STICK-B", "", "STICK-C"} {
		path := filepath.Join(dir, fmt.Sprintf("disk%d.img", i))
		if i == 1 || i == 2 {
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, vmtest.MinStickSize); err != nil {
				t.Fatal(err)
			}
		} else if _, err := vmtest.NewStick(ctx, path, vmtest.MinStickSize); err != nil {
			t.Fatal(err)
		}
		disks = append(disks, vmtest.Disk{Path: path, Serial: serial})
	}
	res, err := lab.Boot(ctx, vmtest.Config{
		Files:  map[string]string{"/bin/seeders.test": bin},
		Disks:  disks,
		Script: "run /bin/seeders.test -test.v -test.run ^TestGuestCopies$ -copies-disks /dev/vda,/dev/vdb,/dev/vdc,/dev/vdd",
	})
	if err != nil {
		t.Fatal(err)
	}
	transcript := strings.Join(res.Output(1), "\n")
	if code, err := res.ExitCode(1); err != nil || code != 0 || !strings.Contains(transcript, "--- PASS: TestGuestCopies (") {
		t.Fatalf("TestGuestCopies failed in the guest (exit %d, %v):\n%s", code, err, transcript)
	}
}

// TestGuestCopies runs in TestLabCopies's guest: a stick gets a sector
// and a FAT seed; it is copied byte for byte onto a disk with another
// serial and onto one without a serial, and its seed file is copied onto
// another stick's system partition. No copy is credited; the stick is.
func TestGuestCopies(t *testing.T) {
	if *copiesDisks == "" {
		t.Skip("runs in the QEMU lab's guest: go test -run TestLabCopies")
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
