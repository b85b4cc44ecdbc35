// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// xenNotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY: the PVH entry point
// QEMU's -kernel uses to boot an uncompressed ELF kernel directly.
const xenNotePhys32Entry = 18

// payloadFormats are the compressions a bzImage payload may have, by
// magic number, and how to unpack one stream of it.
var payloadFormats = []struct {
	magic  []byte
	unpack func(ctx context.Context, payload string) ([]byte, error)
}{
	{[]byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, func(ctx context.Context, payload string) ([]byte, error) {
		return decompressWith(ctx, "xz", payload, "--single-stream")
	}},
	{[]byte{0x28, 0xb5, 0x2f, 0xfd}, func(ctx context.Context, payload string) ([]byte, error) {
		return decompressWith(ctx, "zstd", payload)
	}},
	{[]byte{0x1f, 0x8b, 0x08}, func(_ context.Context, payload string) ([]byte, error) {
		f, err := os.Open(payload)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		zr.Multistream(false)
		return io.ReadAll(zr)
	}},
}

// extractPVHImage unpacks the kernel ELF from a bzImage to dst and checks
// that it has a PVH entry point.
func extractPVHImage(ctx context.Context, bzImage, dst string) error {
	data, err := os.ReadFile(bzImage)
	if err != nil {
		return fmt.Errorf("extract vmlinux: %w", err)
	}
	payload := dst + ".payload"
	defer os.Remove(payload)
	for _, format := range payloadFormats {
		start := bytes.Index(data, format.magic)
		if start < 0 {
			continue
		}
		if err := os.WriteFile(payload, data[start:], 0o644); err != nil {
			return fmt.Errorf("extract vmlinux: %w", err)
		}
		image, err := format.unpack(ctx, payload)
		if err != nil {
			continue // the magic bytes may occur by chance; try the next format
		}
		if err := checkPVHEntry(image); err != nil {
			return fmt.Errorf("extract vmlinux: %w", err)
		}
		if err := os.WriteFile(dst, image, 0o644); err != nil {
			return fmt.Errorf("extract vmlinux: %w", err)
		}
		return nil
	}
	return errors.New("extract vmlinux: no payload found in the bzImage")
}

// checkPVHEntry checks that image is an ELF kernel with a Xen
// PHYS32_ENTRY note.
func checkPVHEntry(image []byte) error {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return fmt.Errorf("parse ELF: %w", err)
	}
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(prog.Open())
		if err != nil {
			return fmt.Errorf("read ELF notes: %w", err)
		}
		if hasNote(notes, f.ByteOrder, "Xen", xenNotePhys32Entry) {
			return nil
		}
	}
	return errors.New("no PVH entry point note")
}

// hasNote reports whether an ELF note segment holds a note of the given
// owner and type. Each note is namesz, descsz, type, then name and
// descriptor, both padded to four bytes.
func hasNote(notes []byte, order binary.ByteOrder, owner string, typ uint32) bool {
	align := func(n uint32) int { return int((uint64(n) + 3) &^ 3) }
	for len(notes) >= 12 {
		nameSize, descSize, noteType := order.Uint32(notes), order.Uint32(notes[4:]), order.Uint32(notes[8:])
		notes = notes[12:]
		if align(nameSize) > len(notes) {
			return false
		}
		name := string(bytes.TrimRight(notes[:nameSize], "\x00"))
		notes = notes[align(nameSize):]
		if align(descSize) > len(notes) {
			return false
		}
		notes = notes[align(descSize):]
		if name == owner && noteType == typ {
			return true
		}
	}
	return false
}
