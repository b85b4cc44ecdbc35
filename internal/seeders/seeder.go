// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Backend is one seed location. Load reads without writing; Store replaces
// the seed with r, makes it durable and verifies it, or fails. A backend
// re-checks its own safety rules in Store: callers may call it at any time.
type Backend interface {
	Name() string
	Load() (Loaded, error)
	Store(r Record) error
}

// Rewriter is a backend that can write the record it holds again, many
// times in one go (SectorBackend): what WearRewrites need.
type Rewriter interface {
	// Rewrite writes r, which the location holds already, times more
	// times, and says how many writes were done.
	Rewrite(r Record, times int) (int, error)
}

// Seeder runs the seed protocol for one backend.
type Seeder struct {
	Backend Backend
	Kernel  Kernel
	Env     Env
	// WearRewrites, if above 1, makes the first write to a location without
	// a record of ours happen a random 1…WearRewrites times, so the number
	// of stale copies flash wear levelling keeps does not tell how often the
	// stick was booted (Tails 6.4 uses 500). Seed only says they are due
	// (Result.WearRewritesDue): hundreds of writes do not belong in the
	// boot's wait.
	WearRewrites int
	// WearRewritesDue: this boot's Seed left the rewrites due; Refresh
	// does them after its own store, once the gate is open.
	WearRewritesDue bool
}

// Result is what one Seed or Refresh did to one backend: the one shape of
// a seed result, in logs, this boot's results file, the gate's state file
// (whose JSON names are public API), `status`, D-Bus and the history. It
// never holds seed bytes.
type Result struct {
	Backend string `json:"backend"`
	// Action is ActionLoad, ActionRefresh or ActionSave; the caller that
	// chose the protocol sets it.
	Action string `json:"action"`
	// Loaded: the location was read and judged safe; Content says what it
	// held.
	Loaded  bool    `json:"loaded"`
	Content Content `json:"content,omitempty"`
	// Creditable: the loaded record says it may be credited.
	Creditable bool `json:"creditable"`
	// Refreshed: a replacement was written and verified; StoredCreditable
	// is its own flag.
	Refreshed        bool `json:"refreshed"`
	StoredCreditable bool `json:"stored_creditable"`
	// Rewrites counts writes beyond the first (WearRewrites);
	// WearRewritesDue says Seed left them to the next Refresh.
	Rewrites        int  `json:"rewrites,omitempty"`
	WearRewritesDue bool `json:"wear_rewrites_due,omitempty"`
	CreditedBits    int  `json:"credited_bits"`
	Mixed           bool `json:"mixed"`
	// Reason is one line for humans: what happened and why.
	Reason string `json:"reason"`
	// Error is Err's text; Err keeps it for errors.Is.
	Error string `json:"error,omitempty"`
	Err   error  `json:"-"`
}

// Seed actions.
const (
	// ActionLoad is the boot-time protocol (Seeder.Seed): credit or mix
	// the old seed once its replacement is written.
	ActionLoad = "load"
	// ActionRefresh replaces the seeds once the gate opened.
	ActionRefresh = "refresh"
	// ActionSave replaces the seeds at shutdown.
	ActionSave = "save"
)

// FoundSeed says the backend was loaded and held a seed, usable or not:
// an empty location or a failed read does not count.
func (r Result) FoundSeed() bool {
	return r.Loaded && r.Content != ContentUnknown && r.Content != ContentEmpty
}

func (r *Result) fail(err error) {
	r.Err = errors.Join(r.Err, err)
	r.Error = r.Err.Error()
}

// Seed runs the boot-time protocol (DESIGN rule 2): load the seed; derive
// its replacement and store it; then, and only if that succeeded, credit the
// old seed when its record is valid and creditable and the location allows
// it. Otherwise the old content is mixed without credit, or, for an empty
// location, nothing is passed to the kernel. A location that fails its
// safety checks is left untouched and unused.
func (s Seeder) Seed() Result {
	res, loaded, ok := s.load("not used")
	if !ok {
		return res
	}
	defer loaded.Release()
	_, storeErr := s.refresh(&res, loaded)
	noCredit := whyNoCredit(loaded, storeErr)

	if seed := loaded.material(); len(seed) > 0 {
		if noCredit == "" {
			if err := s.Kernel.Credit(seed, 8*len(seed)); err != nil {
				res.fail(fmt.Errorf("credit: %w", err))
				noCredit = "credit failed"
			} else {
				res.CreditedBits = 8 * len(seed)
			}
		}
		if res.CreditedBits == 0 {
			if err := s.Kernel.Mix(seed); err != nil {
				res.fail(fmt.Errorf("mix: %w", err))
			} else {
				res.Mixed = true
			}
		}
	}
	res.Reason = seedReason(res, noCredit)
	res.WearRewritesDue = res.Refreshed && loaded.Content != ContentRecord && s.WearRewrites > 1
	return res
}

