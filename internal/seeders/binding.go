// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// TailsImageDiskGUID is the disk GUID of every published Tails USB image.
// Tails' first boot replaces it with random GUIDs, so a disk that still has
// it is the image itself or a stick that was never booted: a seed on it is
// shared by every copy made so far (DESIGN rule 3).
var TailsImageDiskGUID = mustParseGUID("17B81DA0-8B1E-4269-9C39-FE5C7B9B58A3")

func mustParseGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// Binding is the medium a record was written for, kept inside its
// checksum. A record is credited only on the medium it names (Bound), so a
// copy of the medium (a cloned stick, a restored backup, a file-level copy
// of the system partition) holds a record that is mixed, never credited.
// Zero fields were not known when the record was written: a sector record
// has no partition, a file on a file system of its own (the persistent
// volume) no disk, a device without a serial no serial.
type Binding struct {
	// DiskGUID is the GPT disk GUID of the disk that holds the record.
	DiskGUID GUID
	// PartitionGUID is the unique GUID of the partition that holds a seed
	// file (the FAT system partition).
	PartitionGUID GUID
	// DiskSize is the whole disk's size in bytes.
	DiskSize uint64
	// Serial is SerialDigest of the disk's serial number (a USB stick's
	// iSerial, a virtio disk's serial), zero where the kernel shows none.
	Serial [sha256.Size]byte
	// FileSystem and Inode identify a seed file on a file system that keeps
	// inode numbers (ext4: f_fsid comes from its UUID). A file-level copy
	// always gets a new inode.
	FileSystem, Inode uint64
	// FirstBoot: the record was written while the disk still had a
	// published image's GUID (the installer's `seed init`, before Tails'
	// first boot randomizes the GUIDs and grows the partition). Its GUIDs
	// are therefore everyone's; only the serial and size are checked, and
	// only once the disk GUID is no longer a published one (Bound).
	FirstBoot bool
}

// serialDomain separates serial digests from every other use of SHA-256.
const serialDomain = "entropy-gate disk serial v1\x00"

// SerialDigest is what a record keeps of a disk's serial number: a digest,
// so that the record has a fixed size whatever the serial's length; zero
// for a disk without one.
func SerialDigest(serial string) [sha256.Size]byte {
	serial = strings.TrimSpace(serial)
	if serial == "" {
		return [sha256.Size]byte{}
	}
	return sha256.Sum256([]byte(serialDomain + serial))
}

func (b Binding) encode(out []byte) {
	copy(out[offDiskGUID:], b.DiskGUID[:])
	copy(out[offPartitionGUID:], b.PartitionGUID[:])
	binary.LittleEndian.PutUint64(out[offDiskSize:], b.DiskSize)
	copy(out[offSerial:], b.Serial[:])
	binary.LittleEndian.PutUint64(out[offFileSystem:], b.FileSystem)
	binary.LittleEndian.PutUint64(out[offInode:], b.Inode)
}

func decodeBinding(in []byte, firstBoot bool) Binding {
	b := Binding{
		DiskSize:   binary.LittleEndian.Uint64(in[offDiskSize:]),
		FileSystem: binary.LittleEndian.Uint64(in[offFileSystem:]),
		Inode:      binary.LittleEndian.Uint64(in[offInode:]),
		FirstBoot:  firstBoot,
	}
	copy(b.DiskGUID[:], in[offDiskGUID:])
	copy(b.PartitionGUID[:], in[offPartitionGUID:])
	copy(b.Serial[:], in[offSerial:])
	return b
}

// String names the binding without the serial (a digest says nothing to a
// reader, and the serial itself is not ours to print).
func (b Binding) String() string {
	var parts []string
	if b.DiskGUID != (GUID{}) {
		parts = append(parts, "disk "+b.DiskGUID.String())
	}
	if b.PartitionGUID != (GUID{}) {
		parts = append(parts, "partition "+b.PartitionGUID.String())
	}
	if b.Inode != 0 {
		parts = append(parts, fmt.Sprintf("inode %d", b.Inode))
	}
	if b.Serial != ([sha256.Size]byte{}) {
		parts = append(parts, "with serial")
	}
	if b.FirstBoot {
		parts = append(parts, "first boot")
	}
	if len(parts) == 0 {
		return "bound to nothing"
	}
	return "bound to " + strings.Join(parts, ", ")
}

// MarshalText makes a Binding read as its String in JSON.
func (b Binding) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// GoString is the %#v form.
func (b Binding) GoString() string { return "seeders.Binding{" + b.String() + "}" }

// published reports whether g is a published image's disk GUID: Tails'
// always, and those configured.
func published(g GUID, configured []GUID) bool {
	return g == TailsImageDiskGUID || slices.Contains(configured, g)
}

// bind returns the binding a record written on the medium here gets: here
// itself, marked FirstBoot while the disk has a published GUID.
func bind(here Binding, images []GUID) Binding {
	here.FirstBoot = published(here.DiskGUID, images)
	return here
}

