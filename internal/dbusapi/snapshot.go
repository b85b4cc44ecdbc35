package dbusapi

import (
	"errors"
	"maps"
	"math"

	"github.com/godbus/dbus/v5"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// UnknownBits is EntropyAvail when the kernel does not report it: the
// property is unsigned, so "unknown" is its largest value.
const UnknownBits = math.MaxUint32

// GateState values beyond the gate's own phases (gatestate.Phase).
const (
	// GateNotRun: there is no state file, the gate has not run this boot.
	GateNotRun = "not-run"
	// GateUnknown: the state file cannot be read or parsed.
	GateUnknown = "unknown"
	// GateDegraded: the gate opened because its timeout expired under
	// OnTimeout=open, not because the pool was ready.
	GateDegraded = "degraded"
)

// Snapshot is what the properties say at one moment.
type Snapshot struct {
	// Ready is the gate's rule applied now (gate.Opens), as in
	// `entropy-gate status`.
	Ready           bool
	CRNGInitialized bool
	// EntropyAvail is in bits, UnknownBits when unknown.
	EntropyAvail uint32
	// Threshold is the configured threshold after clamping to the pool.
	Threshold uint32
	// GateState is a gatestate.Phase, GateDegraded instead of "open" when
	// the gate opened by timeout, GateNotRun or GateUnknown.
	GateState string
	// Seeds are the seed backends' results by backend name.
	Seeds map[string]SeedResult
}

// SeedResult is one seed backend's result, as the Seeds property carries
// it: a dictionary (a{sv}) with these keys, so that keys can be added
// without changing the property's type.
type SeedResult struct {
	// Loaded: a seed was found and read.
	Loaded bool
	// CreditedBits is how much entropy was credited for it.
	CreditedBits uint32
	// Mixed: it was mixed in without credit.
	Mixed bool
	// Refreshed: a replacement seed was written.
	Refreshed bool
	// Error says what went wrong, empty if nothing did.
	Error string
}

func (r SeedResult) dict() map[string]dbus.Variant {
	return map[string]dbus.Variant{
		"loaded":        dbus.MakeVariant(r.Loaded),
		"credited_bits": dbus.MakeVariant(r.CreditedBits),
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
		seeds[name] = r.dict()
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

// readSnapshot applies the gate's rule to the pool now, with the
// configured threshold clamped as the gate clamps it, and reads the
// gate's state file.
func readSnapshot(p pool.Pool, statePath string, threshold int) (Snapshot, problems) {
	var why problems
	r, err := p.Ready()
	why.readiness = err
	st, err := p.State()
	why.counters = err
	t, _ := gate.EffectiveThreshold(threshold, st)
	snap := Snapshot{
		Ready:           gate.Opens(r == pool.Ready, st.EntropyAvail, t),
		CRNGInitialized: r == pool.Ready,
		EntropyAvail:    bitsProperty(st.EntropyAvail),
		Threshold:       bitsProperty(t),
	}
	gs, err := gatestate.Read(statePath)
	snap.GateState = gateState(gs, err)
	snap.Seeds = seedResults(gs.Seeds)
	if err != nil && !errors.Is(err, gatestate.ErrNotRun) {
		why.gateState = err
	}
	return snap, why
}

// seedResults sums up each backend's results this boot: what its load
// did with the old seed, and whether its latest write (at load, after the
// gate opened, or at shutdown) succeeded.
func seedResults(seeds []gatestate.Seed) map[string]SeedResult {
	out := make(map[string]SeedResult)
	for _, s := range seeds {
		r := out[s.Backend]
		if s.Action == gatestate.SeedLoad {
			r.Loaded = s.Loaded && s.Content != "" && s.Content != "empty"
			r.CreditedBits = uint32(max(s.CreditedBits, 0))
			r.Mixed = s.Mixed
		}
		r.Refreshed, r.Error = s.Refreshed, s.Error
		out[s.Backend] = r
	}
	return out
}

// bitsProperty maps a kernel counter to the unsigned property, -1 (or
// anything out of range) to UnknownBits.
func bitsProperty(n int) uint32 {
	if n < 0 || n >= UnknownBits {
		return UnknownBits
	}
	return uint32(n)
}

func gateState(s gatestate.State, err error) string {
	switch {
	case errors.Is(err, gatestate.ErrNotRun):
		return GateNotRun
	case err != nil:
		return GateUnknown
	case s.Phase == gatestate.Open && s.Outcome == gatestate.Timeout:
		return GateDegraded
	default:
		return string(s.Phase)
	}
}
