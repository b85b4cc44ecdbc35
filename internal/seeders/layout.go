// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// DefaultLBA is the seed sector: the first sector after a default 128-entry
// GPT array on 512-byte sectors, where Tails 6.4 keeps its legacy seed.
const DefaultLBA = 34

// ErrUnsafe matches every refusal of CheckLayout and Classify: the sector is
// not provably ours to write.
var ErrUnsafe = errors.New("sector is not provably ours to write")

// refusal is a sentinel reason that also matches ErrUnsafe.
type refusal string

func (r refusal) Error() string        { return string(r) }
func (r refusal) Is(target error) bool { return target == ErrUnsafe }

// The reasons CheckLayout refuses a sector. Each matches ErrUnsafe; the error
// returned wraps one of them with the details.
var (
	ErrSectorSize      error = refusal("unsupported logical sector size")
	ErrISO9660         error = refusal("disk holds an ISO 9660 image")
	ErrNoProtectiveMBR error = refusal("no protective MBR: not a GPT disk")
	ErrMBRPartition    error = refusal("sector inside an MBR partition")
	ErrNoGPT           error = refusal("no GPT header")
	ErrGPTHeader       error = refusal("invalid GPT header")
	ErrGPTEntries      error = refusal("invalid GPT partition entries")
	ErrBackupGPT       error = refusal("backup GPT header missing or inconsistent")
	ErrNotUsable       error = refusal("sector outside the GPT usable range")
	ErrGPTStructure    error = refusal("sector inside a GPT structure")
	ErrPartition       error = refusal("a partition starts at or before the sector")
)

const (
	mbrSize          = 512
	mbrEntries       = 446
	mbrTypeGPT       = 0xee
	isoMagicOffset   = 32769 // "CD001" of the volume descriptor at 16×2048 bytes
	gptHeaderMinSize = 92
	gptEntryMinSize  = 128
	gptMaxArrayBytes = 1 << 20 // 8192 entries of 128 bytes; no real disk has more
)

var (
	gptSignature = []byte("EFI PART")
	isoMagic     = []byte("CD001")
)

// GUID is a GPT GUID as stored on disk (mixed-endian).
type GUID [16]byte

// String formats g the way sgdisk and blkid print it.
func (g GUID) String() string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X",
		binary.LittleEndian.Uint32(g[0:4]), binary.LittleEndian.Uint16(g[4:6]),
		binary.LittleEndian.Uint16(g[6:8]), g[8:10], g[10:16])
}

// ParseGUID reads the text form of a GUID (as String writes it, any case).
func ParseGUID(s string) (GUID, error) {
	var g GUID
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(raw) != 16 || len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, fmt.Errorf("parse GUID %q: want the form 01234567-89AB-CDEF-0123-456789ABCDEF", s)
	}
	binary.LittleEndian.PutUint32(g[0:], binary.BigEndian.Uint32(raw[0:]))
	binary.LittleEndian.PutUint16(g[4:], binary.BigEndian.Uint16(raw[4:]))
	binary.LittleEndian.PutUint16(g[6:], binary.BigEndian.Uint16(raw[6:]))
	copy(g[8:], raw[8:])
	return g, nil
}

// Layout is what CheckLayout validated.
type Layout struct {
	SectorSize int
	Sectors    int64
	LBA        int64
	DiskGUID   GUID
}

// CheckLayout decides whether sector lba of the disk r (size bytes, logical
// sectors of sectorSize bytes) is provably unused by anything else, from the
// partition tables alone (DESIGN rule 5; Classify judges the content). It
// only reads. A nil error means safe; otherwise the error is one line,
// wraps an ErrUnsafe reason or an I/O error, and the sector must not be
// written.
func CheckLayout(r io.ReaderAt, size int64, sectorSize int, lba int64) (Layout, error) {
	if sectorSize != 512 && sectorSize != 4096 {
		return Layout{}, fmt.Errorf("%w: %d bytes", ErrSectorSize, sectorSize)
	}
	ss := int64(sectorSize)
	sectors := size / ss
	// Below 2 is the MBR or the primary header; the rest follows from the
	// GPT checks, but this keeps them from meeting nonsense.
	if lba < 2 || lba >= sectors {
		return Layout{}, fmt.Errorf("%w: LBA %d on a disk of %d sectors", ErrNotUsable, lba, sectors)
	}

	if err := checkISO(r, size); err != nil {
		return Layout{}, err
	}
	mbr, err := readAt(r, 0, mbrSize)
	if err != nil {
		return Layout{}, fmt.Errorf("read MBR: %w", err)
	}
	if err := checkMBR(mbr, lba); err != nil {
		return Layout{}, err
	}

	primary, err := readGPT(r, ss, sectors, 1)
	if err != nil {
		return Layout{}, err
	}
	if err := primary.check(lba); err != nil {
		return Layout{}, err
	}

	// The backup header is where the primary says. On an image written to
	// a bigger stick that is not the last LBA; it only has to be on the
	// disk and valid.
	alt := primary.alternate
	if alt == lba {
		return Layout{}, fmt.Errorf("%w: backup GPT header at LBA %d", ErrGPTStructure, alt)
	}
	if alt <= 1 || alt >= sectors {
		return Layout{}, fmt.Errorf("%w: primary header puts it at LBA %d, disk has %d sectors", ErrBackupGPT, alt, sectors)
	}
	backup, err := readGPT(r, ss, sectors, alt)
	if err != nil {
		return Layout{}, fmt.Errorf("backup GPT at LBA %d: %w", alt, err)
	}
	if backup.alternate != 1 {
		return Layout{}, fmt.Errorf("%w: backup at LBA %d points to LBA %d, not 1", ErrBackupGPT, alt, backup.alternate)
	}
	if err := backup.check(lba); err != nil {
		return Layout{}, fmt.Errorf("backup GPT: %w", err)
	}
	return Layout{SectorSize: sectorSize, Sectors: sectors, LBA: lba, DiskGUID: primary.diskGUID}, nil
}

