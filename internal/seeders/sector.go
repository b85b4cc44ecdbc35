package seeders

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

var (
	// ErrReadOnly: the medium cannot be written, so no replacement seed can
	// be stored and nothing from it may be credited.
	ErrReadOnly = errors.New("read-only medium")
	// ErrVerify: what was read back after a write differs from what was
	// written.
	ErrVerify = errors.New("read-back differs from the data written")
)

// SectorBackend keeps the seed in one raw sector of a block device or disk
// image. Every Load and Store opens the disk afresh and checks layout and
// content (DESIGN rule 5) on what it reads in that open, before any write.
type SectorBackend struct {
	// Path is the whole-disk block device (or a disk image file).
	Path string
	// LBA is the seed sector, DefaultLBA if zero.
	LBA int64
	// FileSectorSize is the logical sector size assumed for an image file,
	// 512 if zero. A block device reports its own (BLKSSZGET).
	FileSectorSize int
	// Foreign is ForeignMix where the configuration says LegacySector=mix:
	// a sector of unknown content (the Tails 6.4 random sector) is then
	// mixed once and replaced.
	Foreign ForeignPolicy
	// ImageDiskGUIDs are the disk GUIDs of published images: a disk that
	// still has one is a fresh copy of the image, and a seed on it is
	// everyone's (DESIGN rule 3).
	ImageDiskGUIDs []GUID
}

func (s SectorBackend) lba() int64 {
	if s.LBA == 0 {
		return DefaultLBA
	}
	return s.LBA
}

// Name identifies the backend in results and logs.
func (s SectorBackend) Name() string {
	return fmt.Sprintf("sector:%s@%d", s.Path, s.lba())
}

// Load reads and classifies the seed sector. It opens the disk read-only:
// udev re-probes a disk whenever a writer closes it.
func (s SectorBackend) Load() (Loaded, error) {
	d, err := openDevice(s.Path, s.FileSectorSize, false)
	if err != nil {
		return Loaded{}, err
	}
	defer d.f.Close()
	layout, loaded, err := inspectSector(d, d.size, d.sectorSize, s.lba(), s.Foreign)
	if err != nil {
		return Loaded{}, fmt.Errorf("check %s: %w", s.Path, err)
	}
	loaded.ReadOnly = d.readOnly
	if slices.Contains(s.ImageDiskGUIDs, layout.DiskGUID) {
		loaded.NoCredit = fmt.Sprintf("disk GUID %s is a published image's", layout.DiskGUID)
	}
	return loaded, nil
}

// Store writes r over the seed sector, zero-padded, after checking layout and
// content again on a fresh read in the same open; then flushes it to the
// medium and reads it back.
func (s SectorBackend) Store(r Record) (err error) {
	enc, err := r.Encode()
	if err != nil {
		return err
	}
	d, err := openDevice(s.Path, s.FileSectorSize, true)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := d.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", s.Path, cerr)
		}
	}()
	if d.readOnly {
		return fmt.Errorf("%s: %w", s.Path, ErrReadOnly)
	}
	if _, _, err := inspectSector(d, d.size, d.sectorSize, s.lba(), s.Foreign); err != nil {
		return fmt.Errorf("check %s: %w", s.Path, err)
	}
	sector := make([]byte, d.sectorSize)
	copy(sector, enc)
	if err := d.writeSector(s.lba(), sector); err != nil {
		return fmt.Errorf("%s: %w", s.Path, err)
	}
	return nil
}

// device is a block device or disk image, opened for one load or store. All
// I/O goes through sector-aligned buffers so that it works with O_DIRECT,
// which makes reads come from the medium rather than the page cache and
// writes go to it.
type device struct {
	f          *os.File
	sectorSize int
	size       int64
	readOnly   bool
}

