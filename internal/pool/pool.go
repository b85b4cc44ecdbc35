// SPDX-License-Identifier: GPL-3.0-or-later

package pool

import (
	"context"
	"errors"
	"fmt"
)

// Pool is the kernel RNG state and the operations entropy-gate needs on it.
type Pool interface {
	// Ready reports whether the CRNG is initialized. Readiness is
	// Unknown, with a non-nil error saying why, when the kernel cannot
	// tell (getrandom missing or forbidden); Unknown is never ready.
	Ready() (Readiness, error)
	// State reads the kernel's entropy counters. Counters that are not
	// available are -1; the error reports counters that exist but could
	// not be parsed.
	State() (State, error)
	// Wait returns nil once the CRNG is initialized, or the context's
	// error once it is done.
	Wait(ctx context.Context, mode WaitMode) error
	// Credit adds seed to the pool and credits bits of entropy for it
	// (RNDADDENTROPY). Only seeds that can never be credited again may
	// be passed here.
	Credit(seed []byte, bits int) error
	// Mix adds seed to the pool without crediting it.
	Mix(seed []byte) error
	// Random fills buf from the CRNG without waiting for it to be
	// initialized: callers that need initialized output ask Ready first.
	Random(buf []byte) error
}

// Readiness is the CRNG's initialization state as getrandom reports it.
type Readiness int

const (
	// Unknown means the kernel could not be asked.
	Unknown Readiness = iota
	// NotReady means getrandom would block.
	NotReady
	// Ready means the CRNG is initialized.
	Ready
)

func (r Readiness) String() string {
	switch r {
	case NotReady:
		return "not-ready"
	case Ready:
		return "ready"
	default:
		return "unknown"
	}
}

// Semantics says which entropy accounting the running kernel uses. It is
// detected from the kernel's behaviour, never from its version string,
// because distributions backport the random driver into old series.
type Semantics int

const (
	// SemanticsUnknown means neither the pool size nor the getrandom
	// flags told which accounting is in force.
	SemanticsUnknown Semantics = iota
	// Legacy is the 4096-bit input pool of kernels up to 5.17, whose
	// entropy_avail is credited and debited.
	Legacy
	// Modern is the 256-bit pool of 5.18 and later (and backports),
	// whose entropy_avail reaches 256 at initialization and stays there.
	Modern
)

func (s Semantics) String() string {
	switch s {
	case Legacy:
		return "legacy"
	case Modern:
		return "modern"
	default:
		return "unknown"
	}
}

// ModernPoolSize is the pool size, in bits, of kernels with modern
// semantics; their CRNG initializes once that many bits were collected.
const ModernPoolSize = 256

// LegacyPoolSize is the input pool size, in bits, of kernels up to 5.17.
const LegacyPoolSize = 4096

// legacyInitBits is how many bits a legacy input pool gathers before the
// kernel seeds its CRNG from it (crng_reseed's threshold).
const legacyInitBits = 128

// InitBits is about how many bits of credited entropy the kernel collects
// before it initializes the CRNG, or -1 when the semantics are unknown. It
// is what progress towards readiness is measured against.
func (s Semantics) InitBits() int {
	switch s {
	case Legacy:
		return legacyInitBits
	case Modern:
		return ModernPoolSize
	default:
		return -1
	}
}

// State is a snapshot of the kernel's entropy counters.
type State struct {
	// EntropyAvail is /proc/sys/kernel/random/entropy_avail in bits,
	// or -1 when unknown.
	EntropyAvail int
	// PoolSize is /proc/sys/kernel/random/poolsize in bits, or -1.
	PoolSize int
	// WriteWakeupThreshold is write_wakeup_threshold in bits, or -1.
	WriteWakeupThreshold int
	// Semantics is the accounting in force.
	Semantics Semantics
	// PollMeansReady is true when POLLIN on /dev/random means "the CRNG
	// is initialized" (5.6 and later, detected by GRND_INSECURE working),
	// so a passive wait can sleep in poll instead of probing.
	PollMeansReady bool
}

// WaitMode selects how Wait waits for the CRNG.
type WaitMode int

const (
	// Passive waits without asking the kernel for anything: it sleeps
	// in poll on /dev/random, or probes with backoff where poll cannot
	// tell readiness. It never makes the kernel generate entropy.
	Passive WaitMode = iota
	// Active blocks in getrandom, which on 5.4 and later makes the
	// kernel generate jitter entropy until the CRNG is initialized.
	Active
)

func (m WaitMode) String() string {
	if m == Active {
		return "active"
	}
	return "passive"
}

// ErrBadMode is returned by ParseWaitMode for anything but "active" or
// "passive".
var ErrBadMode = errors.New(`mode must be "active" or "passive"`)

// ParseWaitMode parses a configuration value.
func ParseWaitMode(s string) (WaitMode, error) {
	switch s {
	case "active":
		return Active, nil
	case "passive":
		return Passive, nil
	}
	return Passive, fmt.Errorf("%q: %w", s, ErrBadMode)
}

// ErrUnknownReadiness wraps the reason the kernel could not be asked
// whether the CRNG is initialized.
var ErrUnknownReadiness = errors.New("crng readiness unknown")
