// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
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

// ErrChanged: the seed location is not what Load saw (another disk
// behind the path, other content in the sector, a seed file moved or
// replaced), so nothing is written and nothing credited.
var ErrChanged = errors.New("seed location changed since it was loaded")

// SectorBackend keeps the seed in one raw sector of a block device or disk
// image. Every Load and Store opens the disk afresh and checks layout and
// content (DESIGN rule 5) on what it reads in that open, before any write.
// Records are bound to the disk (Binding): its GUID, size and serial.
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
	// ImageDiskGUIDs are the disk GUIDs of published images besides Tails'
	// (TailsImageDiskGUID): a disk that still has one is a fresh copy of the
	// image, and a seed on it is everyone's (DESIGN rule 3).
	ImageDiskGUIDs []GUID
	// Roots is where the disk's serial number is read (sysfs).
	Roots SystemMounts
}

// sectorOrigin is what Load saw, for Store to compare: the same device
// (st_rdev, or st_dev and st_ino of an image file), the same medium, and
// the same sector bytes, or the record Store wrote itself since.
type sectorOrigin struct {
	path    string
	device  [2]uint64
	medium  Binding
	sector  secret
	written secret
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

// Load reads and classifies the seed sector, and says whether a record
// there was written for this disk. It opens the disk read-only: udev
// re-probes a disk whenever a writer closes it.
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
	origin, err := s.observe(d, layout)
	if err != nil {
		return Loaded{}, err
	}
	loaded.ReadOnly = d.readOnly
	loaded.origin = origin
	if loaded.Content == ContentRecord {
		loaded.NoCredit = whyNotBound(loaded.Record, origin.medium, s.ImageDiskGUIDs)
	}
	return loaded, nil
}

// observe identifies the device and medium d is, and reads the seed sector
// as it is now.
func (s SectorBackend) observe(d *device, layout Layout) (*sectorOrigin, error) {
	o := &sectorOrigin{path: s.Path, medium: Binding{DiskGUID: layout.DiskGUID, DiskSize: uint64(d.size)}}
	st, err := fstat(d.f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Path, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		o.device = [2]uint64{st.Rdev, 0}
		serial, err := s.Roots.DiskSerial(unix.Major(st.Rdev), unix.Minor(st.Rdev))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Path, err)
		}
		o.medium.Serial = SerialDigest(serial)
	} else {
		o.device = [2]uint64{st.Dev, st.Ino}
	}
	b, err := readAt(d, s.lba()*int64(d.sectorSize), d.sectorSize)
	if err != nil {
		return nil, fmt.Errorf("%s: read LBA %d: %w", s.Path, s.lba(), err)
	}
	o.sector = newSecret(b)
	return o, nil
}

func fstat(f *os.File) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	return &st, nil
}

// Store writes r, bound to this disk, over the seed sector, zero-padded;
// then flushes it to the medium and reads it back. Before writing, in the
// same open and under an exclusive flock on the disk (systemd's convention
// for whoever writes a block device, which keeps udev's probes and other
// partitioners out), it checks layout and content again on a fresh read,
// and that the device, its GPT disk GUID, size and serial and the sector's
// bytes are still what the Load that r derives from saw (ErrChanged
// otherwise): the path may name another disk by now.
func (s SectorBackend) Store(r Record) (err error) {
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
	if err := lockDisk(d.f); err != nil {
		return fmt.Errorf("%s: %w", s.Path, err)
	}
	layout, _, err := inspectSector(d, d.size, d.sectorSize, s.lba(), s.Foreign)
	if err != nil {
		return fmt.Errorf("check %s: %w", s.Path, err)
	}
	now, err := s.observe(d, layout)
	if err != nil {
		return err
	}
	loadedFrom, err := originOf[*sectorOrigin](r, s.Path)
	if err != nil {
		return err
	}
	if loadedFrom != nil {
		if why := loadedFrom.differs(now); why != "" {
			return fmt.Errorf("%s: %w: %s", s.Path, ErrChanged, why)
		}
	}
	r.Binding = bind(now.medium, s.ImageDiskGUIDs)
	enc, err := r.Encode()
	if err != nil {
		return err
	}
	sector := make([]byte, d.sectorSize)
	copy(sector, enc)
	if err := d.writeSector(s.lba(), sector); err != nil {
		return fmt.Errorf("%s: %w", s.Path, err)
	}
	if loadedFrom != nil {
		loadedFrom.written = newSecret(sector)
	}
	return nil
}

