package notifier

import (
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// Facts is everything the notifier decides from, read at one moment.
type Facts struct {
	Readiness pool.Readiness
	// ReadinessErr says why Readiness is Unknown.
	ReadinessErr error
	// Kernel holds the entropy counters; unknown ones are -1.
	Kernel pool.State
	// Gate is the gate's state file, with the seed backends' results;
	// GateErr is gatestate.ErrNotRun when the gate has not run this boot,
	// or why the file could not be read.
	Gate    gatestate.State
	GateErr error
}

// Gather reads the facts from the kernel and the gate's state file.
func Gather(p pool.Pool, statePath string) Facts {
	var f Facts
	f.Readiness, f.ReadinessErr = p.Ready()
	// Unknown counters are -1 even when State reports an error.
	f.Kernel, _ = p.State()
	f.Gate, f.GateErr = gatestate.Read(statePath)
	return f
}
