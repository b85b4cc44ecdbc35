// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
)

// DefaultFATSeedFile is the seed file's path on the boot medium's system
// partition, relative to its mount point.
const DefaultFATSeedFile = "live/entropy-gate.seed"

// FATBackend keeps the seed in a file on the boot medium's FAT system
// partition, where the installer can write the first one. Tails mounts
// that partition read-only. Store overwrites the file's own sectors
// through the block device without remounting; only where that cannot be
// done (no file yet) does it make the mount writable, for FileBackend's
// atomic replacement, and read-only again on every path out.
//
// Crediting follows FileBackend's rule: only a file that no other user can
// read. FAT stores no owner or mode, but the kernel gives every file on a
// vfat mount the owner and mode of the mount options (uid=, gid=, fmask=
// or umask=) and enforces them; stat shows exactly those. Mounted
// root-only (fmask=0077 or umask=0077), the file is as private as the raw
// sector of the same stick, which only root (and the disk group) can read,
// and may be credited (DESIGN rules 3 and 6). Mounted with the default
// umask (0022) every user can read it, so it is mixed and refreshed but
// never credited.
//
// Records are bound to the partition (SystemMounts.MediumBinding): disk GUID,
// partition GUID, disk size and serial, so a file-level copy of the
// system partition onto another stick is mixed, never credited. Tails'
// first boot changes the GUIDs and the FAT serial: a record the installer
// wrote before it is a first-boot record (Binding.FirstBoot).
type FATBackend struct {
	// Medium is the partition's mount point, DefaultBootMedium if empty.
	Medium string
	// Path is the seed file relative to Medium, DefaultFATSeedFile if
	// empty.
	Path string
	// Mounts reads and switches the mount; nil means SystemMounts{}.
	Mounts Mounts
	// Roots is where the partition's disk is identified (sysfs, /dev).
	Roots SystemMounts
	// ImageDiskGUIDs are published images' disk GUIDs besides Tails', as
	// for SectorBackend.
	ImageDiskGUIDs []GUID
}

func (f FATBackend) medium() string { return orDefault(f.Medium, DefaultBootMedium) }

func (f FATBackend) mounts() Mounts { return mountsOrSystem(f.Mounts) }

// file is the seed file on the medium med, bound to med's block device;
// a medium without one (tmpfs) binds it to its inode like any file.
func (f FATBackend) file(med Medium) (FileBackend, error) {
	path, err := onMedium(f.medium(), orDefault(f.Path, DefaultFATSeedFile))
	if err != nil {
		return FileBackend{}, err
	}
	file := FileBackend{Path: path, images: f.ImageDiskGUIDs}
	if med.Major != 0 {
		file.onMedium = func() (Binding, error) { return f.Roots.MediumBinding(med) }
	}
	return file, nil
}

// Name identifies the backend in results and logs.
func (f FATBackend) Name() string {
	return "fat:" + filepath.Join(f.medium(), orDefault(f.Path, DefaultFATSeedFile))
}

// Load reads the seed file without remounting anything. The medium is
// read-only (mix only) when it can never be written: an ISO 9660 or UDF
// file system, a read-only device. That it is mounted read-only is normal.
func (f FATBackend) Load() (Loaded, error) {
	med, err := f.mounts().Medium(f.medium())
	if err != nil {
		return Loaded{}, err
	}
	file, err := f.file(med)
	if err != nil {
		return Loaded{}, err
	}
	loaded, err := file.Load()
	if err != nil {
		return Loaded{}, err
	}
	// FileBackend judged writability by the directory, which a read-only
	// mount makes unwritable until Store remounts it.
	loaded.ReadOnly = med.Unwritable != ""
	return loaded, nil
}

// Store writes r over the seed file Load read, straight through the
// block device of the read-only mount, when the file has a record's size
// (see rewriteThroughDevice: no remount, no FAT metadata written).
// Otherwise (no file yet, foreign content of another size, a read-write
// mount, or a kernel that refuses) it replaces the file while the
// partition is remounted read-write.
func (f FATBackend) Store(r Record) error {
	med, err := f.mounts().Medium(f.medium())
	if err != nil {
		return err
	}
	file, err := f.file(med)
	if err != nil {
		return err
	}
	if err := f.overwrite(file, r); !errors.Is(err, errNotThroughDevice) {
		return err
	}
	return withWritable(f.mounts(), f.medium(), func() error { return file.Store(r) })
}

// overwrite writes r over the seed file that Load read and holds open,
// through the block device, or fails with errNotThroughDevice having
// written nothing.
func (f FATBackend) overwrite(file FileBackend, r Record) error {
	origin, err := originOf[*fileOrigin](r, file.Path)
	if err != nil {
		return err
	}
	if err := origin.stillHeld(); err != nil {
		return err
	}
	if origin == nil || origin.held == nil {
		return errNotThroughDevice // no file to overwrite: one is created
	}
	st, err := origin.held.Stat()
	if err != nil {
		return fmt.Errorf("seed file: %w", err)
	}
	old := make([]byte, st.Size())
	if _, err := origin.held.ReadAt(old, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read seed file: %w", err)
	}
	here, err := file.binding(origin.held)
	if err != nil {
		return err
	}
	next, err := file.encodeBound(r, origin, here)
	if err != nil {
		return err
	}
	if len(next) != len(old) {
		return errNotThroughDevice
	}
	err = rewriteThroughDevice(f.mounts(), f.medium(), []fileRewrite{{path: file.Path, held: origin.held, old: old, new: next}})
	if err == nil {
		origin.release()
	}
	return err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// onMedium joins a path that must stay inside the medium's mount point.
func onMedium(medium, rel string) (string, error) {
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%q is not a path inside %s", rel, medium)
	}
	return filepath.Join(medium, rel), nil
}
