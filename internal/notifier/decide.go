// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"strings"
	"time"

	"github.com/esiqveland/notify"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

// Conditions is a set of reasons to warn, each one bit.
type Conditions uint

// The conditions, most severe first: the notification's summary names the
// first one present.
const (
	// CRNGNotInitialized: getrandom would block.
	CRNGNotInitialized Conditions = 1 << iota
	// ReadinessUnknown: the kernel cannot be asked (getrandom missing or
	// forbidden).
	ReadinessUnknown
	// GateTimedOut: the gate's wait ended by timeout, so this boot either
	// started its services without enough randomness or kept them shut.
	GateTimedOut
	// LowEntropy: entropy_avail is below the low-water mark, on kernels
	// whose accounting makes that number mean something.
	LowEntropy
	// SeedNotRefreshed: a seed location was read but its seed could not
	// be replaced, so the next boot cannot credit it.
	SeedNotRefreshed
	// NoSeedCredited: no seed could be credited at this boot although the
	// boot medium is writable: typically the first boot of a new stick,
	// when keys made now get the least randomness the stick will see.
	NoSeedCredited

	lastCondition = NoSeedCredited
)

// ongoing are the kernel's present conditions, which can last: they are
// shown again, at most once per Policy.Renotify, after the user closed the
// notification. The others are facts about this boot that never change,
// so once dismissed they stay dismissed.
const ongoing = CRNGNotInitialized | ReadinessUnknown | LowEntropy

// conditionNames are the machine names of the conditions, for --once and
// logs; they are never translated.
var conditionNames = map[Conditions]string{
	CRNGNotInitialized: "crng-not-initialized",
	ReadinessUnknown:   "readiness-unknown",
	GateTimedOut:       "gate-timed-out",
	LowEntropy:         "low-entropy",
	SeedNotRefreshed:   "seed-not-refreshed",
	NoSeedCredited:     "no-seed-credited",
}

// Each calls fn for each condition in c, most severe first.
func (c Conditions) Each(fn func(Conditions)) {
	for bit := Conditions(1); bit <= lastCondition; bit <<= 1 {
		if c&bit != 0 {
			fn(bit)
		}
	}
}

// String lists the machine names, comma-separated, or "none".
func (c Conditions) String() string {
	if c == 0 {
		return "none"
	}
	var names []string
	c.Each(func(bit Conditions) { names = append(names, conditionNames[bit]) })
	return strings.Join(names, ",")
}

// Urgency is critical only while the CRNG is not initialized, normal for
// everything else.
func (c Conditions) Urgency() notify.Urgency {
	if c&CRNGNotInitialized != 0 {
		return notify.UrgencyCritical
	}
	return notify.UrgencyNormal
}

// Policy holds the decision's tunables.
type Policy struct {
	// EntropyLow and EntropyHigh are the hysteresis marks, in bits: warn
	// when entropy_avail falls below EntropyLow, clear when it reaches
	// EntropyHigh. EntropyLow 0 disables the entropy warning.
	EntropyLow, EntropyHigh int
	// Renotify is how long after the user closed the notification an
	// ongoing condition may show it again; 0 means never.
	Renotify time.Duration
}

// DefaultPolicy is the configuration's default: warn below 128 bits
// until 256 are back, show a dismissed warning again at most every ten
// minutes.
func DefaultPolicy() Policy { return DefaultConfig().Policy }

// Op is what to do with the notification.
type Op int

const (
	// Keep leaves the screen as it is.
	Keep Op = iota
	// Show sends the notification: a new one when ID is 0, else an
	// in-place update of notification ID.
	Show
	// Close withdraws notification ID.
	Close
)

// Action is one decision.
type Action struct {
	Op Op
	// ID is the notification to replace or close; 0 for a new one.
	ID         uint32
	Conditions Conditions
	// Details asks for the technical details in the body.
	Details bool
}

// Decider remembers what is on screen and decides what should be. It is
// not safe for concurrent use; its methods take the time when they need it.
type Decider struct {
	policy Policy
	// low is the entropy hysteresis state.
	low bool
	// active is the latest evaluation's conditions.
	active Conditions
	// details: the user asked for the technical details.
	details bool

	// id is the notification on screen, 0 if none; shown and
	// shownDetails are what it says.
	id           uint32
	shown        Conditions
	shownDetails bool
	// lastID is the last notification shown, still matched by actions
	// whose signal arrives after the notification closed.
	lastID uint32

	// After the user (or the server) closed the notification, it stays
	// away until a new condition appears or, for an ongoing one, until
	// closedAt+Renotify.
	suppressed bool
	closedAt   time.Time
	closedSet  Conditions
}

// NewDecider returns a Decider with nothing on screen.
func NewDecider(p Policy) *Decider {
	return &Decider{policy: p}
}

// Conditions computes the conditions in f and updates the hysteresis.
func (d *Decider) Conditions(f gatestate.View) Conditions {
	var c Conditions
	switch f.Readiness {
	case pool.NotReady:
		c |= CRNGNotInitialized
	case pool.Unknown:
		c |= ReadinessUnknown
	}
	d.updateLow(f.Kernel)
	// Before initialization the CRNG warning says it all.
	if d.low && f.Readiness == pool.Ready {
		c |= LowEntropy
	}
	if f.GateErr != nil {
		return c
	}
	if f.Gate.Outcome == gatestate.Timeout {
		c |= GateTimedOut
	}
	return c | seedConditions(f.Gate.Seeds)
}