// Refresh replaces the stored seed with one derived from it, without passing
// anything to the kernel: for when the gate opens (the new seed is then
// creditable) and at clean shutdown (DESIGN rule 4).
func (s Seeder) Refresh() Result {
	res, loaded, ok := s.load("not refreshed")
	if !ok {
		return res
	}
	defer loaded.Release()
	next, err := s.refresh(&res, loaded)
	if err != nil {
		res.Reason = "not refreshed: " + err.Error()
		return res
	}
	res.Reason = fmt.Sprintf("refreshed; new seed creditable %t", res.StoredCreditable)
	if s.WearRewritesDue {
		s.rewrite(&res, next)
	}
	return res
}

// load starts a result with what the backend found. An unusable backend
// gives ok false and a result whose reason starts with failed.
func (s Seeder) load(failed string) (res Result, loaded Loaded, ok bool) {
	res.Backend = s.Backend.Name()
	loaded, err := s.Backend.Load()
	if err != nil {
		res.fail(err)
		res.Reason = failed + ": " + err.Error()
		return res, Loaded{}, false
	}
	res.Loaded, res.Content = true, loaded.Content
	res.Creditable = loaded.Content == ContentRecord && loaded.Record.Creditable
	return res, loaded, true
}

// refresh derives and stores the replacement for loaded. The error is what
// stopped it, recorded in res too.
func (s Seeder) refresh(res *Result, loaded Loaded) (Record, error) {
	if loaded.ReadOnly {
		return Record{}, ErrReadOnly
	}
	next, err := NextRecord(s.Kernel, s.Env, loaded)
	if err == nil {
		err = s.Backend.Store(next)
	}
	if err != nil {
		err = fmt.Errorf("store replacement: %w", err)
		res.fail(err)
		return Record{}, err
	}
	res.Refreshed, res.StoredCreditable = true, next.Creditable
	return next, nil
}

// WhyNoCredit says why what a backend holds could not be credited at the
// next load even if its replacement were written, or "" if it could.
func (l Loaded) WhyNoCredit() string { return whyNoCredit(l, nil) }

// whyNoCredit returns why the loaded seed must not be credited, or "" if it
// may. The replacement must be on the medium first: otherwise the same seed
// could be credited again at the next boot.
func whyNoCredit(l Loaded, storeErr error) string {
	switch {
	case l.Content == ContentEmpty:
		return "no seed stored yet"
	case l.Content == ContentTorn:
		return fmt.Sprintf("damaged record (%v)", l.Damage)
	case l.Content == ContentForeign:
		return "not our record"
	case !l.Record.Creditable:
		return "record was made before the CRNG was initialized"
	case l.ReadOnly:
		return "read-only medium"
	case l.NoCredit != "":
		return l.NoCredit
	case storeErr != nil:
		return "replacement not written"
	}
	return ""
}

func seedReason(res Result, noCredit string) string {
	var did string
	switch {
	case res.CreditedBits > 0:
		did = fmt.Sprintf("credited %d bits", res.CreditedBits)
	case res.Mixed:
		did = "mixed, not credited: " + noCredit
	default:
		did = "nothing passed to the kernel: " + noCredit
	}
	switch {
	case res.Refreshed:
		return did + "; replacement written and verified"
	case res.Err != nil:
		return did + "; " + res.Err.Error()
	}
	return did
}

// rewrite stores next again a random 0…WearRewrites-1 more times, through
// the backend's Rewriter.
func (s Seeder) rewrite(res *Result, next Record) {
	if s.WearRewrites < 2 {
		return
	}
	var b [8]byte
	if err := s.Kernel.Random(b[:]); err != nil {
		res.fail(fmt.Errorf("draw rewrite count: %w", err))
		return
	}
	extra := int(binary.LittleEndian.Uint64(b[:]) % uint64(s.WearRewrites))
	if extra == 0 {
		return
	}
	rw, ok := s.Backend.(Rewriter)
	if !ok {
		res.fail(fmt.Errorf("wear-levelling rewrites: %s cannot rewrite its seed", s.Backend.Name()))
		return
	}
	n, err := rw.Rewrite(next, extra)
	res.Rewrites = n
	if err != nil {
		res.fail(fmt.Errorf("wear-levelling rewrite: %w", err))
	}
}
