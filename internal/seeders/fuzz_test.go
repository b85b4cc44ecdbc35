// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders/internal/gptimage"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the fuzz seed corpus in testdata/fuzz")

func FuzzParseRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := ParseRecord(data)
		if err != nil {
			n := 0
			for _, sentinel := range []error{ErrNotRecord, ErrChecksum, ErrVersion} {
				if errors.Is(err, sentinel) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v matches %d of the sentinels, want exactly one", err, n)
			}
			if hasMagic(data) == errors.Is(err, ErrNotRecord) {
				t.Fatalf("error %v disagrees with the magic check", err)
			}
			return
		}
		if l, err := Classify(data, ForeignRefuse); err != nil || l.Content != ContentRecord {
			t.Fatalf("Classify of a valid record = %v, %v", l.Content, err)
		}
		if rec.Version == recordVersion1 {
			// Never written again, so nothing to encode back; it is
			// bound to nothing and so never credited.
			if rec.Binding != (Binding{}) || whyNotBound(rec, Binding{}, nil) == "" {
				t.Fatalf("a version 1 record parsed as bound: %#v", rec)
			}
			return
		}
		enc, err := rec.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, data[:RecordSize]) {
			t.Fatal("a parsed record does not encode back to the bytes it came from")
		}
		again, err := ParseRecord(enc)
		if err != nil || again.Generation != rec.Generation || again.Creditable != rec.Creditable || again.Binding != rec.Binding || !bytes.Equal(again.seed(), rec.seed()) {
			t.Fatalf("re-parse = %v, %v; want %v", again, err, rec)
		}
	})
}

// A FuzzCheckLayout input describes a sparse disk image, so that interesting
// layouts stay small:
//
//	byte 0      flags: 1 = 4096-byte sectors, 2 = reseal the primary GPT
//	            after the edits, 4 = reseal the backup, 8 = ForeignMix
//	bytes 1-4   disk size in sectors (little-endian)
//	then        chunks: byte offset (uint32), length (uint16), bytes
//
// Resealing lets the fuzzer edit GPT fields and entries and still get past
// the CRC checks to the placement rules behind them.
const (
	fuzz4Kn = 1 << iota
	fuzzResealPrimary
	fuzzResealBackup
	fuzzForeignMix
)

// sparseDisk is a disk image of zeros with chunks written over it, later ones
// on top.
type sparseDisk struct {
	size   int64
	chunks []sparseChunk
}

type sparseChunk struct {
	off int64
	b   []byte
}

func (d *sparseDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= d.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), d.size-off))
	clear(p[:n])
	for _, c := range d.chunks {
		lo, hi := max(off, c.off), min(off+int64(n), c.off+int64(len(c.b)))
		if lo < hi {
			copy(p[lo-off:hi-off], c.b[lo-c.off:hi-c.off])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *sparseDisk) write(b []byte, off int64) {
	d.chunks = append(d.chunks, sparseChunk{off, append([]byte(nil), b...)})
}

func decodeDisk(data []byte) (d *sparseDisk, ss int, foreign ForeignPolicy) {
	if len(data) < 5 {
		return &sparseDisk{}, 512, ForeignRefuse
	}
	flags := data[0]
	ss = 512
	if flags&fuzz4Kn != 0 {
		ss = 4096
	}
	if flags&fuzzForeignMix != 0 {
		foreign = ForeignMix
	}
	d = &sparseDisk{size: int64(binary.LittleEndian.Uint32(data[1:])) * int64(ss)}
	for rest := data[5:]; len(rest) >= 6; {
		off := int64(binary.LittleEndian.Uint32(rest))
		n := int(binary.LittleEndian.Uint16(rest[4:]))
		rest = rest[6:]
		n = min(n, len(rest))
		d.write(rest[:n], off)
		rest = rest[n:]
	}
	if flags&fuzzResealPrimary != 0 {
		resealSparse(d, ss, 1)
	}
	if flags&fuzzResealBackup != 0 {
		var h [8]byte
		d.ReadAt(h[:], int64(ss)+32)
		resealSparse(d, ss, int64(binary.LittleEndian.Uint64(h[:])))
	}
	return d, ss, foreign
}

func resealSparse(d *sparseDisk, ss int, at int64) {
	if at <= 0 || at >= d.size/int64(ss) {
		return
	}
	h := make([]byte, ss)
	d.ReadAt(h, at*int64(ss))
	off, n := gptimage.ArrayExtent(h, ss)
	var array []byte
	if n <= 1<<20 && off < uint64(d.size) {
		array = make([]byte, n)
		d.ReadAt(array, int64(off))
	}
	gptimage.Seal(h, array)
	d.write(h, at*int64(ss))
}

// encodeDisk describes a full image as a sparse one: its non-zero runs.
func encodeDisk(img []byte, ss int, foreign ForeignPolicy) []byte {
	var flags byte
	if ss == 4096 {
		flags |= fuzz4Kn
	}
	if foreign == ForeignMix {
		flags |= fuzzForeignMix
	}
	out := binary.LittleEndian.AppendUint32([]byte{flags}, uint32(len(img)/ss))
	for i := 0; i < len(img); {
		if img[i] == 0 {
			i++
			continue
		}
		// Extend the run over short zero gaps: a chunk header costs 6 bytes.
		end, zeros := i, 0
		for end < len(img) && end-i < 0xffff && zeros < 16 {
			if img[end] == 0 {
				zeros++
			} else {
				zeros = 0
			}
			end++
		}
		end -= zeros
		out = binary.LittleEndian.AppendUint32(out, uint32(i))
		out = binary.LittleEndian.AppendUint16(out, uint16(end-i))
		out = append(out, img[i:end]...)
		i = end
	}
	return out
}

func FuzzCheckLayout(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		d, ss, foreign := decodeDisk(data)
		_, loaded, err := inspectSector(d, d.size, ss, DefaultLBA, foreign)
		if err != nil {
			// The sparse disk never fails a read inside its size, and every
			// read CheckLayout makes is checked against the size first: any
			// error must be a verdict, not a stumble.
			if !errors.Is(err, ErrUnsafe) {
				t.Fatalf("error %v is not a refusal", err)
			}
			return
		}
		if problem := independentCheck(d, ss, DefaultLBA, foreign); problem != "" {
			t.Fatalf("judged safe, but %s", problem)
		}
		if loaded.Content == ContentForeign && foreign != ForeignMix {
			t.Fatal("foreign content accepted without ForeignMix")
		}
	})
}

