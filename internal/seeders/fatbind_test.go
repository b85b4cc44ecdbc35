package seeders

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// systemPartition makes a GPT stick image with the real sgdisk (extra
// arguments: a disk GUID), attaches it to a loop device with partition
// scanning and formats partition 1. The seed file code does not depend on
// the file system, so this uses ext4, which every kernel here has;
// TestLabVfat runs the FAT backend on vfat under QEMU.
func systemPartition(t *testing.T, args ...string) (disk, part string) {
	t.Helper()
	needCommands(t, "losetup", "mkfs.ext4")
	img := sgdiskStick(t, t.TempDir(), 8<<20, args...)
	disk = loopDevice(t, img, "--partscan")
	part = firstPartition(t, disk)
	if out, err := exec.Command("mkfs.ext4", "-q", part).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	return disk, part
}

// mountSystemPartition mounts it as the boot medium, with the seed folder.
func mountSystemPartition(t *testing.T, part string) string {
	t.Helper()
	dir := mountFS(t, part, "ext4", "")
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(DefaultFATSeedFile)), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func fatSeed(t *testing.T, medium string, k *FakeKernel, refresh bool) Result {
	t.Helper()
	s := Seeder{Backend: FATBackend{Medium: medium}, Kernel: k}
	if refresh {
		return s.Refresh()
	}
	return s.Seed()
}

// Issue 13, finding 1: a file-level copy (clone, backup) of the system
// partition's seed file onto another stick is not credited there; the
// original stick, booted again (a new mount), still credits it.
func TestFATSeedCopiedToAnotherStickIsNotCredited(t *testing.T) {
	_, partA := systemPartition(t)
	_, partB := systemPartition(t)
	dirA := mountSystemPartition(t, partA)
	if res := fatSeed(t, dirA, &FakeKernel{Initialized: true}, true); !res.Refreshed || !res.StoredCreditable {
		t.Fatalf("seed on stick A: %s", res.Reason)
	}
	seed, err := os.ReadFile(filepath.Join(dirA, DefaultFATSeedFile))
	if err != nil {
		t.Fatal(err)
	}
	unmount(t, dirA)

	dirB := mountSystemPartition(t, partB)
	if err := os.WriteFile(filepath.Join(dirB, DefaultFATSeedFile), seed, 0o600); err != nil {
		t.Fatal(err)
	}
	if res := fatSeed(t, dirB, &FakeKernel{}, false); res.CreditedBits != 0 || !res.Mixed || !strings.Contains(res.Reason, "written for") {
		t.Fatalf("copy on stick B: %s; want mixed, not credited, because it was written for another medium", res.Reason)
	}
	dirA = mountSystemPartition(t, partA)
	if res := fatSeed(t, dirA, &FakeKernel{}, false); res.CreditedBits != 8*SeedSize {
		t.Fatalf("stick A at its next boot: %s; want credited", res.Reason)
	}
}

// An installer-made stick: the FAT seed written while the disk still has
// the published GUID is not credited then, and is credited once Tails'
// first boot has given the disk and partition GUIDs of their own.
func TestFATSeedInstallerMadeStickFirstBoot(t *testing.T) {
	disk, part := systemPartition(t, "-U", TailsImageDiskGUID.String())
	dir := mountSystemPartition(t, part)
	if res := fatSeed(t, dir, &FakeKernel{Initialized: true}, true); !res.Refreshed || !res.StoredCreditable {
		t.Fatalf("installer's seed: %s", res.Reason)
	}
	unmount(t, dir)
	// Tails' first boot, in the initramfs before our step.
	sgdisk(t, disk, "--move-second-header", "--randomize-guids")
	dir = mountSystemPartition(t, part)
	if res := fatSeed(t, dir, &FakeKernel{}, false); res.CreditedBits != 8*SeedSize {
		t.Fatalf("first boot: %s; want the installer's seed credited", res.Reason)
	}
	loaded, err := FATBackend{Medium: dir}.Load()
	loaded.Release()
	if err != nil || loaded.Record.Binding.FirstBoot || loaded.Record.Binding.DiskGUID == TailsImageDiskGUID || loaded.Record.Binding.PartitionGUID == (GUID{}) {
		t.Fatalf("after the first boot: %v, %v; want a record bound to the new disk and partition GUIDs", loaded.Record, err)
	}
}