func (o *sectorOrigin) location() string { return o.path }

// originOf returns what the Load that r derives from saw, or nil for a
// record not derived from a load (a first seed written by hand): then only
// the backend's layout and content checks apply. A record loaded from
// another location is refused.
func originOf[T interface{ location() string }](r Record, path string) (T, error) {
	var none T
	if r.origin == nil {
		return none, nil
	}
	o, ok := r.origin.(T)
	if !ok || o.location() != path {
		return none, fmt.Errorf("%s: %w: the record was loaded from another location", path, ErrChanged)
	}
	return o, nil
}

// differs says how now is not the device, medium and sector o saw, or "".
// The sector may also hold what Store wrote since (a wear-levelling
// rewrite).
func (o *sectorOrigin) differs(now *sectorOrigin) string {
	switch {
	case o.device != now.device:
		return "another device behind the path"
	case o.medium.DiskGUID != now.medium.DiskGUID:
		return fmt.Sprintf("disk GUID %s, was %s", now.medium.DiskGUID, o.medium.DiskGUID)
	case o.medium != now.medium:
		return "another disk size or serial number"
	}
	cur := now.sector()
	if bytes.Equal(cur, o.sector()) || (o.written != nil && bytes.Equal(cur, o.written())) {
		return ""
	}
	return "the sector was rewritten by someone else"
}

// diskLockWait bounds the wait for another holder of the disk's lock:
// udev holds a shared one while it probes, for milliseconds.
const diskLockWait = 5 * time.Second

// lockDisk takes an exclusive BSD lock on an open whole-disk node, as
// systemd asks of programs that write to a block device (udev then skips
// its probe rather than read a half-written disk). The lock goes with the
// descriptor.
func lockDisk(f *os.File) error {
	deadline := time.Now().Add(diskLockWait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("lock disk: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lock disk: another process holds it (%w)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Rewrite writes r over the seed sector times more, in one open of the
// disk: udev re-probes a disk each time a writer closes it, so one open per
// write would wake it hundreds of times (WearRewrites). Layout and content
// are checked once, on a fresh read in this open: the sector must hold r
// already, as Store left it. It returns how many writes were done.
func (s SectorBackend) Rewrite(r Record, times int) (done int, err error) {
	d, err := openDevice(s.Path, s.FileSectorSize, true)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := d.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", s.Path, cerr)
		}
	}()
	if d.readOnly {
		return 0, fmt.Errorf("%s: %w", s.Path, ErrReadOnly)
	}
	if err := lockDisk(d.f); err != nil {
		return 0, fmt.Errorf("%s: %w", s.Path, err)
	}
	_, loaded, err := inspectSector(d, d.size, d.sectorSize, s.lba(), s.Foreign)
	if err != nil {
		return 0, fmt.Errorf("check %s: %w", s.Path, err)
	}
	// Store bound the record it wrote to this medium; r is the record
	// before that binding.
	r.Binding = loaded.Record.Binding
	enc, err := r.Encode()
	if err != nil {
		return 0, err
	}
	if held, err := loaded.Record.Encode(); loaded.Content != ContentRecord || err != nil || !bytes.Equal(held, enc) {
		return 0, fmt.Errorf("%s: LBA %d no longer holds the seed just stored: not rewritten", s.Path, s.lba())
	}
	sector := make([]byte, d.sectorSize)
	copy(sector, enc)
	for range times {
		if err := d.writeSector(s.lba(), sector); err != nil {
			return done, fmt.Errorf("%s: %w", s.Path, err)
		}
		done++
	}
	return done, nil
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
