// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// constReader yields the same byte forever: a deterministic "getrandom".
type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

func fixedEnv(clocks [3]int64, bootID string) Env {
	return Env{
		Clocks: func() [3]int64 { return clocks },
		BootID: func() ([]byte, error) { return []byte(bootID), nil },
	}
}

func TestNextRecordInputs(t *testing.T) {
	base := struct {
		prev   Loaded
		fresh  byte
		clocks [3]int64
		bootID string
	}{
		prev:   mustClassify(t, mustEncode(t, testRecord(1, 10, true))),
		fresh:  0x33,
		clocks: [3]int64{1_700_000_000_000_000_000, 5_000_000_000, 6_000_000_000},
		bootID: "2b8c4f0e-3c0a-4e6b-9a55-7f1b2a9d0c11\n",
	}
	derive := func(t *testing.T, prev Loaded, fresh byte, clocks [3]int64, bootID string) Record {
		t.Helper()
		k := &FakeKernel{Initialized: true, Source: constReader(fresh)}
		rec, err := NextRecord(k, fixedEnv(clocks, bootID), prev)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	ref := derive(t, base.prev, base.fresh, base.clocks, base.bootID)
	if again := derive(t, base.prev, base.fresh, base.clocks, base.bootID); !bytes.Equal(again.seed(), ref.seed()) {
		t.Fatal("same inputs gave different seeds: the derivation reads something it should not")
	}
	if bytes.Equal(ref.seed(), base.prev.Record.seed()) {
		t.Fatal("new seed equals the old one")
	}
	if ref.Generation != 11 {
		t.Fatalf("Generation = %d, want the old one plus 1", ref.Generation)
	}

	otherPrev := mustClassify(t, mustEncode(t, testRecord(2, 10, true)))
	tests := []struct {
		name string
		rec  Record
	}{
		{name: "old seed", rec: derive(t, otherPrev, base.fresh, base.clocks, base.bootID)},
		{name: "fresh random", rec: derive(t, base.prev, base.fresh+1, base.clocks, base.bootID)},
		{name: "realtime", rec: derive(t, base.prev, base.fresh, [3]int64{base.clocks[0] + 1, base.clocks[1], base.clocks[2]}, base.bootID)},
		{name: "monotonic", rec: derive(t, base.prev, base.fresh, [3]int64{base.clocks[0], base.clocks[1] + 1, base.clocks[2]}, base.bootID)},
		{name: "boottime", rec: derive(t, base.prev, base.fresh, [3]int64{base.clocks[0], base.clocks[1], base.clocks[2] + 1}, base.bootID)},
		{name: "boot id", rec: derive(t, base.prev, base.fresh, base.clocks, "another boot\n")},
		{name: "generation", rec: derive(t, mustClassify(t, mustEncode(t, testRecord(1, 11, true))), base.fresh, base.clocks, base.bootID)},
		{name: "torn old content", rec: derive(t, mustClassify(t, append(mustEncode(t, testRecord(1, 10, true))[:70], make([]byte, 442)...)), base.fresh, base.clocks, base.bootID)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Equal(tt.rec.seed(), ref.seed()) {
				t.Fatalf("changing the %s did not change the seed", tt.name)
			}
		})
	}
}

func TestNextRecordCreditable(t *testing.T) {
	prev := mustClassify(t, mustEncode(t, testRecord(1, 1, true)))
	tests := []struct {
		name     string
		kernel   *FakeKernel
		want     bool
		wantFail bool
	}{
		{name: "CRNG initialized", kernel: &FakeKernel{Initialized: true}, want: true},
		{name: "CRNG not initialized", kernel: &FakeKernel{}, want: false},
		{name: "probe failed counts as not initialized", kernel: &FakeKernel{Initialized: true, ReadyErr: errors.New("probe")}, want: false},
		{name: "no random bytes, no record", kernel: &FakeKernel{Initialized: true, RandomErr: errors.New("getrandom")}, wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := NextRecord(tt.kernel, Env{}, prev)
			if tt.wantFail {
				if err == nil {
					t.Fatal("NextRecord succeeded without fresh randomness")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Creditable != tt.want {
				t.Fatalf("Creditable = %t, want %t", rec.Creditable, tt.want)
			}
			calls := tt.kernel.Calls()
			if len(calls) < 2 || calls[0].Op != OpReady || calls[1].Op != OpRandom {
				t.Fatalf("calls = %v, want the readiness probe before the fresh bytes are read", calls)
			}
		})
	}
}

func TestNextRecordGenerationStart(t *testing.T) {
	tests := []struct {
		name string
		prev Loaded
	}{
		{name: "empty", prev: Loaded{Content: ContentEmpty}},
		{name: "torn", prev: mustClassify(t, append(recordMagic[:], make([]byte, 504)...))},
		{name: "foreign", prev: mustClassifyForeign(t, []byte("legacy random sector"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[uint64]bool{}
			for range 4 {
				rec, err := NextRecord(&FakeKernel{}, Env{}, tt.prev)
				if err != nil {
					t.Fatal(err)
				}
				seen[rec.Generation] = true
			}
			// Four draws of a random 64-bit start collide with
			// probability ~2⁻⁶¹; a fixed start always does.
			if len(seen) != 4 {
				t.Fatalf("generation starts %v: want a random start, not a count from a fixed origin", seen)
			}
		})
	}
}

func TestNextRecordSystemEnv(t *testing.T) {
	if _, err := os.Stat("/proc/sys/kernel/random/boot_id"); err != nil {
		t.Skip("no /proc/sys/kernel/random/boot_id: needs Linux procfs")
	}
	env := Env{}
	c := env.clocks()
	for i, ns := range c {
		if ns <= 0 {
			t.Fatalf("clock %d = %d, want a positive reading", i, ns)
		}
	}
	if id := env.bootID(); len(id) < 36 {
		t.Fatalf("boot id = %d bytes, want a UUID", len(id))
	}
}
