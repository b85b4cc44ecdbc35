// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileRewrite changes the content of one file on the boot medium without
// changing its size: old is what it holds, new what it must hold. held,
// if set, is the file as Load opened it: path must still name it.
type fileRewrite struct {
	path     string
	held     *os.File
	old, new []byte
}

// errNotThroughDevice: a rewrite could not go straight to the medium's
// block device, and nothing was written. The caller writes through the
// file system instead, which needs a read-write mount.
var errNotThroughDevice = errors.New("cannot write through the block device")

// The FIBMAP and FIGETBSZ ioctls (linux/fs.h, _IO(0x00, 1) and
// _IO(0x00, 2)): where a file's block is on its device, and the block
// size that is counted in. vfat has no FIEMAP; FIBMAP needs
// CAP_SYS_RAWIO.
const (
	ioctlFIBMAP   = 1
	ioctlFIGETBSZ = 2
)

// blockWrite is one file system block to write on the device.
type blockWrite struct {
	off  int64
	data []byte
}

// rewriteThroughDevice makes the rewrites on the medium mounted read-only
// at dir by writing the files' blocks straight to its block device: no
// remount, so the FAT's boot sector, dirty bit, tables and directory
// entries are never written, and a power cut at any moment can tear at
// most the file blocks being written (whose records then fail their
// checksum). A block is written only if the file system maps it to the
// file (FIBMAP, on a mount that cannot move it) and the device holds
// exactly the file's bytes there: nothing that is not provably the file's
// is touched. Every block of every file is checked before the first is
// written; the device is flushed, read back, and the files' cached pages
// dropped so that the file system reads the new content.
//
// errNotThroughDevice, before any write, means this medium cannot be
// written that way: its file system read-write through any mount (it may
// move the blocks or write them back), no block device, no CAP_SYS_RAWIO, or a kernel that refuses
// writes to a mounted device.
func rewriteThroughDevice(m Mounts, dir string, rewrites []fileRewrite) error {
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
	if !med.FileSystemReadOnly || med.Major == 0 {
		return errNotThroughDevice
	}
	node, err := m.Device(med)
	if err != nil {
		return fmt.Errorf("%w: %w", errNotThroughDevice, err)
	}
	dev, err := openMediumDevice(node, med)
	if err != nil {
		return err
	}
	defer dev.Close()

	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var writes []blockWrite
	for _, rw := range rewrites {
		f, blocks, err := planRewrite(dev, rw)
		if err != nil {
			return err
		}
		files = append(files, f)
		writes = append(writes, blocks...)
	}
	for _, w := range writes {
		if _, err := dev.WriteAt(w.data, w.off); err != nil {
			return fmt.Errorf("write %s at byte %d: %w", node, w.off, err)
		}
	}
	if err := dev.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", node, err)
	}
	for _, w := range writes {
		back := alignedBuf(len(w.data))
		if _, err := dev.ReadAt(back, w.off); err != nil {
			return fmt.Errorf("read back %s at byte %d: %w", node, w.off, err)
		}
		if !bytes.Equal(back, w.data) {
			return fmt.Errorf("%s at byte %d: %w", node, w.off, ErrVerify)
		}
	}
	for i, f := range files {
		if err := dropCachedPages(f, rewrites[i].new); err != nil {
			return fmt.Errorf("%s: %w", rewrites[i].path, err)
		}
	}
	return nil
}

// openMediumDevice opens the medium's block device for direct I/O, after
// checking that node is that device.
func openMediumDevice(node string, med Medium) (*os.File, error) {
	dev, err := os.OpenFile(node, os.O_RDWR|unix.O_DIRECT|syscall.O_NONBLOCK, 0)
	if err != nil {
		// EBUSY, EPERM: a kernel that forbids writing a mounted
		// device (BLK_DEV_WRITE_MOUNTED); EROFS, EACCES: a read-only
		// device, which a remount will find too.
		return nil, fmt.Errorf("%w: open %s: %w", errNotThroughDevice, node, err)
	}
	st, err := fstat(dev)
	if err == nil && (st.Mode&unix.S_IFMT != unix.S_IFBLK || unix.Major(st.Rdev) != med.Major || unix.Minor(st.Rdev) != med.Minor) {
		err = fmt.Errorf("%s is not the medium's device %d:%d", node, med.Major, med.Minor)
	}
	if err == nil {
		// A device flagged read-only (BLKROSET) opens for writing, but
		// refuses the writes.
		var ro int
		if ro, err = unix.IoctlGetInt(int(dev.Fd()), unix.BLKROGET); err == nil && ro != 0 {
			err = fmt.Errorf("%s is read-only", node)
		}
	}
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("%w: %w", errNotThroughDevice, err)
	}
	return dev, nil
}

