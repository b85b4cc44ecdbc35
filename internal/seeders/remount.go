// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// Mounts is what the backends on the boot medium need from the mount
// table: SystemMounts on a running system, a fake in unit tests.
type Mounts interface {
	// Medium describes the mount at dir.
	Medium(dir string) (Medium, error)
	// Remount makes the mount at dir read-only or read-write, keeping its
	// other flags.
	Remount(dir string, readOnly bool) error
	// Device is the device node of the medium's block device.
	Device(med Medium) (string, error)
}

// SystemMounts reads the running system's mount table and block devices
// (under Roots, for tests) to find the boot medium and its disk, and
// remounts with mount(2), which needs CAP_SYS_ADMIN.
type SystemMounts struct {
	Roots pool.Roots
}

func mountsOrSystem(m Mounts) Mounts {
	if m == nil {
		return SystemMounts{}
	}
	return m
}

// Medium implements Mounts.
func (s SystemMounts) Medium(dir string) (Medium, error) { return s.FindMedium(dir) }

// Device implements Mounts: the node under /dev that sysfs names for the
// medium's device numbers.
func (s SystemMounts) Device(med Medium) (string, error) {
	dir, err := s.blockDir(med)
	if err != nil {
		return "", err
	}
	name, err := devName(dir)
	if err != nil {
		return "", err
	}
	return s.Roots.DevPath(name), nil
}

// keptMountFlags are the mount flags statfs(2) reports as ST_*, with the
// MS_* flag that sets each. A remount clears every per-mount flag it is not
// given (nosuid, nodev, noexec), so they are passed again. Atime flags
// would be kept anyway, but passing them does no harm.
var keptMountFlags = []struct {
	st int64
	ms uintptr
}{
	{unix.ST_NOSUID, unix.MS_NOSUID},
	{unix.ST_NODEV, unix.MS_NODEV},
	{unix.ST_NOEXEC, unix.MS_NOEXEC},
	{unix.ST_SYNCHRONOUS, unix.MS_SYNCHRONOUS},
	{unix.ST_NOATIME, unix.MS_NOATIME},
	{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
	{unix.ST_RELATIME, unix.MS_RELATIME},
}

// Remount implements Mounts. The file system's own options (vfat's uid,
// fmask …) are not passed: a remount only switches between read-only and
// read-write and leaves them as mounted.
func (SystemMounts) Remount(dir string, readOnly bool) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	flags := uintptr(unix.MS_REMOUNT)
	for _, f := range keptMountFlags {
		if int64(st.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("", dir, "", flags, ""); err != nil {
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	return nil
}

// ErrMediumBusy: another process is writing to the boot medium.
var ErrMediumBusy = errors.New("boot medium busy: another process is writing to it")

// withWritable runs write while the mount at dir is writable, and makes it
// read-only again afterwards if it was before, whatever write did.
//
// A medium known to be unwritable fails with ErrReadOnly without a remount.
// A refused remount (EROFS, EACCES: a read-only device or file system;
// EPERM: no privilege) fails with ErrReadOnly too, after one attempt: there
// is nothing a retry could change. A mount found read-write is written
// as it is and left so, as whoever mounted it wants it.
//
// Writers on one medium exclude each other with a lock on its mount point,
// and a second one fails at once rather than wait on a device that may be
// gone: without the lock, one writer could switch the mount back to
// read-only under the other's write, or fail to because the other still
// has a file open for writing, and leave it read-write.
func withWritable(m Mounts, dir string, write func() error) (err error) {
	unlock, err := lockMountPoint(dir)
	if err != nil {
		return err
	}
	defer unlock()

	med, err := m.Medium(dir)
	if err != nil {
		return err
	}
	if med.Unwritable != "" {
		return fmt.Errorf("%s: %w: %s", dir, ErrReadOnly, med.Unwritable)
	}
	if !med.MountedReadOnly {
		return write()
	}
	// Deferred before the attempt: should a failed remount have left
	// anything writable, it is put back too.
	defer func() {
		if rerr := m.Remount(dir, true); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remount %s read-only: %w", dir, rerr))
		}
	}()
	if err := m.Remount(dir, false); err != nil {
		if writeDenied(err) {
			return fmt.Errorf("remount %s read-write: %w: %w", dir, ErrReadOnly, err)
		}
		return fmt.Errorf("remount %s read-write: %w", dir, err)
	}
	return write()
}

// lockMountPoint takes an exclusive flock on the mount point directory,
// without waiting. The lock is the kernel's, so it goes with the process.
func lockMountPoint(dir string) (unlock func(), err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		d.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrMediumBusy)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { d.Close() }, nil
}

// ErrRemountSpent: the boot already made the boot medium writable once.
var ErrRemountSpent = errors.New("the boot medium was already made writable once this boot")

// RemountBudget allows one read-write remount cycle of the boot medium
// per boot: every remount rewrites the FAT's boot sector and leaves its
// dirty bit set until the read-only remount, a moment in which pulling
// the stick leaves work for fsck. Files are normally rewritten through
// the block device with no remount at all (rewriteThroughDevice); a boot
// remounts only to create a seed file, or where the kernel refuses that.
//
// Marker is a file in a per-boot directory (/run/entropy-gate), created
// before the first read-write remount: its existence spends the budget,
// for every process of the boot. Remounting read-only is always allowed.
type RemountBudget struct {
	// Mounts does the remounts; nil means SystemMounts{}.
	Mounts Mounts
	Marker string
}

var _ Mounts = RemountBudget{}

func (b RemountBudget) mounts() Mounts { return mountsOrSystem(b.Mounts) }

// Medium implements Mounts.
func (b RemountBudget) Medium(dir string) (Medium, error) { return b.mounts().Medium(dir) }

// Device implements Mounts.
func (b RemountBudget) Device(med Medium) (string, error) { return b.mounts().Device(med) }

// Remount implements Mounts: a read-write remount fails with
// ErrRemountSpent once the boot has made one.
func (b RemountBudget) Remount(dir string, readOnly bool) error {
	if !readOnly {
		if err := os.MkdirAll(filepath.Dir(b.Marker), 0o755); err != nil {
			return fmt.Errorf("remount budget: %w", err)
		}
		f, err := os.OpenFile(b.Marker, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", dir, ErrRemountSpent)
		}
		if err != nil {
			return fmt.Errorf("remount budget: %w", err)
		}
		f.Close()
	}
	return b.mounts().Remount(dir, readOnly)
}
