// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders/internal/gptimage"
)

// diskCase is one disk image and what the sector check must say about LBA
// 34 on it. The same cases drive the layout tests, the "refusal changes
// nothing" tests on real files and devices, and the fuzz seed corpus.
type diskCase struct {
	name       string
	sectorSize int // 0: 512
	image      func(t testing.TB) []byte
	foreign    ForeignPolicy
	want       error   // nil: safe to write
	content    Content // when safe
}

func (c diskCase) ss() int {
	if c.sectorSize == 0 {
		return 512
	}
	return c.sectorSize
}

const tailsSectors = 4096 // 2 MiB: the Tails layout with a partition at 2048

func tailsImage() []byte { return gptimage.TailsLike(tailsSectors).Build() }

func tails4Kn() gptimage.Disk {
	d := gptimage.TailsLike(1024)
	d.SectorSize = 4096
	d.Partitions[0].First = 256 // 1 MiB, as Tails aligns it
	d.Partitions[0].Last = 1024 - 6
	return d
}

// edit applies f to a built image and reseals the CRCs of the headers at
// the given LBAs, the way a hostile or buggy partitioner would write them.
func edit(img []byte, ss int, reseal []int64, f func(img []byte)) []byte {
	f(img)
	for _, at := range reseal {
		gptimage.Reseal(img, ss, at)
	}
	return img
}

func put64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }

// Offsets into the primary header of a 512-byte-sector image.
const (
	hdr          = 512
	hdrAlternate = hdr + 32
	hdrArrayLBA  = hdr + 72
	hdrEntries   = hdr + 80
	hdrEntrySize = hdr + 84
	backupHdr    = (tailsSectors - 1) * 512
)

func withSector(img []byte, ss int, lba int64, content []byte) []byte {
	copy(img[lba*int64(ss):], content)
	return img
}