// checkISO refuses an ISO-hybrid image outright, not only its 32 KiB system
// area: past that area lie the image's own volume descriptors and files,
// and the system area holds whatever the mastering tool put there (MBR,
// GPT, APM, boot code). No sector of it is provably ours, the image is meant
// to stay byte-identical to the published one, and such a medium is never
// credited from anyway (DESIGN rule 3).
func checkISO(r io.ReaderAt, size int64) error {
	if size < isoMagicOffset+int64(len(isoMagic)) {
		return nil
	}
	b, err := readAt(r, isoMagicOffset, len(isoMagic))
	if err != nil {
		return fmt.Errorf("read ISO 9660 volume descriptor: %w", err)
	}
	if bytes.Equal(b, isoMagic) {
		return fmt.Errorf("%w: CD001 at byte %d", ErrISO9660, isoMagicOffset)
	}
	return nil
}

// checkMBR requires a protective (0xEE) entry and refuses lba if a real entry
// of a hybrid MBR covers it. MBR LBAs count logical sectors.
func checkMBR(mbr []byte, lba int64) error {
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return fmt.Errorf("%w: no MBR boot signature", ErrNoProtectiveMBR)
	}
	protective := false
	for i := range 4 {
		e := mbr[mbrEntries+16*i:]
		typ := e[4]
		start := int64(binary.LittleEndian.Uint32(e[8:]))
		count := int64(binary.LittleEndian.Uint32(e[12:]))
		switch typ {
		case 0:
		case mbrTypeGPT:
			protective = true
		default:
			if lba >= start && lba < start+count {
				return fmt.Errorf("%w: entry %d (type %#02x) covers LBA %d-%d", ErrMBRPartition, i+1, typ, start, start+count-1)
			}
		}
	}
	if !protective {
		return fmt.Errorf("%w: no 0xEE entry", ErrNoProtectiveMBR)
	}
	return nil
}

// gpt is one validated GPT header with its entry array.
type gpt struct {
	at, alternate           int64
	firstUsable, lastUsable int64
	arrayLBA, arrayEnd      int64 // [arrayLBA, arrayEnd)
	diskGUID                GUID
	starts                  []partitionStart // of the used entries
}

type partitionStart struct {
	entry  int // 1-based, as partition tools number them
	first  int64
	unique GUID
}

