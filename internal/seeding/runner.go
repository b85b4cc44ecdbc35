// SPDX-License-Identifier: GPL-3.0-or-later

package seeding

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

// DefaultTimeout bounds loading or saving all seeds: a stick pulled out at
// shutdown must not hold the shutdown up.
const DefaultTimeout = 20 * time.Second

// Deps is what a Runner runs against.
type Deps struct {
	// Pool is the kernel RNG the seeds are credited or mixed into.
	Pool pool.Pool
	// ResultsPath is this boot's results file
	// (gatestate.DefaultSeedsPath); "" keeps none, so every backend is
	// loaded.
	ResultsPath string
	// LockPath is the seed lock shared by every process (DefaultLockPath);
	// "" takes no lock.
	LockPath string
	// Logf logs one line per backend result; nil discards them.
	Logf func(format string, args ...any)
	// Warnf logs what went wrong: a failed backend, the lock or the
	// results file. nil logs it with Logf, marked as a warning.
	Warnf func(format string, args ...any)
}

// Runner runs the seed protocol for one process: it takes the seed lock,
// keeps this boot's results, and bounds each run by DefaultTimeout and the
// grace period.
type Runner struct {
	Deps
	// Backends are the configured backends; Failed the results of those
	// that could not be built.
	Backends []Backend
	Failed   []seeders.Result
	// Grace overrides DefaultGrace (for tests).
	Grace time.Duration
}

// NewRunner builds the backends the configuration enables (see Backends).
// With a results file, the backends on the boot medium share the boot's
// one read-write remount (seeders.RemountBudget), marked beside it.
func NewRunner(c config.Seed, locate Locator, deps Deps) *Runner {
	backends, failed := Backends(c, locate)
	if deps.ResultsPath != "" {
		budget := seeders.RemountBudget{Marker: filepath.Join(filepath.Dir(deps.ResultsPath), RemountMarker)}
		for i, b := range backends {
			switch medium := b.Backend.(type) {
			case seeders.FATBackend:
				medium.Mounts = budget
				backends[i].Backend = medium
			case seeders.CmdlineBackend:
				medium.Mounts = budget
				backends[i].Backend = medium
			}
		}
	}
	return &Runner{Deps: deps, Backends: backends, Failed: failed}
}

// RemountMarker is the file, beside the results file, whose existence says
// that this boot has made the boot medium writable once.
const RemountMarker = "medium-remounted"

func (r *Runner) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

func (r *Runner) warnf(format string, args ...any) {
	if r.Warnf != nil {
		r.Warnf(format, args...)
		return
	}
	r.logf("warning: "+format, args...)
}

func (r *Runner) grace() time.Duration {
	if r.Grace > 0 {
		return r.Grace
	}
	return DefaultGrace
}

// lock takes the seed lock, if there is one: the results of this boot are
// read and the seeds used under it, so two processes never both load (and
// credit) the same seed.
func (r *Runner) lock(ctx context.Context) (func(), error) {
	return Lock(ctx, r.LockPath)
}

// Load runs the boot-time protocol on every backend not loaded yet this
// boot, and returns this boot's results, earlier ones included. Loading a
// backend twice would only mix its replacement and wear the medium; but a
// backend the initramfs could not reach (a seed on the persistent volume)
// is loaded when the system can.
func (r *Runner) Load(ctx context.Context) []seeders.Result {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	unlock, err := r.lock(ctx)
	if err != nil {
		r.warnf("seeds not loaded: %v", err)
		prior, _ := r.readResults()
		return prior
	}
	defer unlock()
	prior, _ := r.readResults() // none yet, or unreadable: load all
	loaded := map[string]bool{}
	for _, s := range prior {
		loaded[s.Backend] = s.Loaded
	}
	var todo []Backend
	for _, b := range r.Backends {
		if !loaded[b.Name()] {
			todo = append(todo, b)
		}
	}
	results := append(slices.Clone(r.Failed), r.run(ctx, todo, seeders.ActionLoad)...)
	r.log(results)
	if len(todo) < len(r.Backends) {
		r.logf("%d seed backends already loaded this boot", len(r.Backends)-len(todo))
	}
	results = append(withoutRetried(prior, results), results...)
	if r.ResultsPath != "" {
		if err := gatestate.WriteSeeds(r.ResultsPath, results); err != nil {
			r.warnf("%v", err)
		}
	}
	return results
}

// Refresh writes new seeds to every backend once the gate opened: they
// are creditable now.
func (r *Runner) Refresh(ctx context.Context) []seeders.Result {
	return r.write(ctx, seeders.ActionRefresh)
}

// Save writes new seeds to every backend at shutdown (or any time), and
// logs which backends could not be built.
func (r *Runner) Save(ctx context.Context) []seeders.Result {
	r.log(r.Failed)
	return r.write(ctx, seeders.ActionSave)
}

// write writes new seeds to every backend, under the seed lock.
func (r *Runner) write(ctx context.Context, action string) []seeders.Result {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	unlock, err := r.lock(ctx)
	if err != nil {
		r.warnf("seeds not written: %v", err)
		return nil
	}
	defer unlock()
	backends := r.Backends
	if action == seeders.ActionRefresh {
		prior, _ := r.readResults() // none: nothing due
		backends = PlanRefresh(backends, prior)
	}
	results := r.run(ctx, backends, action)
	r.log(results)
	return results
}

func (r *Runner) readResults() ([]seeders.Result, error) {
	if r.ResultsPath == "" {
		return nil, errors.New("no results file")
	}
	return gatestate.ReadSeeds(r.ResultsPath)
}

// log writes one line per backend result, for the journal: a warning for
// a backend that failed.
func (r *Runner) log(seeds []seeders.Result) {
	for _, s := range seeds {
		logf := r.logf
		if s.Error != "" {
			logf = r.warnf
		}
		logf("seed %s %s: %s", s.Action, s.Backend, s.Reason)
	}
}

// withoutRetried drops the earlier results of backends tried again.
func withoutRetried(prior, again []seeders.Result) []seeders.Result {
	var out []seeders.Result
	for _, p := range prior {
		if !slices.ContainsFunc(again, func(s seeders.Result) bool { return s.Backend == p.Backend }) {
			out = append(out, p)
		}
	}
	return out
}
