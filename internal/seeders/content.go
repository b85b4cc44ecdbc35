// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"errors"
	"fmt"
)

// Content says what a seed location holds.
type Content int

const (
	// ContentUnknown: the location was not read (the zero value).
	ContentUnknown Content = iota
	// ContentEmpty: nothing stored yet — an all-zero sector or a missing
	// file. Nothing to mix; ours to write.
	ContentEmpty
	// ContentRecord: a valid record of ours.
	ContentRecord
	// ContentTorn: starts with our magic but does not parse (torn write,
	// damage, a newer version). Ours to replace, so that a crash in the
	// middle of a write cannot disable the location for good; mixed, never
	// credited.
	ContentTorn
	// ContentForeign: someone else's bytes, accepted only under ForeignMix
	// (the Tails 6.4 raw random sector, a seed file we did not write).
	// Mixed, never credited, then replaced.
	ContentForeign
)

var contentNames = [...]string{
	ContentUnknown: "unknown",
	ContentEmpty:   "empty",
	ContentRecord:  "record",
	ContentTorn:    "torn",
	ContentForeign: "foreign",
}

func (c Content) String() string {
	if c < 0 || int(c) >= len(contentNames) {
		return fmt.Sprintf("Content(%d)", int(c))
	}
	return contentNames[c]
}

// MarshalText makes Content read as its name in JSON.
func (c Content) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a name MarshalText wrote.
func (c *Content) UnmarshalText(b []byte) error {
	for i, name := range contentNames {
		if string(b) == name {
			*c = Content(i)
			return nil
		}
	}
	return fmt.Errorf("unknown seed content %q", b)
}

// ForeignPolicy says what to do with a location that holds data that is not
// ours.
type ForeignPolicy int

const (
	// ForeignRefuse leaves foreign data alone: no read for the kernel, no
	// write (DESIGN rule 5).
	ForeignRefuse ForeignPolicy = iota
	// ForeignMix mixes foreign data (never credits it) and replaces it with
	// our record: for a location known to be ours whatever it holds, like a
	// seed file path or the legacy Tails sector (LegacySector=mix).
	ForeignMix
)

// ErrForeign: the location holds data that is not ours, and the policy says
// to leave it alone.
var ErrForeign error = refusal("sector holds data that is not ours")

// Loaded is what a backend found at its location. Like Record it keeps the
// bytes it found as a secret, which never prints.
type Loaded struct {
	Content Content
	// Record is the parsed record when Content is ContentRecord.
	Record Record
	// Damage says why a ContentTorn location did not parse (wraps
	// ErrChecksum or ErrVersion).
	Damage error
	// ReadOnly: the medium cannot be written, so no replacement can be
	// made and nothing may be credited (DESIGN rules 2 and 3).
	ReadOnly bool
	// NoCredit, when set, says why this location must never be credited
	// even with a valid, creditable record (a seed shipped in a published
	// image, a seed file others can read).
	NoCredit string

	// found is what to mix and to chain into the next seed: the seed of a
	// valid record, or the raw bytes of torn or foreign content.
	found secret
	// origin is the backend's record of what it saw, for its Store to
	// check against (see Record.origin).
	origin any
}

// Classify says what the bytes read from a seed location are. Foreign data
// is an error wrapping ErrForeign under ForeignRefuse.
func Classify(b []byte, foreign ForeignPolicy) (Loaded, error) {
	if allZero(b) {
		return Loaded{Content: ContentEmpty}, nil
	}
	rec, err := ParseRecord(b)
	switch {
	case err == nil:
		return Loaded{Content: ContentRecord, Record: rec, found: rec.seed}, nil
	case !errors.Is(err, ErrNotRecord):
		return Loaded{Content: ContentTorn, Damage: err, found: newSecret(b)}, nil
	case foreign == ForeignMix:
		return Loaded{Content: ContentForeign, found: newSecret(b)}, nil
	default:
		return Loaded{}, ErrForeign
	}
}

// Release closes what Load keeps open for Store (a seed file, so that
// Store can tell it was not moved or replaced). Seeder calls it when it is
// done; other callers of Load should too. Releasing twice is harmless.
func (l Loaded) Release() {
	if o, ok := l.origin.(interface{ release() }); ok {
		o.release()
	}
}

// material returns the bytes to mix and to chain into the next seed; nil
// for an empty location.
func (l Loaded) material() []byte {
	if l.found == nil {
		return nil
	}
	return l.found()
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
