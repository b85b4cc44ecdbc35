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

// The record layout, version 1 (little-endian, like GPT). docs/seed-format.md
// explains each choice.
const (
	offVersion    = 8
	offFlags      = 10
	offGeneration = 12
	offSeed       = 20
	offChecksum   = offSeed + SeedSize

	// SeedSize is the number of seed bytes in a record: 256 bits, the size of
	// the kernel CRNG's key and the credit that initializes it on every
	// kernel (128 bits on ≤5.17, 256 on 5.18+).
	SeedSize = 32
	// RecordSize is the encoded size of a record; the rest of a sector is
	// zero.
	RecordSize = offChecksum + sha256.Size

	recordVersion  = 1
	flagCreditable = 1 << 0
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
	// Generation counts writes. It starts at a random value, so one image
	// of a stick does not tell how often it was booted.
	Generation uint64
	// Creditable says the seed was made while the kernel CRNG was
	// initialized; only such a seed may ever be credited.
	Creditable bool

	seed secret
}

// ParseRecord parses the record at the start of b; bytes after RecordSize
// (the padding of a sector) are ignored. The error wraps ErrNotRecord,
// ErrChecksum or ErrVersion and never contains seed bytes.
func ParseRecord(b []byte) (Record, error) {
	if !hasMagic(b) {
		return Record{}, ErrNotRecord
	}
	if len(b) < RecordSize {
		return Record{}, fmt.Errorf("%w: truncated to %d of %d bytes", ErrChecksum, len(b), RecordSize)
	}
	if v := binary.LittleEndian.Uint16(b[offVersion:]); v != recordVersion {
		return Record{}, fmt.Errorf("%w %d", ErrVersion, v)
	}
	sum := sha256.Sum256(b[:offChecksum])
	if subtle.ConstantTimeCompare(sum[:], b[offChecksum:RecordSize]) != 1 {
		return Record{}, ErrChecksum
	}
	flags := binary.LittleEndian.Uint16(b[offFlags:])
	if flags&^flagCreditable != 0 {
		// An unknown flag may restrict use (say, "never credit"): do not
		// guess what it means.
		return Record{}, fmt.Errorf("%w: unknown flags %#04x", ErrVersion, flags)
	}
	return Record{
		Generation: binary.LittleEndian.Uint64(b[offGeneration:]),
		Creditable: flags&flagCreditable != 0,
		seed:       newSecret(b[offSeed:offChecksum]),
	}, nil
}

func hasMagic(b []byte) bool {
	return len(b) >= len(recordMagic) && bytes.Equal(b[:len(recordMagic)], recordMagic[:])
}

// Encode returns the RecordSize bytes of r. The result contains the seed:
// write it, never print it.
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
	binary.LittleEndian.PutUint16(b[offFlags:], flags)
	binary.LittleEndian.PutUint64(b[offGeneration:], r.Generation)
	copy(b[offSeed:], r.seed())
	sum := sha256.Sum256(b[:offChecksum])
	copy(b[offChecksum:], sum[:])
	return b, nil
}

// String describes r without its seed.
func (r Record) String() string {
	if r.seed == nil {
		return "empty seed record"
	}
	return fmt.Sprintf("seed record v%d, generation %d, creditable %t", recordVersion, r.Generation, r.Creditable)
}

// GoString is the %#v form, without the seed.
func (r Record) GoString() string {
	return fmt.Sprintf("seeders.Record{Generation:%#x, Creditable:%t, seed:redacted}", r.Generation, r.Creditable)
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
		Version    int    `json:"version"`
		Generation uint64 `json:"generation"`
		Creditable bool   `json:"creditable"`
	}{recordVersion, r.Generation, r.Creditable})
}
