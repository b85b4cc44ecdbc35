// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders/internal/gptimage"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
)

// extractTree unpacks a fixture archive (testdata/sysroot.txtar explains
// the format) into a temporary directory and returns it.
func extractTree(t testing.TB, archive string) string {
	t.Helper()
	text, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	var file *bytes.Buffer
	var path string
	flush := func() {
		if file == nil {
			return
		}
		if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		file = nil
	}
	for _, line := range strings.SplitAfter(string(text), "\n") {
		header, isHeader := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "-- ")
		if isHeader {
			header, isHeader = strings.CutSuffix(header, " --")
		}
		if !isHeader {
			if file != nil {
				file.WriteString(line)
			}
			continue
		}
		flush()
		name, target, isLink := strings.Cut(header, " -> ")
		if !filepath.IsLocal(name) {
			t.Fatalf("%s: entry %q leaves the tree", archive, name)
		}
		path = filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if isLink {
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			continue
		}
		file = &bytes.Buffer{}
	}
	flush()
	return root
}

func fixtureRoots(t testing.TB) SystemMounts {
	root := extractTree(t, filepath.Join("testdata", "sysroot.txtar"))
	return SystemMounts{Roots: pool.Roots{Proc: filepath.Join(root, "proc"), Sys: filepath.Join(root, "sys"), Dev: "/dev"}}
}

func TestFindBootDisk(t *testing.T) {
	roots := fixtureRoots(t)
	tests := []struct {
		name            string
		mountPoint      string
		partition, disk string
		unwritable      string
		mountedRO       bool
		wantErr         error // nil: any error is a failure; errAny: an error, not a sentinel
	}{
		{name: "Tails USB stick", mountPoint: "/run/live/medium", partition: "/dev/sdb1", disk: "/dev/sdb", mountedRO: true},
		{name: "trailing slash", mountPoint: "/run/live/medium/", partition: "/dev/sdb1", disk: "/dev/sdb", mountedRO: true},
		{name: "NVMe names", mountPoint: "/boot/efi", partition: "/dev/nvme0n1p1", disk: "/dev/nvme0n1"},
		{name: "escaped mount point", mountPoint: "/media/amnesia/SD card", partition: "/dev/mmcblk0p1", disk: "/dev/mmcblk0"},
		{name: "backslash and tab", mountPoint: "/media/back\\slash\ttab", partition: "/dev/sdb1", disk: "/dev/sdb"},
		{name: "device names with a slash", mountPoint: "/media/cciss", partition: "/dev/cciss/c0d0p1", disk: "/dev/cciss/c0d0"},
		{name: "the topmost of stacked mounts", mountPoint: "/media/stacked", partition: "/dev/nvme0n1p1", disk: "/dev/nvme0n1"},
		{name: "write-protected disk", mountPoint: "/media/write-protected", partition: "/dev/sdc1", disk: "/dev/sdc", unwritable: "read-only disk", mountedRO: true},
		{name: "read-only partition", mountPoint: "/media/setro", partition: "/dev/sdd1", disk: "/dev/sdd", unwritable: "read-only device", mountedRO: true},
		{name: "DVD", mountPoint: "/media/dvd", wantErr: ErrNotPartition},
		{name: "loop device (squashfs)", mountPoint: "/run/live/rootfs/filesystem.squashfs", wantErr: ErrNotPartition},
		{name: "loop device (image file)", mountPoint: "/media/image", wantErr: ErrNotPartition},
		{name: "device mapper", mountPoint: "/media/dm", wantErr: ErrNotPartition},
		{name: "overlay root", mountPoint: "/", wantErr: ErrNotPartition},
		{name: "tmpfs", mountPoint: "/run", wantErr: ErrNotPartition},
		{name: "not mounted", mountPoint: "/media/nothing", wantErr: ErrNoBootMedium},
		{name: "below a mount point is not a mount", mountPoint: "/run/live/medium/live", wantErr: ErrNoBootMedium},
		{name: "escapes are decoded, not matched", mountPoint: `/media/amnesia/SD\040card`, wantErr: ErrNoBootMedium},
		{name: "device gone from sysfs", mountPoint: "/media/gone", wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := roots.FindBootDisk(tt.mountPoint)
			switch {
			case errors.Is(tt.wantErr, errAny):
				if err == nil || errors.Is(err, ErrNotPartition) || errors.Is(err, ErrNoBootMedium) {
					t.Fatalf("FindBootDisk = %+v, %v; want an error other than the sentinels", got, err)
				}
				return
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("FindBootDisk = %+v, %v; want %v", got, err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if got.Partition != tt.partition || got.Disk != tt.disk || got.Unwritable != tt.unwritable || got.MountedReadOnly != tt.mountedRO {
				t.Fatalf("FindBootDisk = %+v; want partition %s, disk %s, unwritable %q, mounted read-only %t",
					got, tt.partition, tt.disk, tt.unwritable, tt.mountedRO)
			}
			disk, err := roots.BootDisk(tt.mountPoint)
			if err != nil || disk != tt.disk {
				t.Fatalf("BootDisk = %q, %v; want %s", disk, err, tt.disk)
			}
		})
	}
}

var errAny = errors.New("any error")

// A read-only mount of a file system that is read-write elsewhere is
// mounted read-only, but its file system may still write its device.
func TestFindMediumReadOnly(t *testing.T) {
	roots := fixtureRoots(t)
	tests := []struct {
		name                  string
		mountPoint            string
		mountedRO, fsReadOnly bool
	}{
		{name: "Tails' boot medium", mountPoint: "/run/live/medium", mountedRO: true, fsReadOnly: true},
		{name: "read-only view of a read-write file system", mountPoint: "/media/ro-view", mountedRO: true},
		{name: "read-write", mountPoint: "/boot/efi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := roots.FindMedium(tt.mountPoint)
			if err != nil || m.MountedReadOnly != tt.mountedRO || m.FileSystemReadOnly != tt.fsReadOnly {
				t.Fatalf("FindMedium = %+v, %v; want mounted read-only %t, file system read-only %t", m, err, tt.mountedRO, tt.fsReadOnly)
			}
		})
	}
}

