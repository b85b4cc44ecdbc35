// SPDX-License-Identifier: GPL-3.0-or-later

package gate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

// DefaultInterval is how often sinks hear about progress while waiting.
const DefaultInterval = 250 * time.Millisecond

// ErrTimedOut is returned by Run when the timeout expired under
// OnTimeout=fail: dependents must not start.
var ErrTimedOut = errors.New("timed out waiting for the kernel random number generator")

// Sink receives the gate's progress: at every phase change, and at most
// every Interval while waiting; once more after the wait, with the same
// phase, when AfterOpen added seed results. Update runs on the gate's
// goroutine, so it must return quickly and must never wait on an absent
// peer.
type Sink interface {
	Update(p Progress)
}

// Progress is what the gate knows, as sinks see it.
type Progress struct {
	Phase   gatestate.Phase
	Outcome gatestate.Outcome
	// Reason explains an outcome or why the wait cannot finish.
	Reason    string
	Mode      pool.WaitMode
	Semantics pool.Semantics
	// Threshold is the effective threshold in bits, after clamping.
	Threshold       int
	CRNGInitialized bool
	// InitializedAtStart says the CRNG was already initialized when the
	// gate started, before any seed of ours.
	InitializedAtStart bool
	// EntropyAvailStart and EntropyAvail are in bits, -1 when unknown.
	EntropyAvailStart int
	EntropyAvail      int
	Started           time.Time
	Waited            time.Duration
	// Seeds is what the seed backends did, from the Seed hook.
	Seeds []seeders.Result
}

// Fraction estimates how far the pool is towards opening the gate, from 0
// to 1, or returns -1 where the kernel's numbers say nothing about it.
// Before initialization the target is what the kernel collects before it
// initializes the CRNG, if that is more than the threshold.
func (p Progress) Fraction() float64 {
	if p.Phase == gatestate.Open && p.Outcome == gatestate.Ready {
		return 1
	}
	target := p.Threshold
	if init := p.Semantics.InitBits(); !p.CRNGInitialized && init > target {
		target = init
	}
	if target <= 0 || p.EntropyAvail < 0 {
		return -1
	}
	return min(float64(p.EntropyAvail)/float64(target), 0.99)
}

// Gate waits for the pool. Set its fields, then call Run once.
type Gate struct {
	Pool   pool.Pool
	Config config.Config
	Sinks  []Sink
	// Seed runs in the seeding phase, before the wait, and reports what
	// each backend did; nil skips it.
	Seed func(ctx context.Context) []seeders.Result
	// AfterOpen runs once the wait is over with the CRNG initialized,
	// after every sink heard the outcome (dependents are starting), and
	// reports what it did to the seeds: they can be replaced with
	// creditable ones now. nil skips it.
	AfterOpen func(ctx context.Context) []seeders.Result
	// Interval overrides DefaultInterval.
	Interval time.Duration
	// Logf reports warnings; nil discards them.
	Logf func(format string, args ...any)
	// Now overrides time.Now in tests.
	Now func() time.Time
}

func (g *Gate) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *Gate) logf(format string, args ...any) {
	if g.Logf != nil {
		g.Logf(format, args...)
	}
}

func (g *Gate) emit(p Progress) {
	for _, s := range g.Sinks {
		s.Update(p)
	}
}

// refresh reads readiness and counters into p.
func (g *Gate) refresh(p *Progress) {
	r, err := g.Pool.Ready()
	p.CRNGInitialized = r == pool.Ready
	if r == pool.Unknown && err != nil {
		p.Reason = err.Error()
	}
	if s, err := g.Pool.State(); err == nil || s.EntropyAvail >= 0 {
		p.EntropyAvail = s.EntropyAvail
	}
	p.Waited = g.now().Sub(p.Started)
}

func isOpen(p Progress) bool { return gatestate.Opens(p.CRNGInitialized, p.EntropyAvail, p.Threshold) }

// Run seeds, then waits until the gate opens, the timeout expires or ctx
// is done. It returns the final progress; the error is ErrTimedOut under
// OnTimeout=fail, or ctx's error if cancelled.
func (g *Gate) Run(ctx context.Context) (Progress, error) {
	interval := g.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	p := Progress{
		Phase:     gatestate.Seeding,
		Mode:      g.Config.Mode,
		Threshold: g.Config.Threshold,
		Started:   g.now(),
	}
	var deadline <-chan time.Time
	if g.Config.Timeout > 0 {
		timer := time.NewTimer(g.Config.Timeout)
		defer timer.Stop()
		deadline = timer.C
	}

	if r, _ := g.Pool.Ready(); r == pool.Ready {
		p.InitializedAtStart, p.CRNGInitialized = true, true
	}
	state, err := g.Pool.State()
	if err != nil {
		g.logf("read kernel entropy counters: %v", err)
	}
	p.Semantics = state.Semantics
	p.EntropyAvailStart, p.EntropyAvail = state.EntropyAvail, state.EntropyAvail
	if t, clamped := gatestate.EffectiveThreshold(p.Threshold, state); clamped {
		g.logf("threshold %d bits is above this kernel's pool size; using %d", p.Threshold, t)
		p.Threshold = t
	}
	if state.EntropyAvail < 0 && p.Threshold > 0 {
		g.logf("entropy_avail is unknown: the threshold of %d bits cannot be checked, waiting for CRNG readiness only", p.Threshold)
	}
	g.emit(p)
	if g.Seed != nil {
		p.Seeds = g.Seed(ctx)
	}

	p.Phase = gatestate.Waiting
	g.refresh(&p)
	if isOpen(p) {
		return g.finish(ctx, p, gatestate.Open, gatestate.Ready, nil)
	}
	g.emit(p)

	waitCtx, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	readyCh := make(chan error, 1)
	go func() { readyCh <- g.Pool.Wait(waitCtx, g.Config.Mode) }()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			p.Reason = "stopped while waiting"
			return g.finish(ctx, p, gatestate.Stopped, gatestate.Cancelled, ctx.Err())
		case err := <-readyCh:
			// Only ever one answer: stop selecting on it.
			readyCh = nil
			if err != nil && ctx.Err() == nil {
				g.logf("wait for the CRNG: %v", err)
			}
			g.refresh(&p)
			if isOpen(p) {
				return g.finish(ctx, p, gatestate.Open, gatestate.Ready, nil)
			}
		case <-ticker.C:
			g.refresh(&p)
			if isOpen(p) {
				return g.finish(ctx, p, gatestate.Open, gatestate.Ready, nil)
			}
			g.emit(p)
		case <-deadline:
			g.refresh(&p)
			if isOpen(p) {
				return g.finish(ctx, p, gatestate.Open, gatestate.Ready, nil)
			}
			p.Reason = fmt.Sprintf("timeout of %s expired", config.FormatTimespan(g.Config.Timeout))
			if g.Config.OnTimeout == config.Open {
				return g.finish(ctx, p, gatestate.Open, gatestate.Timeout, nil)
			}
			return g.finish(ctx, p, gatestate.TimedOut, gatestate.Timeout, ErrTimedOut)
		}
	}
}

func (g *Gate) finish(ctx context.Context, p Progress, phase gatestate.Phase, outcome gatestate.Outcome, err error) (Progress, error) {
	p.Phase, p.Outcome = phase, outcome
	if outcome == gatestate.Ready {
		p.Reason = ""
	}
	p.Waited = g.now().Sub(p.Started)
	g.emit(p)
	if p.CRNGInitialized && g.AfterOpen != nil {
		p.Seeds = append(slices.Clone(p.Seeds), g.AfterOpen(ctx)...)
		g.emit(p)
	}
	return p, err
}