// updateLow applies the hysteresis: only the legacy pool's entropy_avail
// is debited by use, so only there does a low value say something.
func (d *Decider) updateLow(k pool.State) {
	switch {
	case k.Semantics != pool.Legacy || d.policy.EntropyLow <= 0:
		d.low = false
	case k.EntropyAvail < 0:
		// Unknown: keep the last verdict.
	case k.EntropyAvail < d.policy.EntropyLow:
		d.low = true
	case k.EntropyAvail >= d.policy.EntropyHigh:
		d.low = false
	}
}

// seedConditions judges the seed backends' results. A location whose
// latest result (a later refresh may redo a failed one) was read but not
// replaced leaves a seed the next boot must not credit; a read-only
// medium is no failure (no error). No credit at load although some
// location is writable is a first boot; from read-only media it is no news.
func seedConditions(seeds []seeders.Result) Conditions {
	var c Conditions
	latest := make(map[string]seeders.Result)
	credited, writable := false, false
	for _, s := range seeds {
		latest[s.Backend] = s
		if s.Action == seeders.ActionLoad {
			credited = credited || s.CreditedBits > 0
			writable = writable || s.Refreshed
		}
	}
	for _, s := range latest {
		if s.Loaded && !s.Refreshed && s.Error != "" {
			c |= SeedNotRefreshed
		}
	}
	if writable && !credited {
		c |= NoSeedCredited
	}
	return c
}

// Evaluate decides what the screen should show for f at now.
func (d *Decider) Evaluate(now time.Time, f gatestate.View) Action {
	c := d.Conditions(f)
	d.active = c
	if c == 0 {
		d.suppressed, d.details = false, false
		if d.id == 0 {
			return Action{}
		}
		a := Action{Op: Close, ID: d.id}
		d.id, d.shown = 0, 0
		return a
	}
	show := Action{Op: Show, ID: d.id, Conditions: c, Details: d.details}
	switch {
	case d.id != 0 && c == d.shown && d.details == d.shownDetails:
		return Action{}
	case d.id != 0:
		return show
	case d.suppressed && !d.due(now, c):
		return Action{}
	}
	return show
}

// due reports whether a notification the user closed may come back: a
// condition appeared that was not there then, or an ongoing one has
// persisted for the renotification interval.
func (d *Decider) due(now time.Time, c Conditions) bool {
	if c&^d.closedSet != 0 {
		return true
	}
	t, ok := d.renotifyAt(c)
	return ok && !now.Before(t)
}

func (d *Decider) renotifyAt(c Conditions) (time.Time, bool) {
	if c&ongoing == 0 || d.policy.Renotify <= 0 {
		return time.Time{}, false
	}
	return d.closedAt.Add(d.policy.Renotify), true
}

// Deadline is when a closed notification becomes due again, if the
// conditions stay as they are; ok is false when no time alone will.
func (d *Decider) Deadline() (t time.Time, ok bool) {
	if d.id != 0 || !d.suppressed {
		return time.Time{}, false
	}
	return d.renotifyAt(d.active)
}

// Shown records that the server accepted a Show action as notification id
// (a server may assign a new id even when asked to replace).
func (d *Decider) Shown(a Action, id uint32) {
	d.id, d.lastID = id, id
	d.shown, d.shownDetails = a.Conditions, a.Details
	d.suppressed = false
}

// SendFailed records that a Show action did not reach the server: nothing
// is known to be on screen, so the next evaluation sends it afresh.
func (d *Decider) SendFailed() {
	d.id, d.shown = 0, 0
}

// Closed handles the server's NotificationClosed signal. Whatever the
// reason — dismissed by the user, expired, closed by someone else — the
// user has had the chance to see it: showing it again at once would make a
// bubble that cannot be got rid of, so it stays away until due.
func (d *Decider) Closed(now time.Time, id uint32) {
	if id == 0 || id != d.id {
		return // not ours, or one we closed or replaced ourselves
	}
	d.id, d.shown = 0, 0
	d.details = false
	d.suppressed, d.closedAt, d.closedSet = true, now, d.active
}

// Invoked handles the ActionInvoked signal. The default action (a click
// on the notification) asks for the details: they come in a fresh
// notification, since the server may be closing the clicked one. It
// returns the notification to withdraw first, if still on screen.
func (d *Decider) Invoked(id uint32, key string) (withdraw uint32, ok bool) {
	if key != "default" || id == 0 || id != d.lastID {
		return 0, false
	}
	withdraw = d.id
	d.id, d.shown = 0, 0
	d.details, d.suppressed = true, false
	return withdraw, true
}

// ServerChanged handles the notification server leaving or (re)appearing
// on the bus: whatever it showed is gone, so the next evaluation shows the
// notification afresh unless the user had closed it.
func (d *Decider) ServerChanged() {
	d.id, d.shown = 0, 0
}

// Withdraw forgets the notification on screen and returns it, for closing
// at exit; 0 when there is none.
func (d *Decider) Withdraw() uint32 {
	id := d.id
	d.id, d.shown = 0, 0
	return id
}