// independentCheck re-derives rule 5 for a sector judged safe, written
// separately from layout.go and as plainly as possible, in uint64
// arithmetic. It returns what is wrong, or "".
func independentCheck(d *sparseDisk, ss int, lba int64, foreign ForeignPolicy) string {
	u64 := func(b []byte, off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
	u32 := func(b []byte, off int) uint64 { return uint64(binary.LittleEndian.Uint32(b[off:])) }
	read := func(off uint64, n uint64) []byte {
		b := make([]byte, n)
		d.ReadAt(b, int64(off))
		return b
	}
	n := uint64(lba)
	sectors := uint64(d.size) / uint64(ss)
	if ss != 512 && ss != 4096 {
		return "sector size is not 512 or 4096"
	}
	if n < 2 || n >= sectors {
		return "sector is not on the disk past the headers"
	}
	if d.size > 32774 && string(read(32769, 5)) == "CD001" {
		return "disk is an ISO 9660 image"
	}
	mbr := read(0, 512)
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return "no MBR signature"
	}
	protective := false
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i : 446+16*i+16]
		start, count := u32(e, 8), u32(e, 12)
		switch {
		case e[4] == 0xee:
			protective = true
		case e[4] != 0 && n >= start && n < start+count:
			return fmt.Sprintf("MBR entry %d covers the sector", i+1)
		}
	}
	if !protective {
		return "no protective MBR entry"
	}
	at := uint64(1)
	for _, which := range []string{"primary", "backup"} {
		h := read(at*uint64(ss), uint64(ss))
		if string(h[:8]) != "EFI PART" {
			return which + " header has no signature"
		}
		hsize := u32(h, 12)
		if hsize < 92 || hsize > uint64(ss) {
			return which + " header size insane"
		}
		c := append([]byte(nil), h[:hsize]...)
		clear(c[16:20])
		if crc32.ChecksumIEEE(c) != uint32(u32(h, 16)) {
			return which + " header CRC wrong"
		}
		if u64(h, 24) != at {
			return which + " header is not where it says"
		}
		if n < u64(h, 40) || n > u64(h, 48) || u64(h, 48) >= sectors {
			return "sector outside the " + which + " usable range"
		}
		arrayLBA, entries, esize := u64(h, 72), u32(h, 80), u32(h, 84)
		arrayBytes := entries * esize
		if esize < 128 || arrayBytes > 1<<20 || arrayLBA >= sectors {
			return which + " array insane"
		}
		arraySectors := (arrayBytes + uint64(ss) - 1) / uint64(ss)
		if n >= arrayLBA && n < arrayLBA+arraySectors {
			return "sector in the " + which + " array"
		}
		array := read(arrayLBA*uint64(ss), arrayBytes)
		if crc32.ChecksumIEEE(array) != uint32(u32(h, 88)) {
			return which + " array CRC wrong"
		}
		for i := uint64(0); i < entries; i++ {
			e := array[i*esize : (i+1)*esize]
			used := !bytes.Equal(e[:16], make([]byte, 16)) || u64(e, 32) != 0 || u64(e, 40) != 0
			if used && u64(e, 32) <= n {
				return fmt.Sprintf("%s entry %d starts at or before the sector", which, i+1)
			}
			if used && u64(e, 32) > 1<<63-1 {
				return fmt.Sprintf("%s entry %d starts beyond int64", which, i+1)
			}
		}
		if which == "primary" {
			at = u64(h, 32)
			if at == n || at <= 1 || at >= sectors {
				return "backup header misplaced"
			}
		} else if u64(h, 32) != 1 {
			return "backup does not point to the primary"
		}
	}
	content := read(n*uint64(ss), uint64(ss))
	if !allZero(content) && !bytes.HasPrefix(content, recordMagic[:]) && foreign != ForeignMix {
		return "sector holds foreign data"
	}
	return ""
}

