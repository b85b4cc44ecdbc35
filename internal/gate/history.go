// SPDX-License-Identifier: GPL-3.0-or-later

package gate

import (
	"strconv"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/history"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

// HistorySink records this boot's wait: the journal fields only it knows
// (JournalSink.Extra), and once the wait is over a line in the history
// file, where there is one.
type HistorySink struct {
	// Path is the history file; "" keeps none.
	Path string
	// Kernel is the kernel's release.
	Kernel string
	// Sources are what may make the pool ready besides our seeds, known
	// before the wait.
	Sources history.Sources
	// Logf reports a failed write; nil discards it.
	Logf func(format string, args ...any)

	saved bool
}

// Update implements Sink.
func (s *HistorySink) Update(p Progress) {
	switch p.Phase {
	case gatestate.Open, gatestate.TimedOut, gatestate.Stopped:
	default:
		return
	}
	if s.Path == "" || s.saved {
		return
	}
	s.saved = true
	sources := s.withSeeds(p)
	r := history.Record{
		Time:              p.Started.Add(p.Waited).UTC().Truncate(time.Millisecond),
		Kernel:            s.Kernel,
		Semantics:         p.Semantics.String(),
		Mode:              p.Mode.String(),
		Threshold:         p.Threshold,
		Outcome:           string(p.Outcome),
		WaitedMS:          p.Waited.Milliseconds(),
		ReadyBy:           history.ReadyBy(string(p.Outcome), sources),
		EntropyAvailStart: p.EntropyAvailStart,
		EntropyAvailEnd:   p.EntropyAvail,
		SeedsLoaded:       sources.SeedsLoaded,
		SeedsCredited:     sources.SeedsCredited,
	}
	if err := history.Append(s.Path, r); err != nil && s.Logf != nil {
		s.Logf("%v", err)
	}
}

// JournalFields are the end-of-wait journal fields, for JournalSink.Extra.
func (s *HistorySink) JournalFields(p Progress) map[string]string {
	sources := s.withSeeds(p)
	return map[string]string{
		history.FieldKernel:        s.Kernel,
		history.FieldReadyBy:       history.ReadyBy(string(p.Outcome), sources),
		history.FieldSeedsLoaded:   strconv.Itoa(sources.SeedsLoaded),
		history.FieldSeedsCredited: strconv.Itoa(sources.SeedsCredited),
	}
}

// withSeeds completes the sources with the boot's seed loads.
func (s *HistorySink) withSeeds(p Progress) history.Sources {
	sources := s.Sources
	sources.InitializedAtStart = p.InitializedAtStart
	for _, seed := range p.Seeds {
		if seed.Action != seeders.ActionLoad {
			continue
		}
		if seed.FoundSeed() {
			sources.SeedsLoaded++
		}
		if seed.CreditedBits > 0 {
			sources.SeedsCredited++
		}
	}
	return sources
}
