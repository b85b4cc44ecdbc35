// SPDX-License-Identifier: GPL-3.0-or-later

package gatestate

import (
	"errors"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

// Opens is the gate's rule: getrandom says the CRNG is initialized, and
// the threshold is met where the kernel reports a number to meet.
func Opens(crngInitialized bool, entropyAvail, threshold int) bool {
	return crngInitialized && (threshold == 0 || entropyAvail < 0 || entropyAvail >= threshold)
}

// EffectiveThreshold lowers a threshold the kernel can never reach to the
// pool size (on modern kernels entropy_avail stops at 256 bits), and says
// whether it did.
func EffectiveThreshold(threshold int, s pool.State) (int, bool) {
	size := s.PoolSize
	if s.Semantics == pool.Modern {
		size = pool.ModernPoolSize
	}
	if size > 0 && threshold > size {
		return size, true
	}
	return threshold, false
}

// Gate states beyond the gate's own phases, for readers of the view.
const (
	// NotRun: there is no state file, the gate has not run this boot.
	NotRun = "not-run"
	// Unknown: the state file cannot be read or parsed.
	Unknown = "unknown"
)

// View is the gate's public view at one moment, the one reading that
// `status`, the D-Bus service and the notifier share: the kernel now, the
// gate's rule applied to it with the configured threshold, and the gate's
// state file.
type View struct {
	Readiness pool.Readiness
	// ReadinessErr says why Readiness is Unknown.
	ReadinessErr error
	// Kernel holds the entropy counters, unknown ones -1; KernelErr
	// names counters that exist but could not be parsed.
	Kernel    pool.State
	KernelErr error
	// Threshold is the configured threshold after clamping to the pool.
	Threshold int
	// Gate is the state file, with the seed backends' results; GateErr
	// is ErrNotRun when the gate has not run this boot, or why the file
	// could not be read.
	Gate    State
	GateErr error
}

// ReadView reads the kernel and the state file at path, and clamps
// threshold as the gate does.
func ReadView(p pool.Pool, path string, threshold int) View {
	var v View
	v.Readiness, v.ReadinessErr = p.Ready()
	// Unknown counters are -1 even when State reports an error.
	v.Kernel, v.KernelErr = p.State()
	v.Threshold, _ = EffectiveThreshold(threshold, v.Kernel)
	v.Gate, v.GateErr = Read(path)
	return v
}

// CRNGInitialized is getrandom's word.
func (v View) CRNGInitialized() bool { return v.Readiness == pool.Ready }

// Ready is the gate's rule applied now.
func (v View) Ready() bool {
	return Opens(v.CRNGInitialized(), v.Kernel.EntropyAvail, v.Threshold)
}

// GateState is the gate's phase, NotRun without a state file, or Unknown
// when it cannot be read.
func (v View) GateState() string {
	switch {
	case errors.Is(v.GateErr, ErrNotRun):
		return NotRun
	case v.GateErr != nil:
		return Unknown
	}
	return string(v.Gate.Phase)
}

// StateFileProblem is why the state file could not be read, nil when it
// was or when there is none yet.
func (v View) StateFileProblem() error {
	if errors.Is(v.GateErr, ErrNotRun) {
		return nil
	}
	return v.GateErr
}

// SeedSummary is one backend's results this boot in short: what its load
// did with the old seed, and whether its latest write (at load, after
// the gate opened, or at shutdown) succeeded.
type SeedSummary struct {
	// Loaded: a seed was found and read.
	Loaded bool
	// CreditedBits is how much entropy was credited for it.
	CreditedBits int
	// Mixed: it was mixed in without credit.
	Mixed bool
	// Refreshed: the latest replacement was written.
	Refreshed bool
	// Error says what went wrong last, empty if nothing did.
	Error string
}

// Seeds sums up the seed results by backend name.
func (v View) Seeds() map[string]SeedSummary {
	out := make(map[string]SeedSummary)
	for _, s := range v.Gate.Seeds {
		r := out[s.Backend]
		if s.Action == seeders.ActionLoad {
			r.Loaded = s.FoundSeed()
			r.CreditedBits = max(s.CreditedBits, 0)
			r.Mixed = s.Mixed
		}
		r.Refreshed, r.Error = s.Refreshed, s.Error
		out[s.Backend] = r
	}
	return out
}
