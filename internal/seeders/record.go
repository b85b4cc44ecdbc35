// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The record layout, version 2 (little-endian, like GPT). docs/seed-format.md
// explains each choice. Version 1 was the first 52 bytes and a checksum,
// without the binding to a medium.
const (
	offVersion       = 8
	offFlags         = 10
	offGeneration    = 12
	offSeed          = 20
	offDiskGUID      = offSeed + SeedSize
	offPartitionGUID = offDiskGUID + 16
	offDiskSize      = offPartitionGUID + 16
	offSerial        = offDiskSize + 8
	offFileSystem    = offSerial + sha256.Size
	offInode         = offFileSystem + 8
	offChecksum      = offInode + 8

	// SeedSize is the number of seed bytes in a record: 256 bits, the size of
	// the kernel CRNG's key and the credit that initializes it on every
	// kernel (128 bits on ≤5.17, 256 on 5.18+).
	SeedSize = 32
	// RecordSize is the encoded size of a record; the rest of a sector is
	// zero.
	RecordSize = offChecksum + sha256.Size

	recordVersion  = 2
	flagCreditable = 1 << 0
	flagFirstBoot  = 1 << 1
	knownFlags     = flagCreditable | flagFirstBoot

	// A version 1 record: no binding, the checksum right after the seed.
	recordVersion1 = 1
	offChecksumV1  = offDiskGUID
	recordSizeV1   = offChecksumV1 + sha256.Size
	knownFlagsV1   = flagCreditable
)

// recordMagic starts every record. Like PNG's signature it has a high-bit
// byte and a newline so that 7-bit or text-mode mangling is caught, and it is
// 8 bytes so that random data (the legacy Tails sector) matches it with
// probability 2⁻⁶⁴: a location that starts with it was written by us.
var recordMagic = [8]byte{0x89, 'E', 'G', 'S', 'E', 'E', 'D', '\n'}

var (
	// ErrNotRecord: the bytes do not start with our magic — an empty
	// location or someone else's data.
	ErrNotRecord = errors.New("not a seed record")
	// ErrChecksum: our magic, but the checksum does not match or the record
	// is truncated — a torn or damaged record of ours.
	ErrChecksum = errors.New("seed record checksum mismatch")
	// ErrVersion: our magic, but a version or flags this code does not know —
	// written by a newer entropy-gate.
	ErrVersion = errors.New("unsupported seed record version")
)

// secret holds key material out of reach of printing. A Format method alone
// is not enough: fmt ignores methods of values in unexported fields and
// prints them by reflection, and for a pointer with a verb like %s it even
// dereferences it. A func value it prints as a code address whatever the verb
// or depth, reflection cannot see the variables a closure captured, and
// encoding/json skips func-typed and unexported fields.
type secret func() []byte

func newSecret(b []byte) secret {
	c := append([]byte(nil), b...)
	return func() []byte { return c }
}

// Record is one seed with its metadata. The zero Record holds no seed and
// cannot be encoded. Its methods print a summary; the seed itself is a
// secret, so not even a Record in another type's unexported field leaks it.
type Record struct {
	// Version is the format the record was read in: 2 (RecordSize bytes,
	// bound to a medium) or 1 (bound to nothing, never credited). A record
	// is always written in version 2.
	Version int
	// Generation counts writes. It starts at a random value, so one image
	// of a stick does not tell how often it was booted.
	Generation uint64
	// Creditable says the seed was made while the kernel CRNG was
	// initialized; only such a seed may ever be credited.
	Creditable bool
	// Binding is the medium the record was written for. A backend sets it
	// when it stores the record, from what it finds there.
	Binding Binding

	seed secret

	// origin is what the backend saw when it loaded the record this one
	// replaces (NextRecord carries it over): Store checks that the location
	// still holds it before writing.
	origin any
}