// corpusFile renders one seed corpus entry in the Go fuzzing file format.
func corpusFile(data []byte) string {
	return fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
}

// seedCorpus is what testdata/fuzz holds: every disk case and a few record
// shapes, plus truncated and resealed variants.
func seedCorpus(t testing.TB) map[string]map[string][]byte {
	layout := map[string][]byte{}
	name := regexp.MustCompile(`[^a-z0-9]+`)
	for _, c := range diskCases() {
		desc := encodeDisk(c.image(t), c.ss(), c.foreign)
		layout[strings.Trim(name.ReplaceAllString(strings.ToLower(c.name), "-"), "-")] = desc
	}
	stick := layout["tails-like-stick-zero-sector"]
	layout["truncated-description"] = stick[:len(stick)/2]
	resealed := append([]byte(nil), stick...)
	resealed[0] |= fuzzResealPrimary | fuzzResealBackup
	layout["tails-like-stick-resealed"] = resealed

	valid := mustEncode(t, testRecord(1, 7, true))
	records := map[string][]byte{
		"valid":          valid,
		"valid-sector":   append(append([]byte(nil), valid...), make([]byte, 512-RecordSize)...),
		"not-creditable": mustEncode(t, testRecord(2, 0, false)),
		"torn":           valid[:RecordSize/2],
		"magic-only":     recordMagic[:],
		"zero":           make([]byte, 512),
		"foreign":        bytes.Repeat([]byte{0xa5}, 512),
		"newer-version":  append(append([]byte(nil), valid[:offVersion]...), append([]byte{3, 0}, valid[offVersion+2:]...)...),
		"bound":          mustEncode(t, boundRecord(3, 9, true, testBinding())),
		"first-boot":     mustEncode(t, boundRecord(4, 1, true, Binding{DiskGUID: TailsImageDiskGUID, DiskSize: 8 << 30, Serial: SerialDigest("4C530001"), FirstBoot: true})),
		"version-1":      encodeV1(5, 11, true),
		"version-1-torn": encodeV1(6, 12, true)[:recordSizeV1-1],
	}
	return map[string]map[string][]byte{"FuzzCheckLayout": layout, "FuzzParseRecord": records}
}

// TestSeedCorpus keeps testdata/fuzz in step with the disk cases: run with
// -update-corpus to rewrite it.
func TestSeedCorpus(t *testing.T) {
	for fuzzName, entries := range seedCorpus(t) {
		dir := filepath.Join("testdata", "fuzz", fuzzName)
		if *updateCorpus {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for name, data := range entries {
			path := filepath.Join(dir, name)
			if *updateCorpus {
				if err := os.WriteFile(path, []byte(corpusFile(data)), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != corpusFile(data) {
				t.Errorf("%s is missing or stale (%v): run go test -run TestSeedCorpus -update-corpus", path, err)
			}
		}
		files, _ := os.ReadDir(dir)
		if len(files) != len(entries) {
			t.Errorf("%s holds %d files, want %d: run go test -run TestSeedCorpus -update-corpus", dir, len(files), len(entries))
		}
	}
}

// TestSparseDiskMatchesImage checks the fuzz input encoding itself: every
// disk case, described sparsely, gets the same verdict as the full image.
func TestSparseDiskMatchesImage(t *testing.T) {
	for _, c := range diskCases() {
		img := c.image(t)
		d, ss, foreign := decodeDisk(encodeDisk(img, c.ss(), c.foreign))
		full := make([]byte, d.size)
		d.ReadAt(full, 0)
		if !bytes.Equal(full, img) || ss != c.ss() || foreign != c.foreign {
			t.Fatalf("%s: sparse description does not reproduce the image", c.name)
		}
		_, _, err := inspectSector(d, d.size, ss, DefaultLBA, foreign)
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: verdict %v, want %v", c.name, err, c.want)
		}
		if err == nil {
			if problem := independentCheck(d, ss, DefaultLBA, foreign); problem != "" {
				t.Fatalf("%s: independent check says %s", c.name, problem)
			}
		}
	}
}