// The reasons a medium can never be written, as FindMedium sees them for
// media that are no disk partition too.
func TestFindMediumUnwritable(t *testing.T) {
	roots := fixtureRoots(t)
	tests := []struct {
		mountPoint, fsType, want string
	}{
		{mountPoint: "/media/dvd", fsType: "iso9660", want: "iso9660 file system"},
		{mountPoint: "/run/live/rootfs/filesystem.squashfs", fsType: "squashfs", want: "read-only device"},
		{mountPoint: "/media/image", fsType: "vfat"},
		{mountPoint: "/run", fsType: "tmpfs"},
		// The stick was pulled out: no seed write may be tried (a remount
		// or a write would only wait on a device that is not there).
		{mountPoint: "/media/gone", fsType: "vfat", want: "device gone"},
	}
	for _, tt := range tests {
		t.Run(tt.mountPoint, func(t *testing.T) {
			m, err := roots.FindMedium(tt.mountPoint)
			if err != nil {
				t.Fatal(err)
			}
			if m.FSType != tt.fsType || m.Unwritable != tt.want {
				t.Fatalf("FindMedium = %+v; want %s, unwritable %q", m, tt.fsType, tt.want)
			}
		})
	}
}

// Without sysfs (not mounted), nothing says a device is gone: the remount
// decides.
func TestFindMediumWithoutSysfs(t *testing.T) {
	roots := fixtureRoots(t)
	roots.Roots.Sys = t.TempDir()
	m, err := roots.FindMedium("/run/live/medium")
	if err != nil || m.Unwritable != "" {
		t.Fatalf("FindMedium = %+v, %v; want a medium not known to be unwritable", m, err)
	}
}

func TestFindBootDiskDevRoot(t *testing.T) {
	roots := fixtureRoots(t)
	roots.Roots.Dev = "/tmp/devroot"
	got, err := roots.FindBootDisk("/media/cciss")
	if err != nil || got.Disk != "/tmp/devroot/cciss/c0d0" || got.Partition != "/tmp/devroot/cciss/c0d0p1" {
		t.Fatalf("FindBootDisk = %+v, %v; want device nodes under /tmp/devroot", got, err)
	}
}

func TestFindMediumWithoutMountTable(t *testing.T) {
	_, err := SystemMounts{Roots: pool.Roots{Proc: t.TempDir()}}.FindMedium(DefaultBootMedium)
	if err == nil || errors.Is(err, ErrNoBootMedium) {
		t.Fatalf("FindMedium = %v; want a read error, not ErrNoBootMedium", err)
	}
}

