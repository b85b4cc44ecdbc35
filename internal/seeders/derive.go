// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// seedDomain separates our seed hash from every other use of SHA-256.
const seedDomain = "entropy-gate seed v1\x00"

// Env supplies the non-secret inputs of a new seed. A nil field reads the
// running system; tests inject fixed values.
type Env struct {
	// Clocks returns CLOCK_REALTIME, CLOCK_MONOTONIC and CLOCK_BOOTTIME in
	// nanoseconds.
	Clocks func() [3]int64
	// BootID returns the kernel's boot id; nil reads it (pool.Roots).
	BootID func() ([]byte, error)
}

func (e Env) clocks() [3]int64 {
	if e.Clocks != nil {
		return e.Clocks()
	}
	var out [3]int64
	for i, id := range [...]int32{unix.CLOCK_REALTIME, unix.CLOCK_MONOTONIC, unix.CLOCK_BOOTTIME} {
		var ts unix.Timespec
		if unix.ClockGettime(id, &ts) == nil {
			out[i] = ts.Nano()
		}
	}
	return out
}

func (e Env) bootID() []byte {
	read := e.BootID
	if read == nil {
		read = pool.Roots{}.BootID
	}
	id, err := read()
	if err != nil {
		// The boot id only makes inputs unique across boots; the old seed
		// and fresh kernel randomness carry the secret. Losing it must not
		// cost the refresh, and with it the credit.
		return nil
	}
	return id
}

// NextRecord derives the record that replaces prev (DESIGN rule 4):
//
//	seed = SHA-256(domain ‖ prev material ‖ 32 bytes of getrandom ‖
//	               realtime ‖ monotonic ‖ boottime ‖ boot id ‖ generation)
//
// with every variable-length field length-prefixed. The new seed is never
// weaker than the old one: prev's seed (or the raw bytes of a torn or
// foreign location) is hashed in. It is creditable iff the CRNG was
// initialized before the fresh bytes were read; a failed probe counts as not
// initialized. The backend binds it to its medium when it stores it, after
// checking that the location still holds what prev was loaded from.
func NextRecord(k Kernel, env Env, prev Loaded) (Record, error) {
	ready, err := k.Ready()
	ready = ready && err == nil

	var fresh [SeedSize]byte
	defer clear(fresh[:])
	if err := k.Random(fresh[:]); err != nil {
		return Record{}, fmt.Errorf("read fresh random bytes: %w", err)
	}

	gen, err := nextGeneration(k, prev)
	if err != nil {
		return Record{}, err
	}

	h := sha256.New()
	h.Write([]byte(seedDomain))
	writeField(h, prev.material())
	writeField(h, fresh[:])
	for _, ns := range env.clocks() {
		writeUint64(h, uint64(ns))
	}
	writeField(h, env.bootID())
	writeUint64(h, gen)

	return Record{Version: recordVersion, Generation: gen, Creditable: ready, seed: newSecret(h.Sum(nil)), origin: prev.origin}, nil
}

// nextGeneration continues prev's count, or starts at a random value so the
// count does not reveal how often a stick was used.
func nextGeneration(k Kernel, prev Loaded) (uint64, error) {
	if prev.Content == ContentRecord {
		return prev.Record.Generation + 1, nil
	}
	var b [8]byte
	if err := k.Random(b[:]); err != nil {
		return 0, fmt.Errorf("read random generation start: %w", err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

func writeField(h hash.Hash, b []byte) {
	writeUint64(h, uint64(len(b)))
	h.Write(b)
}

func writeUint64(h hash.Hash, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	h.Write(b[:])
}
