// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultBootMedium is where Tails mounts its boot medium's system partition.
const DefaultBootMedium = "/run/live/medium"

var (
	// ErrNoBootMedium: nothing is mounted at the boot medium's mount point.
	ErrNoBootMedium = errors.New("boot medium not mounted")
	// ErrNotPartition: the boot medium is not a partition of a disk (a DVD,
	// an ISO image on a loop device, an overlay): a read-only or ISO boot,
	// which has no disk to keep a sector seed on.
	ErrNotPartition = errors.New("boot medium is not a partition of a disk")
)

// Medium is the mount that holds a seed location.
type Medium struct {
	MountPoint string
	FSType     string
	// Source is the mount's source as the kernel shows it (/dev/sdb1,
	// /dev/root, overlay …).
	Source string
	// Major and Minor are the device numbers of the file system; Major 0
	// means no block device (tmpfs, overlay).
	Major, Minor uint32
	// MountedReadOnly: mounted read-only now, as Tails mounts its boot
	// medium. A remount can change that.
	MountedReadOnly bool
	// FileSystemReadOnly: the file system itself is read-only, through
	// every mount of it, so it writes nothing to its device.
	FileSystemReadOnly bool
	// Unwritable says why no remount can make the medium writable (an
	// ISO 9660 or UDF file system, a read-only device), or is "".
	Unwritable string
}

// FindMedium returns the topmost mount at mountPoint, or ErrNoBootMedium.
// Unwritable is best effort: a medium it misses still fails its remount.
func (r SystemMounts) FindMedium(mountPoint string) (Medium, error) {
	f, err := os.Open(r.Roots.ProcPath("self", "mountinfo"))
	if err != nil {
		return Medium{}, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	mounts, err := parseMountInfo(f)
	if err != nil {
		return Medium{}, fmt.Errorf("read mount table: %w", err)
	}
	want := filepath.Clean(mountPoint)
	// Later lines are mounted over earlier ones at the same point.
	for i := len(mounts) - 1; i >= 0; i-- {
		m := mounts[i]
		if m.MountPoint != want {
			continue
		}
		med := Medium{
			MountPoint: m.MountPoint, FSType: m.FSType, Source: m.Source,
			Major: m.Major, Minor: m.Minor, MountedReadOnly: m.readOnly(),
			FileSystemReadOnly: slices.Contains(m.SuperOptions, "ro"),
		}
		med.Unwritable = r.unwritable(med)
		return med, nil
	}
	return Medium{}, fmt.Errorf("%w at %s", ErrNoBootMedium, want)
}

// unwritable says why the medium can never be written, or "".
func (r SystemMounts) unwritable(m Medium) string {
	switch m.FSType {
	case "iso9660", "udf":
		return m.FSType + " file system"
	}
	if m.Major == 0 {
		return ""
	}
	dir, err := r.blockDir(m)
	switch {
	case err != nil && r.deviceGone(m):
		// Pulled out (emergency shutdown, or a user who did not wait):
		// a remount or a write would only wait on a device that is not
		// there.
		return "device gone"
	case err != nil:
		return ""
	case readSysFlag(filepath.Join(dir, "ro")):
		return "read-only device"
	case isPartition(dir) && readSysFlag(filepath.Join(filepath.Dir(dir), "ro")):
		return "read-only disk"
	}
	return ""
}

// deviceGone: sysfs is there and lists block devices, but not the
// medium's. Without sysfs nothing is known.
func (r SystemMounts) deviceGone(m Medium) bool {
	devices := r.Roots.SysPath("dev", "block")
	if _, err := os.Stat(devices); err != nil {
		return false
	}
	_, err := os.Lstat(filepath.Join(devices, fmt.Sprintf("%d:%d", m.Major, m.Minor)))
	return errors.Is(err, fs.ErrNotExist)
}

// blockDir is the sysfs directory of the medium's block device, which
// /sys/dev/block/MAJ:MIN links to. The link is resolved rather than joined
// with "..": lexically, that would climb out of /sys/dev/block instead of
// into the disk's directory.
func (r SystemMounts) blockDir(m Medium) (string, error) {
	dir, err := filepath.EvalSymlinks(r.Roots.SysPath("dev", "block", fmt.Sprintf("%d:%d", m.Major, m.Minor)))
	if err != nil {
		return "", fmt.Errorf("find block device %d:%d in sysfs: %w", m.Major, m.Minor, err)
	}
	return dir, nil
}

// readSysFlag reports whether a sysfs attribute reads as 1.
func readSysFlag(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && string(bytes.TrimSpace(b)) == "1"
}

// isPartition: the kernel gives a partition's sysfs directory a "partition"
// attribute (its number), and puts it inside its disk's directory.
func isPartition(blockDir string) bool {
	_, err := os.Stat(filepath.Join(blockDir, "partition"))
	return err == nil
}

// BootDisk is the disk the boot medium is a partition of.
type BootDisk struct {
	Medium
	// Partition and Disk are device nodes: /dev/sdb1 and /dev/sdb.
	Partition, Disk string
}

// FindBootDisk finds the disk whose partition is mounted at mountPoint:
// the mount's device numbers from mountinfo, its sysfs directory, and the
// disk's directory around it. The disk is where the sector seed lives.
func (r SystemMounts) FindBootDisk(mountPoint string) (BootDisk, error) {
	med, err := r.FindMedium(mountPoint)
	if err != nil {
		return BootDisk{}, err
	}
	if med.Major == 0 {
		return BootDisk{}, fmt.Errorf("%w: %s is %s %s, not a block device", ErrNotPartition, med.MountPoint, med.FSType, med.Source)
	}
	dir, err := r.blockDir(med)
	if err != nil {
		return BootDisk{}, err
	}
	part, err := devName(dir)
	if err != nil {
		return BootDisk{}, err
	}
	if !isPartition(dir) {
		return BootDisk{}, fmt.Errorf("%w: %s is on %s (%s)", ErrNotPartition, med.MountPoint, r.Roots.DevPath(part), med.FSType)
	}
	disk, err := devName(filepath.Dir(dir))
	if err != nil {
		return BootDisk{}, fmt.Errorf("disk of %s: %w", part, err)
	}
	return BootDisk{Medium: med, Partition: r.Roots.DevPath(part), Disk: r.Roots.DevPath(disk)}, nil
}

// BootDisk returns the device node of the disk whose partition is mounted
// at mountPoint (see FindBootDisk): what the sector backend needs.
func (r SystemMounts) BootDisk(mountPoint string) (string, error) {
	d, err := r.FindBootDisk(mountPoint)
	return d.Disk, err
}

// devName reads a block device's name under /dev from its sysfs uevent
// (DEVNAME=sdb1, or cciss/c0d0p1 where the sysfs name is cciss!c0d0p1).
func devName(blockDir string) (string, error) {
	f, err := os.Open(filepath.Join(blockDir, "uevent"))
	if err != nil {
		return "", fmt.Errorf("block device name: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "DEVNAME="); ok && filepath.IsLocal(name) {
			return name, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("block device name: %w", err)
	}
	return "", fmt.Errorf("block device name: no DEVNAME in %s", filepath.Join(blockDir, "uevent"))
}