func diskCases() []diskCase {
	rec := func(t testing.TB) []byte { return mustEncode(t, testRecord(0x10, 42, true)) }
	return []diskCase{
		{name: "Tails-like stick, zero sector", image: func(testing.TB) []byte { return tailsImage() }, content: ContentEmpty},
		{name: "our record", image: func(t testing.TB) []byte {
			return withSector(tailsImage(), 512, DefaultLBA, rec(t))
		}, content: ContentRecord},
		{name: "torn record of ours", image: func(t testing.TB) []byte {
			return withSector(tailsImage(), 512, DefaultLBA, rec(t)[:RecordSize/2])
		}, content: ContentTorn},
		{name: "foreign sector refused", image: func(testing.TB) []byte {
			return withSector(tailsImage(), 512, DefaultLBA, bytes.Repeat([]byte{0xa5}, 512))
		}, want: ErrForeign},
		{name: "legacy random sector under LegacySector=mix", foreign: ForeignMix, image: func(testing.TB) []byte {
			return withSector(tailsImage(), 512, DefaultLBA, bytes.Repeat([]byte{0xa5}, 512))
		}, content: ContentForeign},
		{name: "4Kn stick", sectorSize: 4096, image: func(testing.TB) []byte { return tails4Kn().Build() }, content: ContentEmpty},
		{name: "4Kn image read as 512-byte sectors", image: func(testing.TB) []byte { return tails4Kn().Build() }, want: ErrNoGPT},
		{name: "image on a bigger stick (backup GPT not at the end)", image: func(testing.TB) []byte {
			return append(tailsImage(), make([]byte, 4096*512)...)
		}, content: ContentEmpty},
		{name: "backup relocated to the end of a bigger stick", image: func(testing.TB) []byte {
			d := gptimage.TailsLike(2 * tailsSectors)
			d.Partitions[0].Last = tailsSectors - 34
			return d.Build()
		}, content: ContentEmpty},
		{name: "partition starting at 34", image: func(testing.TB) []byte {
			d := gptimage.TailsLike(tailsSectors)
			d.Partitions[0].First = 34
			return d.Build()
		}, want: ErrPartition},
		{name: "second partition in the gap", image: func(testing.TB) []byte {
			d := gptimage.TailsLike(tailsSectors)
			d.Partitions = append(d.Partitions, gptimage.Partition{Type: gptimage.TypeBIOSBoot, First: 34, Last: 2047})
			return d.Build()
		}, want: ErrPartition},
		{name: "partition covering 34 from before it", image: func(testing.TB) []byte {
			d := gptimage.TailsLike(tailsSectors)
			d.FirstUsable = 20
			d.Partitions = append(d.Partitions, gptimage.Partition{Type: gptimage.TypeLinuxData, First: 20, Last: 100})
			return d.Build()
		}, want: ErrPartition},
		{name: "entry without type but with LBAs counts as used", image: func(testing.TB) []byte {
			d := gptimage.TailsLike(tailsSectors)
			d.Partitions = append(d.Partitions, gptimage.Partition{First: 34, Last: 40})
			return d.Build()
		}, want: ErrPartition},
		{name: "256 entries: array reaches 34", image: func(testing.TB) []byte {
			d := gptimage.TailsLike(tailsSectors)
			d.Entries = 256
			return d.Build()
		}, want: ErrNotUsable},
		{name: "array over 34 despite FirstUsable 34", image: func(testing.TB) []byte {
			d := gptimage.TailsLike(tailsSectors)
			d.Entries = 256
			d.FirstUsable = 34
			return d.Build()
		}, want: ErrGPTStructure},
		{name: "hybrid MBR entry over 34", image: func(testing.TB) []byte {
			d := gptimage.TailsLike(tailsSectors)
			d.Hybrid = []gptimage.MBREntry{{Type: 0x0c, Start: 34, Count: 100}}
			return d.Build()
		}, want: ErrMBRPartition},
		{name: "hybrid MBR matching the partition is fine", image: func(testing.TB) []byte {
			d := gptimage.TailsLike(tailsSectors)
			d.Hybrid = []gptimage.MBREntry{{Type: 0x0c, Start: 2048, Count: tailsSectors - 34 - 2048 + 1}}
			return d.Build()
		}, content: ContentEmpty},
		{name: "MBR-only disk with GRUB in the gap", image: func(testing.TB) []byte {
			img := make([]byte, tailsSectors*512)
			e := img[446:]
			e[0], e[4] = 0x80, 0x83
			put32(e, 8, 2048)
			put32(e, 12, tailsSectors-2048)
			img[510], img[511] = 0x55, 0xaa
			copy(img[512:], bytes.Repeat([]byte("GRUB core.img "), 80)) // LBA 1-3, over the would-be GPT
			return img
		}, want: ErrNoProtectiveMBR},
		{name: "no MBR signature", image: func(testing.TB) []byte {
			img := tailsImage()
			img[510] = 0
			return img
		}, want: ErrNoProtectiveMBR},
		{name: "blank disk", image: func(testing.TB) []byte { return make([]byte, tailsSectors*512) }, want: ErrNoProtectiveMBR},
		{name: "ISO-hybrid image", image: func(testing.TB) []byte {
			img := tailsImage()
			copy(img[32768:], "\x01CD001\x01")
			return img
		}, want: ErrISO9660},
		{name: "bad primary header CRC", image: func(testing.TB) []byte {
			img := tailsImage()
			img[hdr+16] ^= 1
			return img
		}, want: ErrGPTHeader},
		{name: "bad primary array CRC", image: func(testing.TB) []byte {
			img := tailsImage()
			img[2*512+60] ^= 1 // partition name
			return img
		}, want: ErrGPTEntries},
		{name: "bad backup header CRC", image: func(testing.TB) []byte {
			img := tailsImage()
			img[backupHdr+16] ^= 1
			return img
		}, want: ErrGPTHeader},
		{name: "bad backup array CRC", image: func(testing.TB) []byte {
			img := tailsImage()
			img[(tailsSectors-33)*512+60] ^= 1
			return img
		}, want: ErrGPTEntries},
		{name: "backup header missing", image: func(testing.TB) []byte {
			img := tailsImage()
			clear(img[backupHdr:])
			return img
		}, want: ErrNoGPT},
		{name: "backup beyond the disk (image cut short)", image: func(testing.TB) []byte {
			d := gptimage.TailsLike(tailsSectors)
			d.Partitions[0].Last = 3000
			d.LastUsable = 3000
			img := d.Build()
			return img[:3100*512]
		}, want: ErrBackupGPT},
		{name: "usable range past the disk end", image: func(testing.TB) []byte {
			return tailsImage()[:3000*512]
		}, want: ErrGPTHeader},
		{name: "backup header at 34", image: func(testing.TB) []byte {
			return edit(tailsImage(), 512, []int64{1}, func(img []byte) { put64(img, hdrAlternate, DefaultLBA) })
		}, want: ErrGPTStructure},
		{name: "backup array over 34", image: func(testing.TB) []byte {
			return edit(tailsImage(), 512, []int64{tailsSectors - 1}, func(img []byte) { put64(img, backupHdr+72, 30) })
		}, want: ErrGPTStructure},
		{name: "backup pointing elsewhere than LBA 1", image: func(testing.TB) []byte {
			return edit(tailsImage(), 512, []int64{tailsSectors - 1}, func(img []byte) { put64(img, backupHdr+32, 2) })
		}, want: ErrBackupGPT},
		{name: "primary header claims another LBA", image: func(testing.TB) []byte {
			return edit(tailsImage(), 512, []int64{1}, func(img []byte) { put64(img, hdr+24, 7) })
		}, want: ErrGPTHeader},
		{name: "header size larger than a sector", image: func(testing.TB) []byte {
			return edit(tailsImage(), 512, nil, func(img []byte) { put32(img, hdr+12, 600) })
		}, want: ErrGPTHeader},
		{name: "entry size not a power of two", image: func(testing.TB) []byte {
			return edit(tailsImage(), 512, []int64{1}, func(img []byte) { put32(img, hdrEntrySize, 100) })
		}, want: ErrGPTEntries},
		{name: "absurd entry count", image: func(testing.TB) []byte {
			return edit(tailsImage(), 512, []int64{1}, func(img []byte) { put32(img, hdrEntries, 0xffffffff) })
		}, want: ErrGPTEntries},
		{name: "array LBA past the end", image: func(testing.TB) []byte {
			return edit(tailsImage(), 512, []int64{1}, func(img []byte) { put64(img, hdrArrayLBA, 1<<62) })
		}, want: ErrGPTEntries},
		{name: "partition start beyond int64", image: func(testing.TB) []byte {
			return edit(tailsImage(), 512, []int64{1, tailsSectors - 1}, func(img []byte) {
				put64(img, 2*512+32, 1<<63)
				put64(img, (tailsSectors-33)*512+32, 1<<63)
			})
		}, want: ErrPartition},
	}
}
