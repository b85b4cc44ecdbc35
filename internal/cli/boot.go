package cli

import (
	"log"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/doctor"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/history"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// bootRecorder describes this boot's wait for the journal and the history
// file: the kernel, and what most likely made the pool ready.
type bootRecorder struct {
	path    string
	kernel  string
	sources history.Sources
}

func newBootRecorder(env Env, c config.Config) *bootRecorder {
	facts := doctor.GatherSources(env.Doctor)
	b := &bootRecorder{
		path: env.HistoryPath,
		sources: history.Sources{
			HWRNGCredited: facts.HWRNGCredited(),
			CPUCredited:   facts.CPUCredited(),
			Active:        c.Mode == pool.Active,
		},
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		b.kernel = unix.ByteSliceToString(u.Release[:])
	}
	return b
}

// withSeeds completes the sources with the boot's seed results.
func (b *bootRecorder) withSeeds(p gate.Progress) history.Sources {
	s := b.sources
	s.InitializedAtStart = p.InitializedAtStart
	for _, seed := range p.Seeds {
		if seed.Action != gatestate.SeedLoad {
			continue
		}
		if seed.Loaded && seed.Content != "" && seed.Content != "empty" {
			s.SeedsLoaded++
		}
		if seed.CreditedBits > 0 {
			s.SeedsCredited++
		}
	}
	return s
}

func (b *bootRecorder) readyBy(p gate.Progress) string {
	return history.ReadyBy(string(p.Outcome), b.withSeeds(p))
}

// journalFields are the gate's end-of-wait journal fields only we know.
func (b *bootRecorder) journalFields(p gate.Progress) map[string]string {
	return map[string]string{
		history.FieldKernel:        b.kernel,
		history.FieldReadyBy:       b.readyBy(p),
		history.FieldSeedsLoaded:   strconv.Itoa(b.withSeeds(p).SeedsLoaded),
		history.FieldSeedsCredited: strconv.Itoa(b.withSeeds(p).SeedsCredited),
	}
}

// save appends this boot to the history file, where there is one.
func (b *bootRecorder) save(p gate.Progress, logger *log.Logger) {
	if b.path == "" {
		return
	}
	r := history.Record{
		Time:              p.Started.Add(p.Waited).UTC().Truncate(time.Millisecond),
		Kernel:            b.kernel,
		Semantics:         p.Semantics.String(),
		Mode:              p.Mode.String(),
		Threshold:         p.Threshold,
		Outcome:           string(p.Outcome),
		WaitedMS:          p.Waited.Milliseconds(),
		ReadyBy:           b.readyBy(p),
		EntropyAvailStart: p.EntropyAvailStart,
		EntropyAvailEnd:   p.EntropyAvail,
		SeedsLoaded:       b.withSeeds(p).SeedsLoaded,
		SeedsCredited:     b.withSeeds(p).SeedsCredited,
	}
	if err := history.Append(b.path, r); err != nil {
		logger.Printf("warning: %v", err)
	}
}