func needCommands(t testing.TB, cmds ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop devices and mounts: needs root")
	}
	testenv.NeedCommands(t, cmds...)
}

// TestFindBootDiskOnLoopDevice runs discovery against the real kernel: a
// Tails-like GPT image on a loop device with partition scanning, its
// partition mounted read-only. Discovery does not depend on the file
// system, so this uses ext4, which every kernel here has; TestVfatFindBootDisk
// does the same with vfat on a virtio disk in the QEMU lab.
func TestFindBootDiskOnLoopDevice(t *testing.T) {
	needCommands(t, "losetup", "mkfs.ext4")
	for _, readOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("read-only device %t", readOnly), func(t *testing.T) {
			path := tailsStickImage(t, "mkfs.ext4", "-q", "-F", "-b", "1024", "-E", fmt.Sprintf("offset=%d", 2048*512))
			args := []string{"--partscan"}
			if readOnly {
				args = append(args, "--read-only")
			}
			disk := loopDevice(t, path, args...)
			part := firstPartition(t, disk)
			dir := mountFS(t, part, "ext4", "ro")
			got, err := SystemMounts{}.FindBootDisk(dir)
			if err != nil {
				t.Fatal(err)
			}
			wantUnwritable := ""
			if readOnly {
				wantUnwritable = "read-only device"
			}
			if got.Partition != part || got.Disk != disk || !got.MountedReadOnly || got.FSType != "ext4" || got.Unwritable != wantUnwritable {
				t.Fatalf("FindBootDisk = %+v; want %s on %s, ext4, mounted read-only, unwritable %q", got, part, disk, wantUnwritable)
			}
		})
	}
}

// tailsStickImage writes a Tails-like GPT image (partition 1 from LBA 2048
// to 8158) and formats the partition: mkfs gets args, the image and the
// partition's size in KiB, and args must place the file system at the
// partition's offset.
func tailsStickImage(t *testing.T, mkfs string, args ...string) string {
	t.Helper()
	path := writeImage(t, t.TempDir(), gptimage.TailsLike(8192).Build())
	const partKiB = (8158 - 2048 + 1) / 2
	if out, err := exec.Command(mkfs, append(args, path, fmt.Sprint(partKiB))...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", mkfs, err, out)
	}
	return path
}

// firstPartition returns the device node of a loop device's first
// partition, or skips the test on a kernel that found none: one built
// without GPT support (CONFIG_EFI_PARTITION).
func firstPartition(t *testing.T, loop string) string {
	t.Helper()
	part := loop + "p1"
	if _, err := os.Stat(filepath.Join("/sys/class/block", filepath.Base(part))); err != nil {
		t.Skipf("the kernel found no partition on %s: built without GPT support", loop)
	}
	return part
}

// A whole loop device (an image without partitions) is no disk partition.
func TestFindBootDiskOnWholeLoopDevice(t *testing.T) {
	needCommands(t, "losetup", "mkfs.ext4")
	img := filepath.Join(t.TempDir(), "fs.img")
	if out, err := exec.Command("mkfs.ext4", "-q", img, "2m").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	dir := mountFS(t, loopDevice(t, img), "ext4", "ro")
	if _, err := (SystemMounts{}).FindBootDisk(dir); !errors.Is(err, ErrNotPartition) {
		t.Fatalf("FindBootDisk = %v, want ErrNotPartition", err)
	}
}

func TestDiskSerial(t *testing.T) {
	roots := fixtureRoots(t)
	tests := []struct {
		name         string
		major, minor uint32
		want         string
		wantErr      bool
	}{
		{name: "USB stick", major: 8, minor: 16, want: "4C530001230522117383"},
		{name: "USB stick's partition", major: 8, minor: 17, want: "4C530001230522117383"},
		{name: "USB stick without a serial, never its hub's", major: 8, minor: 32},
		{name: "virtio disk", major: 253, minor: 0, want: "entropy-gate-lab"},
		{name: "virtio disk without a serial", major: 253, minor: 16},
		{name: "NVMe", major: 259, minor: 0, want: "S4EWNX0R123456"},
		{name: "MMC card", major: 179, minor: 0, want: "0x3a2c1b0f"},
		{name: "loop device", major: 7, minor: 0},
		{name: "pulled out", major: 8, minor: 80, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := roots.DiskSerial(tt.major, tt.minor)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("DiskSerial(%d:%d) = %q, %v; want %q (error %t)", tt.major, tt.minor, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
