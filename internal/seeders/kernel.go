// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
)

// Kernel is what the seeders need from the kernel's random number generator.
type Kernel interface {
	// Credit mixes seed into the input pool and credits bits of entropy
	// (RNDADDENTROPY).
	Credit(seed []byte, bits int) error
	// Mix mixes seed into the input pool without credit (a write to
	// /dev/urandom).
	Mix(seed []byte) error
	// Ready reports whether the CRNG is initialized, by getrandom's word
	// (GRND_NONBLOCK).
	Ready() (bool, error)
	// Random fills buf from the CRNG without waiting for it to be
	// initialized (GRND_INSECURE, or /dev/urandom where that is missing).
	// Callers that need initialized output ask Ready first.
	Random(buf []byte) error
}

var _ Kernel = (*FakeKernel)(nil)

// FakeKernel is an in-memory Kernel for tests. It models a 5.18+ kernel: a
// credit of 256 bits or more initializes the CRNG. It records which calls
// were made and a SHA-256 digest of their bytes, never the bytes themselves.
type FakeKernel struct {
	// Initialized is the CRNG state Ready reports.
	Initialized bool
	// Source feeds Random; nil means crypto/rand.
	Source io.Reader
	// OnCredit, if set, runs before a credit takes effect; an error fails
	// the credit. Tests use it to look at the medium at credit time.
	OnCredit func() error
	// Errors to return from each operation.
	CreditErr, MixErr, ReadyErr, RandomErr error

	mu    sync.Mutex
	calls []Call
}

// Op names a Kernel operation.
type Op string

// The operations FakeKernel records.
const (
	OpCredit Op = "credit"
	OpMix    Op = "mix"
	OpReady  Op = "ready"
	OpRandom Op = "random"
)

// Call is one recorded Kernel call.
type Call struct {
	Op   Op
	Len  int // bytes passed or requested
	Bits int // credited bits (OpCredit)

	digest [sha256.Size]byte
}

// Carries reports whether the call passed exactly the bytes b.
func (c Call) Carries(b []byte) bool {
	return c.digest == sha256.Sum256(b)
}

// String describes the call without its bytes or their digest.
func (c Call) String() string {
	if c.Op == OpCredit {
		return fmt.Sprintf("credit(%d bytes, %d bits)", c.Len, c.Bits)
	}
	return fmt.Sprintf("%s(%d bytes)", c.Op, c.Len)
}

// Calls returns the calls so far, oldest first.
func (f *FakeKernel) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// CallsOf returns the calls of one operation, oldest first.
func (f *FakeKernel) CallsOf(op Op) []Call {
	var out []Call
	for _, c := range f.Calls() {
		if c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

func (f *FakeKernel) record(op Op, b []byte, bits int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Op: op, Len: len(b), Bits: bits, digest: sha256.Sum256(b)})
}

// Credit records the call and initializes the CRNG from 256 bits on.
func (f *FakeKernel) Credit(seed []byte, bits int) error {
	if f.OnCredit != nil {
		if err := f.OnCredit(); err != nil {
			return err
		}
	}
	if f.CreditErr != nil {
		return f.CreditErr
	}
	f.record(OpCredit, seed, bits)
	f.mu.Lock()
	defer f.mu.Unlock()
	if bits >= 256 {
		f.Initialized = true
	}
	return nil
}

// Mix records the call.
func (f *FakeKernel) Mix(seed []byte) error {
	if f.MixErr != nil {
		return f.MixErr
	}
	f.record(OpMix, seed, 0)
	return nil
}

// Ready reports Initialized.
func (f *FakeKernel) Ready() (bool, error) {
	f.record(OpReady, nil, 0)
	if f.ReadyErr != nil {
		return false, f.ReadyErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Initialized, nil
}

// Random fills buf from Source.
func (f *FakeKernel) Random(buf []byte) error {
	if f.RandomErr != nil {
		return f.RandomErr
	}
	src := f.Source
	if src == nil {
		src = rand.Reader
	}
	if _, err := io.ReadFull(src, buf); err != nil {
		return fmt.Errorf("fake random: %w", err)
	}
	f.record(OpRandom, buf, 0)
	return nil
}