// whyNotBound says why r, found on the medium here, must not be credited
// there, or "" if it was written for it. images are the configured
// published disk GUIDs (Tails' is always one).
//
// A first-boot record (written while the disk had a published GUID) is
// credited once the disk has a GUID of its own, if the serial and size it
// names are this disk's: that is an installer-made stick at its first
// boot, repartitioned by Tails before we run. A copy made before that boot
// onto a device with another serial or size is caught; one onto a device
// without a serial and of the same size, or with a cloned serial, cannot
// be told apart (docs/threat-model.md).
func whyNotBound(r Record, here Binding, images []GUID) string {
	if r.Version == recordVersion1 {
		return "version 1 record, not bound to its medium"
	}
	if published(here.DiskGUID, images) {
		return fmt.Sprintf("disk GUID %s is a published image's: every copy of the image holds this seed", here.DiskGUID)
	}
	want := r.Binding
	if !want.FirstBoot {
		switch {
		case want.DiskGUID != here.DiskGUID:
			return fmt.Sprintf("written for disk %s, this is disk %s", want.DiskGUID, here.DiskGUID)
		case want.PartitionGUID != here.PartitionGUID:
			return fmt.Sprintf("written for partition %s, this is partition %s", want.PartitionGUID, here.PartitionGUID)
		case want.FileSystem != here.FileSystem || want.Inode != here.Inode:
			return "written for another file (a copy)"
		}
	}
	switch {
	case want.Serial != here.Serial:
		return "written for a device with another serial number"
	case want.DiskSize != here.DiskSize:
		return fmt.Sprintf("written for a disk of %d bytes, this one has %d", want.DiskSize, here.DiskSize)
	}
	return ""
}

// DiskSerial returns the serial number the kernel shows for the block
// device MAJ:MIN, or "" if it shows none. It walks up the device's sysfs
// path from the disk: a virtio disk (and an MMC card, an NVMe controller)
// has a serial attribute on the way; a USB disk's is on the USB device,
// the first directory with an idVendor. The walk stops there, so a stick
// without a serial never gets its hub's (a root hub's serial is its
// controller's PCI address).
func (r SystemMounts) DiskSerial(major, minor uint32) (string, error) {
	dir, err := r.blockDir(Medium{Major: major, Minor: minor})
	if err != nil {
		return "", err
	}
	top := r.Roots.SysPath("devices")
	for strings.HasPrefix(dir, top+string(filepath.Separator)) {
		serial, err := os.ReadFile(filepath.Join(dir, "serial"))
		switch {
		case err == nil:
			return strings.TrimSpace(string(serial)), nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("read serial of %d:%d: %w", major, minor, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "idVendor")); err == nil {
			return "", nil
		}
		dir = filepath.Dir(dir)
	}
	return "", nil
}

// MediumBinding identifies the block device a file system is mounted
// from, for records in a file on it (the FAT system partition): the serial
// of its disk, the disk's size, and on a GPT disk the disk GUID and the
// unique GUID of the partition (the entry that starts where the kernel
// says the partition starts). A medium that is a whole disk, or on a disk
// without a valid GPT, is bound by size and serial only. The FAT volume
// serial is not used: Tails' first boot changes it.
func (r SystemMounts) MediumBinding(m Medium) (Binding, error) {
	dir, err := r.blockDir(m)
	if err != nil {
		return Binding{}, err
	}
	serial, err := r.DiskSerial(m.Major, m.Minor)
	if err != nil {
		return Binding{}, err
	}
	b := Binding{Serial: SerialDigest(serial)}
	diskDir := dir
	if isPartition(dir) {
		diskDir = filepath.Dir(dir)
	}
	sectors, err := readSysUint(filepath.Join(diskDir, "size"))
	if err != nil {
		return Binding{}, err
	}
	b.DiskSize = sectors * 512 // sysfs counts 512-byte units
	if diskDir == dir {
		return b, nil
	}
	start, err := readSysUint(filepath.Join(dir, "start"))
	if err != nil {
		return Binding{}, err
	}
	name, err := devName(diskDir)
	if err != nil {
		return Binding{}, err
	}
	d, err := openDevice(r.Roots.DevPath(name), 0, false)
	if err != nil {
		return Binding{}, fmt.Errorf("identify the disk of %s: %w", m.MountPoint, err)
	}
	defer d.f.Close()
	ss := int64(d.sectorSize)
	g, err := readGPT(d, ss, d.size/ss, 1)
	if errors.Is(err, ErrUnsafe) {
		return b, nil // no GPT to name the partition by
	}
	if err != nil {
		return Binding{}, fmt.Errorf("identify the disk of %s: %w", m.MountPoint, err)
	}
	b.DiskGUID = g.diskGUID
	for _, p := range g.starts {
		if p.first*ss == int64(start)*512 {
			b.PartitionGUID = p.unique
		}
	}
	return b, nil
}

// readSysUint reads a sysfs attribute holding a decimal number.
func readSysUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}