// ParseRecord parses the record at the start of b; bytes after the record
// (the padding of a sector) are ignored. The error wraps ErrNotRecord,
// ErrChecksum or ErrVersion and never contains seed bytes.
func ParseRecord(b []byte) (Record, error) {
	if !hasMagic(b) {
		return Record{}, ErrNotRecord
	}
	if len(b) < offFlags {
		return Record{}, fmt.Errorf("%w: truncated to %d bytes", ErrChecksum, len(b))
	}
	version := binary.LittleEndian.Uint16(b[offVersion:])
	var size, sumAt int
	var known uint16
	switch version {
	case recordVersion:
		size, sumAt, known = RecordSize, offChecksum, knownFlags
	case recordVersion1:
		size, sumAt, known = recordSizeV1, offChecksumV1, knownFlagsV1
	default:
		return Record{}, fmt.Errorf("%w %d", ErrVersion, version)
	}
	if len(b) < size {
		return Record{}, fmt.Errorf("%w: truncated to %d of %d bytes", ErrChecksum, len(b), size)
	}
	sum := sha256.Sum256(b[:sumAt])
	if subtle.ConstantTimeCompare(sum[:], b[sumAt:size]) != 1 {
		return Record{}, ErrChecksum
	}
	flags := binary.LittleEndian.Uint16(b[offFlags:])
	if flags&^known != 0 {
		// An unknown flag may restrict use (say, "never credit"): do not
		// guess what it means.
		return Record{}, fmt.Errorf("%w: unknown flags %#04x", ErrVersion, flags)
	}
	r := Record{
		Version:    int(version),
		Generation: binary.LittleEndian.Uint64(b[offGeneration:]),
		Creditable: flags&flagCreditable != 0,
		seed:       newSecret(b[offSeed : offSeed+SeedSize]),
	}
	if version == recordVersion {
		r.Binding = decodeBinding(b, flags&flagFirstBoot != 0)
	}
	return r, nil
}

func hasMagic(b []byte) bool {
	return len(b) >= len(recordMagic) && bytes.Equal(b[:len(recordMagic)], recordMagic[:])
}

// Encode returns the RecordSize bytes of r, in the current version
// whatever r.Version says. The result contains the seed: write it, never
// print it.
func (r Record) Encode() ([]byte, error) {
	if r.seed == nil {
		return nil, errors.New("encode seed record: record holds no seed")
	}
	b := make([]byte, RecordSize)
	copy(b, recordMagic[:])
	binary.LittleEndian.PutUint16(b[offVersion:], recordVersion)
	var flags uint16
	if r.Creditable {
		flags |= flagCreditable
	}
	if r.Binding.FirstBoot {
		flags |= flagFirstBoot
	}
	binary.LittleEndian.PutUint16(b[offFlags:], flags)
	binary.LittleEndian.PutUint64(b[offGeneration:], r.Generation)
	copy(b[offSeed:], r.seed())
	r.Binding.encode(b)
	sum := sha256.Sum256(b[:offChecksum])
	copy(b[offChecksum:], sum[:])
	return b, nil
}

// String describes r without its seed.
func (r Record) String() string {
	if r.seed == nil {
		return "empty seed record"
	}
	return fmt.Sprintf("seed record v%d, generation %d, creditable %t, %s", r.version(), r.Generation, r.Creditable, r.Binding)
}

// version is the version r was read in, or will be written in.
func (r Record) version() int {
	if r.Version == 0 {
		return recordVersion
	}
	return r.Version
}

// GoString is the %#v form, without the seed.
func (r Record) GoString() string {
	return fmt.Sprintf("seeders.Record{Version:%d, Generation:%#x, Creditable:%t, Binding:%#v, seed:redacted}", r.Version, r.Generation, r.Creditable, r.Binding)
}

// Format prints r for every verb (%x and %d included) as String, or as
// GoString for %#v, so no verb reaches the seed.
func (r Record) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, r.GoString())
		return
	}
	io.WriteString(f, r.String())
}

// MarshalJSON encodes r's metadata, or null for the zero Record; the seed is
// left out.
func (r Record) MarshalJSON() ([]byte, error) {
	if r.seed == nil {
		return []byte("null"), nil
	}
	return json.Marshal(struct {
		Version    int     `json:"version"`
		Generation uint64  `json:"generation"`
		Creditable bool    `json:"creditable"`
		Binding    Binding `json:"binding"`
	}{r.version(), r.Generation, r.Creditable, r.Binding})
}
