// SPDX-License-Identifier: GPL-3.0-or-later

package pool

import (
	"context"
	"crypto/rand"
	"sync"
)

// Fake is an in-memory Pool for tests, made by NewFake. Crediting enough
// bits initializes its CRNG, the way a real kernel would.
type Fake struct {
	mu sync.Mutex
	// readiness and the counters are guarded by mu.
	readiness Readiness
	readyErr  error
	state     State
	// readyCh is closed when readiness becomes Ready.
	readyCh chan struct{}

	credits []Credit
	mixes   []int
	// CreditErr, when set, is returned by Credit instead of crediting.
	CreditErr error
	// MixErr, when set, is returned by Mix.
	MixErr error
}

// Credit records one RNDADDENTROPY call on a Fake: its sizes, never its
// bytes.
type Credit struct {
	Bytes int
	Bits  int
}

var _ Pool = (*Fake)(nil)

// NewFake returns a Fake kernel with the given counters that is not ready.
func NewFake(s State) *Fake {
	return &Fake{readiness: NotReady, state: s, readyCh: make(chan struct{})}
}

// SetReady initializes the fake CRNG and wakes every waiter.
func (f *Fake) SetReady() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setReadyLocked()
}

func (f *Fake) setReadyLocked() {
	if f.readiness != Ready {
		f.readiness = Ready
		f.readyErr = nil
		close(f.readyCh)
	}
}

// SetUnknown makes readiness unknown with the given reason.
func (f *Fake) SetUnknown(reason error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readiness, f.readyErr = Unknown, reason
}

// SetEntropyAvail sets entropy_avail.
func (f *Fake) SetEntropyAvail(bits int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state.EntropyAvail = bits
}

// Ready implements Pool.
func (f *Fake) Ready() (Readiness, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readiness, f.readyErr
}

// State implements Pool.
func (f *Fake) State() (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, nil
}

// Wait implements Pool; both modes behave alike on a Fake.
func (f *Fake) Wait(ctx context.Context, _ WaitMode) error {
	f.mu.Lock()
	ch, r, err := f.readyCh, f.readiness, f.readyErr
	f.mu.Unlock()
	if r == Unknown {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Credit implements Pool. It adds bits to entropy_avail, up to the pool
// size, and initializes the CRNG once the semantics' init bits are reached.
func (f *Fake) Credit(seed []byte, bits int) error {
	if _, err := randPoolInfo(seed, bits); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.CreditErr != nil {
		return f.CreditErr
	}
	f.credits = append(f.credits, Credit{Bytes: len(seed), Bits: bits})
	avail := max(f.state.EntropyAvail, 0) + bits
	if f.state.PoolSize > 0 {
		avail = min(avail, f.state.PoolSize)
	}
	f.state.EntropyAvail = avail
	if init := f.state.Semantics.InitBits(); init > 0 && avail >= init {
		f.setReadyLocked()
	}
	return nil
}

// Mix implements Pool.
func (f *Fake) Mix(seed []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.MixErr != nil {
		return f.MixErr
	}
	f.mixes = append(f.mixes, len(seed))
	return nil
}

// Random implements Pool with the host's random numbers: a Fake stands
// for a kernel in tests, whose host is long initialized.
func (f *Fake) Random(buf []byte) error {
	_, err := rand.Read(buf)
	return err
}

// Credits returns the RNDADDENTROPY calls made so far.
func (f *Fake) Credits() []Credit {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Credit(nil), f.credits...)
}

// Mixes returns the sizes of the seeds mixed so far.
func (f *Fake) Mixes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.mixes...)
}
