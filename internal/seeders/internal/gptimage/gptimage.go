// SPDX-License-Identifier: GPL-3.0-or-later

package gptimage

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strings"
	"unicode/utf16"
)

const (
	headerSize = 92
	entrySize  = 128
)

// Well-known partition type GUIDs, in on-disk byte order.
var (
	TypeEFISystem = MustGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	TypeLinuxData = MustGUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
	TypeBIOSBoot  = MustGUID("21686148-6449-6E6F-744E-656564454649")
)

// Disk describes an image. Zero fields take the defaults sgdisk would use.
type Disk struct {
	SectorSize int   // 512 (default) or 4096
	Sectors    int64 // disk size in sectors
	Entries    int   // entry count, default 128
	// AlternateLBA is where the backup header goes, default the last LBA.
	// Smaller values model an image written to a bigger stick.
	AlternateLBA int64
	// FirstUsable and LastUsable default to the sectors between the arrays.
	FirstUsable, LastUsable int64
	DiskGUID                [16]byte
	Partitions              []Partition
	// Hybrid adds real MBR entries after the protective one.
	Hybrid []MBREntry
}

// Partition is one GPT entry.
type Partition struct {
	Type, GUID  [16]byte
	First, Last int64
	Name        string
}

// MBREntry is one real entry of a hybrid MBR.
type MBREntry struct {
	Type         byte
	Start, Count uint32
}

// MustGUID converts the text form of a GUID to on-disk (mixed-endian) bytes.
func MustGUID(s string) [16]byte {
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(raw) != 16 {
		panic(fmt.Sprintf("gptimage: bad GUID %q", s))
	}
	var g [16]byte
	binary.LittleEndian.PutUint32(g[0:], binary.BigEndian.Uint32(raw[0:]))
	binary.LittleEndian.PutUint16(g[4:], binary.BigEndian.Uint16(raw[4:]))
	binary.LittleEndian.PutUint16(g[6:], binary.BigEndian.Uint16(raw[6:]))
	copy(g[8:], raw[8:])
	return g
}

func (d Disk) withDefaults() Disk {
	if d.SectorSize == 0 {
		d.SectorSize = 512
	}
	if d.Entries == 0 {
		d.Entries = 128
	}
	if d.AlternateLBA == 0 {
		d.AlternateLBA = d.Sectors - 1
	}
	if d.FirstUsable == 0 {
		d.FirstUsable = 2 + d.ArraySectors()
	}
	if d.LastUsable == 0 {
		d.LastUsable = d.AlternateLBA - d.ArraySectors() - 1
	}
	return d
}

// ArraySectors is the size of one entry array in sectors.
func (d Disk) ArraySectors() int64 {
	ss, n := int64(d.SectorSize), int64(d.Entries)
	if ss == 0 {
		ss = 512
	}
	if n == 0 {
		n = 128
	}
	return (n*entrySize + ss - 1) / ss
}

// Build returns the image: protective (or hybrid) MBR, primary header and
// array, backup array and header at AlternateLBA, everything else zero.
func (d Disk) Build() []byte {
	d = d.withDefaults()
	ss := int64(d.SectorSize)
	img := make([]byte, d.Sectors*ss)
	d.writeMBR(img)

	array := make([]byte, d.ArraySectors()*ss)
	for i, p := range d.Partitions {
		e := array[i*entrySize:]
		copy(e[0:], p.Type[:])
		copy(e[16:], p.GUID[:])
		binary.LittleEndian.PutUint64(e[32:], uint64(p.First))
		binary.LittleEndian.PutUint64(e[40:], uint64(p.Last))
		for j, u := range utf16.Encode([]rune(p.Name)) {
			binary.LittleEndian.PutUint16(e[56+2*j:], u)
		}
	}
	backupArray := d.AlternateLBA - d.ArraySectors()
	copy(img[2*ss:], array)
	copy(img[backupArray*ss:], array)
	d.writeHeader(img, 1, d.AlternateLBA, 2)
	d.writeHeader(img, d.AlternateLBA, 1, backupArray)
	return img
}