// readGPT reads and validates the header at LBA at and its entry array:
// signature, header size and CRC, its own location, sane fields, array CRC.
func readGPT(r io.ReaderAt, ss, sectors, at int64) (gpt, error) {
	h, err := readAt(r, at*ss, int(ss))
	if err != nil {
		return gpt{}, fmt.Errorf("read GPT header: %w", err)
	}
	if !bytes.Equal(h[:8], gptSignature) {
		return gpt{}, fmt.Errorf("%w at LBA %d", ErrNoGPT, at)
	}
	hsize := int64(binary.LittleEndian.Uint32(h[12:]))
	if hsize < gptHeaderMinSize || hsize > ss {
		return gpt{}, fmt.Errorf("%w: header size %d", ErrGPTHeader, hsize)
	}
	want := binary.LittleEndian.Uint32(h[16:])
	binary.LittleEndian.PutUint32(h[16:], 0)
	if crc32.ChecksumIEEE(h[:hsize]) != want {
		return gpt{}, fmt.Errorf("%w: header CRC mismatch at LBA %d", ErrGPTHeader, at)
	}
	g := gpt{
		at:          at,
		alternate:   int64(binary.LittleEndian.Uint64(h[32:])),
		firstUsable: int64(binary.LittleEndian.Uint64(h[40:])),
		lastUsable:  int64(binary.LittleEndian.Uint64(h[48:])),
		arrayLBA:    int64(binary.LittleEndian.Uint64(h[72:])),
	}
	copy(g.diskGUID[:], h[56:72])
	myLBA := int64(binary.LittleEndian.Uint64(h[24:]))
	count := int64(binary.LittleEndian.Uint32(h[80:]))
	esize := int64(binary.LittleEndian.Uint32(h[84:]))
	arrayCRC := binary.LittleEndian.Uint32(h[88:])

	// The uint64 fields went through int64: a huge value is negative here,
	// and every range check below refuses it.
	switch {
	case myLBA != at:
		return gpt{}, fmt.Errorf("%w: header at LBA %d says it is at LBA %d", ErrGPTHeader, at, myLBA)
	case g.firstUsable < 2 || g.firstUsable > g.lastUsable || g.lastUsable >= sectors:
		// A last usable LBA past the end means the disk is smaller than the
		// image it holds: something is already wrong.
		return gpt{}, fmt.Errorf("%w: usable range %d-%d on a disk of %d sectors", ErrGPTHeader, g.firstUsable, g.lastUsable, sectors)
	case esize < gptEntryMinSize || esize > 4096 || esize&(esize-1) != 0:
		return gpt{}, fmt.Errorf("%w: entry size %d", ErrGPTEntries, esize)
	case count < 1 || count*esize > gptMaxArrayBytes:
		return gpt{}, fmt.Errorf("%w: %d entries of %d bytes", ErrGPTEntries, count, esize)
	}
	arrayBytes := count * esize
	if g.arrayLBA < 2 || g.arrayLBA >= sectors {
		return gpt{}, fmt.Errorf("%w: array at LBA %d", ErrGPTEntries, g.arrayLBA)
	}
	g.arrayEnd = g.arrayLBA + (arrayBytes+ss-1)/ss
	if g.arrayEnd > sectors || (at >= g.arrayLBA && at < g.arrayEnd) {
		return gpt{}, fmt.Errorf("%w: array at LBA %d-%d", ErrGPTEntries, g.arrayLBA, g.arrayEnd-1)
	}
	array, err := readAt(r, g.arrayLBA*ss, int(arrayBytes))
	if err != nil {
		return gpt{}, fmt.Errorf("read GPT entries: %w", err)
	}
	if crc32.ChecksumIEEE(array) != arrayCRC {
		return gpt{}, fmt.Errorf("%w: array CRC mismatch at LBA %d", ErrGPTEntries, g.arrayLBA)
	}
	for i := range count {
		e := array[i*esize : (i+1)*esize]
		first := int64(binary.LittleEndian.Uint64(e[32:]))
		// The spec calls an entry unused when its type GUID is zero; an
		// entry with a zero type but LBAs set is treated as used.
		if allZero(e[:16]) && allZero(e[32:48]) {
			continue
		}
		p := partitionStart{entry: int(i) + 1, first: first}
		copy(p.unique[:], e[16:32])
		g.starts = append(g.starts, p)
	}
	return g, nil
}

// check places lba against one header: inside its usable range, outside its
// entry array and header, and before every partition's start.
func (g gpt) check(lba int64) error {
	switch {
	case lba < g.firstUsable || lba > g.lastUsable:
		return fmt.Errorf("%w: LBA %d, usable %d-%d", ErrNotUsable, lba, g.firstUsable, g.lastUsable)
	case lba >= g.arrayLBA && lba < g.arrayEnd:
		return fmt.Errorf("%w: LBA %d in the entry array at LBA %d-%d", ErrGPTStructure, lba, g.arrayLBA, g.arrayEnd-1)
	case lba == g.at:
		return fmt.Errorf("%w: LBA %d holds a GPT header", ErrGPTStructure, lba)
	}
	for _, p := range g.starts {
		// A first LBA beyond int64 is negative here, and refused.
		if p.first <= lba {
			return fmt.Errorf("%w: partition %d starts at LBA %d", ErrPartition, p.entry, uint64(p.first))
		}
	}
	return nil
}

// readAt reads exactly n bytes at off.
func readAt(r io.ReaderAt, off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	got, err := r.ReadAt(b, off)
	if got == n {
		return b, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

// inspectSector applies both halves of rule 5 to one disk: the layout, then
// what the sector holds now.
func inspectSector(r io.ReaderAt, size int64, sectorSize int, lba int64, foreign ForeignPolicy) (Layout, Loaded, error) {
	layout, err := CheckLayout(r, size, sectorSize, lba)
	if err != nil {
		return Layout{}, Loaded{}, err
	}
	b, err := readAt(r, lba*int64(sectorSize), sectorSize)
	if err != nil {
		return Layout{}, Loaded{}, fmt.Errorf("read LBA %d: %w", lba, err)
	}
	loaded, err := Classify(b, foreign)
	if err != nil {
		return Layout{}, Loaded{}, fmt.Errorf("LBA %d: %w", lba, err)
	}
	return layout, loaded, nil
}
