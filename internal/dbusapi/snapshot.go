// SPDX-License-Identifier: GPL-3.0-or-later

package dbusapi

import (
	"maps"
	"math"

	"github.com/godbus/dbus/v5"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// UnknownBits is EntropyAvail when the kernel does not report it: the
// property is unsigned, so "unknown" is its largest value.
const UnknownBits = math.MaxUint32

// GateDegraded is GateState when the gate opened because its timeout
// expired under OnTimeout=open, not because the pool was ready. Its other
// values are the view's (gatestate.View.GateState).
const GateDegraded = "degraded"

// Snapshot is what the properties say at one moment.
type Snapshot struct {
	// Ready is the gate's rule applied now (gatestate.Opens), as in
	// `entropy-gate status`.
	Ready           bool
	CRNGInitialized bool
	// EntropyAvail is in bits, UnknownBits when unknown.
	EntropyAvail uint32
	// Threshold is the configured threshold after clamping to the pool.
	Threshold uint32
	// GateState is a gatestate.Phase, GateDegraded instead of "open" when
	// the gate opened by timeout, gatestate.NotRun or gatestate.Unknown.
	GateState string
	// Seeds are the seed backends' results by backend name.
	Seeds map[string]gatestate.SeedSummary
}

// seedDict is one backend's summary as the Seeds property carries it: a
// dictionary (a{sv}), so that keys can be added without changing the
// property's type.
func seedDict(r gatestate.SeedSummary) map[string]dbus.Variant {
	return map[string]dbus.Variant{
		"loaded":        dbus.MakeVariant(r.Loaded),
		"credited_bits": dbus.MakeVariant(uint32(r.CreditedBits)),
		"mixed":         dbus.MakeVariant(r.Mixed),
		"refreshed":     dbus.MakeVariant(r.Refreshed),
		"error":         dbus.MakeVariant(r.Error),
	}
}

// Property names, as on the bus.
const (
	propReady           = "Ready"
	propCRNGInitialized = "CrngInitialized"
	propEntropyAvail    = "EntropyAvail"
	propThreshold       = "Threshold"
	propGateState       = "GateState"
	propSeeds           = "Seeds"
)

// properties returns every property's value; Seeds has the signature
// a{sa{sv}} even when empty.
func (s Snapshot) properties() map[string]dbus.Variant {
	seeds := make(map[string]map[string]dbus.Variant, len(s.Seeds))
	for name, r := range s.Seeds {
		seeds[name] = seedDict(r)
	}
	return map[string]dbus.Variant{
		propReady:           dbus.MakeVariant(s.Ready),
		propCRNGInitialized: dbus.MakeVariant(s.CRNGInitialized),
		propEntropyAvail:    dbus.MakeVariant(s.EntropyAvail),
		propThreshold:       dbus.MakeVariant(s.Threshold),
		propGateState:       dbus.MakeVariant(s.GateState),
		propSeeds:           dbus.MakeVariant(seeds),
	}
}

// changedProperties returns the properties of next that differ from
// prev, for PropertiesChanged.
func changedProperties(prev, next Snapshot) map[string]dbus.Variant {
	all := next.properties()
	changed := make(map[string]dbus.Variant)
	set := func(name string, differs bool) {
		if differs {
			changed[name] = all[name]
		}
	}
	set(propReady, prev.Ready != next.Ready)
	set(propCRNGInitialized, prev.CRNGInitialized != next.CRNGInitialized)
	set(propEntropyAvail, prev.EntropyAvail != next.EntropyAvail)
	set(propThreshold, prev.Threshold != next.Threshold)
	set(propGateState, prev.GateState != next.GateState)
	set(propSeeds, !maps.Equal(prev.Seeds, next.Seeds))
	return changed
}

// problems are the reasons a snapshot is incomplete, for the log.
type problems struct {
	readiness, counters, gateState error
}

// readSnapshot reads the gate's public view with the configured
// threshold.
func readSnapshot(p pool.Pool, statePath string, threshold int) (Snapshot, problems) {
	v := gatestate.ReadView(p, statePath, threshold)
	snap := Snapshot{
		Ready:           v.Ready(),
		CRNGInitialized: v.CRNGInitialized(),
		EntropyAvail:    bitsProperty(v.Kernel.EntropyAvail),
		Threshold:       bitsProperty(v.Threshold),
		GateState:       v.GateState(),
		Seeds:           v.Seeds(),
	}
	if v.GateErr == nil && v.Gate.Phase == gatestate.Open && v.Gate.Outcome == gatestate.Timeout {
		snap.GateState = GateDegraded
	}
	return snap, problems{readiness: v.ReadinessErr, counters: v.KernelErr, gateState: v.StateFileProblem()}
}

// bitsProperty maps a kernel counter to the unsigned property, -1 (or
// anything out of range) to UnknownBits.
func bitsProperty(n int) uint32 {
	if n < 0 || n >= UnknownBits {
		return UnknownBits
	}
	return uint32(n)
}