func (d Disk) writeMBR(img []byte) {
	mbr := img[:512]
	entry := func(slot int, typ byte, start, count uint32) {
		e := mbr[446+16*slot:]
		e[1], e[2], e[3] = 0x00, 0x02, 0x00 // CHS values are ignored by everyone
		e[4] = typ
		e[5], e[6], e[7] = 0xff, 0xff, 0xff
		binary.LittleEndian.PutUint32(e[8:], start)
		binary.LittleEndian.PutUint32(e[12:], count)
	}
	// The protective entry covers the disk, or in a hybrid MBR (as sgdisk
	// makes it) the sectors before the first real entry.
	end := uint64(d.Sectors)
	for _, h := range d.Hybrid {
		end = min(end, uint64(h.Start))
	}
	entry(0, 0xee, 1, uint32(min(end-1, 0xffffffff)))
	for i, h := range d.Hybrid {
		entry(i+1, h.Type, h.Start, h.Count)
	}
	mbr[510], mbr[511] = 0x55, 0xaa
}

func (d Disk) writeHeader(img []byte, at, alternate, arrayLBA int64) {
	ss := int64(d.SectorSize)
	h := img[at*ss : at*ss+ss]
	copy(h, "EFI PART")
	binary.LittleEndian.PutUint32(h[8:], 0x00010000)
	binary.LittleEndian.PutUint32(h[12:], headerSize)
	binary.LittleEndian.PutUint64(h[24:], uint64(at))
	binary.LittleEndian.PutUint64(h[32:], uint64(alternate))
	binary.LittleEndian.PutUint64(h[40:], uint64(d.FirstUsable))
	binary.LittleEndian.PutUint64(h[48:], uint64(d.LastUsable))
	copy(h[56:], d.DiskGUID[:])
	binary.LittleEndian.PutUint64(h[72:], uint64(arrayLBA))
	binary.LittleEndian.PutUint32(h[80:], uint32(d.Entries))
	binary.LittleEndian.PutUint32(h[84:], entrySize)
	Reseal(img, d.SectorSize, at)
}

// Reseal recomputes the entry array CRC and then the header CRC of the GPT
// header at LBA at, after a test edited either. It trusts the header's own
// array location and entry count, and leaves a CRC alone where they point
// outside img.
func Reseal(img []byte, sectorSize int, at int64) {
	ss := int64(sectorSize)
	if at < 0 || (at+1)*ss > int64(len(img)) {
		return
	}
	h := img[at*ss : (at+1)*ss]
	off, n := ArrayExtent(h, sectorSize)
	var array []byte
	if off <= uint64(len(img)) && n <= uint64(len(img))-off {
		array = img[off : off+n]
	}
	Seal(h, array)
}

// ArrayExtent returns the byte offset and length of the entry array the
// header h describes.
func ArrayExtent(h []byte, sectorSize int) (off, n uint64) {
	off = binary.LittleEndian.Uint64(h[72:]) * uint64(sectorSize)
	n = uint64(binary.LittleEndian.Uint32(h[80:])) * uint64(binary.LittleEndian.Uint32(h[84:]))
	return off, n
}

// Seal sets the header's entry array CRC to that of array (unless array is
// nil), then its header CRC over its own header size (unless that exceeds
// h).
func Seal(h, array []byte) {
	if array != nil {
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(array))
	}
	hsize := uint64(binary.LittleEndian.Uint32(h[12:]))
	if hsize > uint64(len(h)) {
		return
	}
	binary.LittleEndian.PutUint32(h[16:], 0)
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:hsize]))
}

// TailsLike is a stick as Tails' USB image lays it out: default GPT, an EFI
// system partition at LBA 2048, LBA 34-2047 unused.
func TailsLike(sectors int64) Disk {
	return Disk{
		Sectors:  sectors,
		DiskGUID: MustGUID("8A3E2C10-5B7D-4E21-9F63-0C4D8E1A2B3C"),
		Partitions: []Partition{{
			Type:  TypeEFISystem,
			GUID:  MustGUID("2B9E7A41-6C3D-4F58-8E10-7A5B4C3D2E1F"),
			First: 2048,
			Last:  sectors - 34,
			Name:  "Tails",
		}},
	}
}