// planRewrite opens the file and returns the device blocks that make it
// hold rw.new: only the blocks that change, each checked to be the file's.
func planRewrite(dev *os.File, rw fileRewrite) (*os.File, []blockWrite, error) {
	if len(rw.new) != len(rw.old) {
		return nil, nil, fmt.Errorf("rewrite %s: %d bytes for %d: %w", rw.path, len(rw.new), len(rw.old), errNotThroughDevice)
	}
	f, err := os.OpenFile(rw.path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("rewrite %s: %w", rw.path, err)
	}
	blocks, err := fileBlocks(dev, f, rw)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("rewrite %s: %w", rw.path, err)
	}
	return f, blocks, nil
}

func fileBlocks(dev, f *os.File, rw fileRewrite) ([]blockWrite, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() != int64(len(rw.old)) {
		return nil, fmt.Errorf("%w: not the %d-byte regular file read", ErrChanged, len(rw.old))
	}
	if rw.held != nil {
		if err := sameFile(f, rw.held); err != nil {
			return nil, err
		}
	}
	now := make([]byte, len(rw.old))
	if _, err := f.ReadAt(now, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if !bytes.Equal(now, rw.old) {
		return nil, fmt.Errorf("%w since it was read", ErrChanged)
	}
	bsz, err := unix.IoctlGetInt(int(f.Fd()), ioctlFIGETBSZ)
	if err != nil {
		return nil, fmt.Errorf("%w: block size: %w", errNotThroughDevice, err)
	}
	if bsz <= 0 || bsz%512 != 0 || bsz > 1<<16 {
		return nil, fmt.Errorf("%w: block size %d", errNotThroughDevice, bsz)
	}
	var writes []blockWrite
	for lo := 0; lo < len(rw.old); lo += bsz {
		hi := min(lo+bsz, len(rw.old))
		if bytes.Equal(rw.old[lo:hi], rw.new[lo:hi]) {
			continue
		}
		phys, err := fibmap(f, lo/bsz)
		if err != nil {
			return nil, fmt.Errorf("%w: map block %d: %w", errNotThroughDevice, lo/bsz, err)
		}
		off := int64(phys) * int64(bsz)
		block := alignedBuf(bsz)
		if _, err := dev.ReadAt(block, off); err != nil {
			return nil, fmt.Errorf("read the device at byte %d: %w", off, err)
		}
		if !bytes.Equal(block[:hi-lo], rw.old[lo:hi]) {
			return nil, fmt.Errorf("not writing: the device at byte %d does not hold the file's block %d", off, lo/bsz)
		}
		copy(block, rw.new[lo:hi])
		writes = append(writes, blockWrite{off: off, data: block})
	}
	return writes, nil
}

// sameFile fails with ErrChanged unless f and held are one file.
func sameFile(f, held *os.File) error {
	now, err := fstat(f)
	if err != nil {
		return err
	}
	was, err := fstat(held)
	if err != nil {
		return err
	}
	if now.Dev != was.Dev || now.Ino != was.Ino {
		return fmt.Errorf("%w: the file was moved or replaced", ErrChanged)
	}
	return nil
}

// fibmap returns the device block of the file's block n, in FIGETBSZ
// units. Block 0 on the device is the boot sector, never a file's: a hole.
func fibmap(f *os.File, n int) (int, error) {
	blk := int32(n)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), ioctlFIBMAP, uintptr(unsafe.Pointer(&blk))); errno != 0 {
		return 0, errno
	}
	if blk <= 0 {
		return 0, errors.New("no block on the device")
	}
	return int(blk), nil
}

// dropCachedPages makes the file system forget the file's cached pages,
// which still hold the old content, and checks that it now reads want.
func dropCachedPages(f *os.File, want []byte) error {
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("drop cached pages: %w", err)
	}
	got := make([]byte, len(want))
	if _, err := f.ReadAt(got, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read back: %w", err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("the file system still reads the old content: %w", ErrVerify)
	}
	return nil
}