// openDevice opens path for reading, or for writing too. A medium that
// cannot be written is marked readOnly: when opened for reading, by
// BLKROGET or by what access(2) says about writing; when opened for writing,
// by BLKROGET or the open failing.
func openDevice(path string, fileSectorSize int, write bool) (*device, error) {
	d := &device{}
	mode := os.O_RDONLY
	if write {
		mode = os.O_RDWR
	}
	f, err := openDirect(path, mode)
	if write && writeDenied(err) {
		return nil, fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	if err != nil {
		return nil, err
	}
	d.f = f
	if !write && writeDenied(unix.Access(path, unix.W_OK)) {
		d.readOnly = true
	}
	if err := d.probe(fileSectorSize); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

func writeDenied(err error) bool {
	return errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}

// openDirect opens with O_DIRECT, or, where the file system has none
// (EINVAL: ramfs, tmpfs before 6.6), with O_SYNC: writes then reach the
// medium through the page cache. Block devices always take O_DIRECT, and
// all I/O is in whole logical sectors from aligned buffers, as it requires.
func openDirect(path string, mode int) (*os.File, error) {
	f, err := os.OpenFile(path, mode|unix.O_DIRECT, 0)
	if errors.Is(err, unix.EINVAL) {
		return os.OpenFile(path, mode|unix.O_SYNC, 0)
	}
	return f, err
}

func (d *device) probe(fileSectorSize int) error {
	st, err := d.f.Stat()
	if err != nil {
		return err
	}
	switch mode := st.Mode(); {
	case mode.IsRegular():
		d.size = st.Size()
		d.sectorSize = fileSectorSize
		if d.sectorSize == 0 {
			d.sectorSize = 512
		}
	case mode&os.ModeDevice != 0 && mode&os.ModeCharDevice == 0:
		fd := int(d.f.Fd())
		if d.sectorSize, err = unix.IoctlGetInt(fd, unix.BLKSSZGET); err != nil {
			return fmt.Errorf("BLKSSZGET: %w", err)
		}
		ro, err := unix.IoctlGetInt(fd, unix.BLKROGET)
		if err != nil {
			return fmt.Errorf("BLKROGET: %w", err)
		}
		d.readOnly = d.readOnly || ro != 0
		if d.size, err = d.f.Seek(0, io.SeekEnd); err != nil {
			return fmt.Errorf("size: %w", err)
		}
	default:
		return fmt.Errorf("not a block device or regular file (%v)", mode.Type())
	}
	if d.sectorSize != 512 && d.sectorSize != 4096 {
		return fmt.Errorf("%w: %d bytes", ErrSectorSize, d.sectorSize)
	}
	return nil
}

// ReadAt reads any byte range through whole aligned sectors, as O_DIRECT
// requires.
func (d *device) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	if off >= d.size {
		return 0, io.EOF
	}
	ss := int64(d.sectorSize)
	start := off / ss * ss
	end := (off + int64(len(p)) + ss - 1) / ss * ss
	buf := alignedBuf(int(end - start))
	n, err := d.f.ReadAt(buf, start)
	if err != nil && err != io.EOF {
		return 0, err
	}
	got := 0
	if skip := int(off - start); n > skip {
		got = copy(p, buf[skip:n])
	}
	if got < len(p) {
		return got, io.EOF
	}
	return got, nil
}

// writeSector writes one whole sector, flushes it to the medium and reads
// it back. Only SectorBackend.Store calls it, after the safety checks.
func (d *device) writeSector(lba int64, data []byte) error {
	if len(data) != d.sectorSize {
		return fmt.Errorf("write LBA %d: %d bytes for a %d-byte sector", lba, len(data), d.sectorSize)
	}
	off := lba * int64(d.sectorSize)
	buf := alignedBuf(d.sectorSize)
	copy(buf, data)
	if _, err := d.f.WriteAt(buf, off); err != nil {
		return fmt.Errorf("write LBA %d: %w", lba, err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("flush LBA %d: %w", lba, err)
	}
	back := alignedBuf(d.sectorSize)
	if _, err := d.f.ReadAt(back, off); err != nil {
		return fmt.Errorf("read back LBA %d: %w", lba, err)
	}
	if !bytes.Equal(back, buf) {
		return fmt.Errorf("LBA %d: %w", lba, ErrVerify)
	}
	return nil
}

// ioAlign covers the memory alignment O_DIRECT needs on every device: the
// logical block size, at most 4096.
const ioAlign = 4096

func alignedBuf(n int) []byte {
	b := make([]byte, n+ioAlign)
	skip := int(-uintptr(unsafe.Pointer(&b[0])) & (ioAlign - 1))
	return b[skip : skip+n : skip+n]
}
