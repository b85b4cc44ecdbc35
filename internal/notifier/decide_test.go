// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"testing"
	"time"

	"github.com/esiqveland/notify"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

// Fact builders: a modern kernel, ready or not, and a gate that ran.

func ready() gatestate.View {
	return gatestate.View{
		Readiness: pool.Ready,
		Kernel:    pool.State{EntropyAvail: 256, PoolSize: 256, WriteWakeupThreshold: 896, Semantics: pool.Modern, PollMeansReady: true},
		Gate:      gatestate.State{Version: gatestate.Version, Phase: gatestate.Open, Outcome: gatestate.Ready},
	}
}

func notReady() gatestate.View {
	f := ready()
	f.Readiness, f.Kernel.EntropyAvail = pool.NotReady, 12
	f.Gate.Phase, f.Gate.Outcome = gatestate.Waiting, ""
	return f
}

func legacy(avail int) gatestate.View {
	f := ready()
	f.Kernel = pool.State{EntropyAvail: avail, PoolSize: 4096, WriteWakeupThreshold: 896, Semantics: pool.Legacy}
	return f
}

func timedOut(f gatestate.View) gatestate.View {
	f.Gate.Phase, f.Gate.Outcome, f.Gate.WaitedMS = gatestate.Open, gatestate.Timeout, 120000
	return f
}

func withSeeds(f gatestate.View, seeds ...seeders.Result) gatestate.View {
	f.Gate.Seeds = seeds
	return f
}

// Seed results as the gate records them.
var (
	seedCredited   = seeders.Result{Backend: "sector", Action: seeders.ActionLoad, Loaded: true, Refreshed: true, CreditedBits: 256, Reason: "credited 256 bits"}
	seedFirstBoot  = seeders.Result{Backend: "sector", Action: seeders.ActionLoad, Loaded: true, Refreshed: true, Reason: "nothing passed to the kernel: no seed stored yet"}
	seedReadOnly   = seeders.Result{Backend: "file", Action: seeders.ActionLoad, Loaded: true, Mixed: true, Reason: "mixed, not credited: read-only medium"}
	seedStoreError = seeders.Result{Backend: "file", Action: seeders.ActionLoad, Loaded: true, Mixed: true, Error: "store replacement: EIO", Reason: "mixed, not credited"}
	seedUnusable   = seeders.Result{Backend: "sector", Action: seeders.ActionLoad, Error: "not a GPT disk", Reason: "not used: not a GPT disk"}
	// Refreshes after the gate opened.
	seedRefreshed   = seeders.Result{Backend: "file", Action: seeders.ActionRefresh, Loaded: true, Refreshed: true, StoredCreditable: true, Reason: "refreshed"}
	seedRefreshFail = seeders.Result{Backend: "sector", Action: seeders.ActionRefresh, Loaded: true, Error: "store replacement: EIO", Reason: "not refreshed"}
)

func TestConditions(t *testing.T) {
	unknown := ready()
	unknown.Readiness = pool.Unknown
	gateNotRun := timedOut(ready())
	gateNotRun.GateErr = gatestate.ErrNotRun
	keptShut := timedOut(notReady())
	keptShut.Gate.Phase = gatestate.TimedOut

	for _, tt := range []struct {
		name  string
		facts gatestate.View
		want  Conditions
	}{
		{name: "healthy", facts: ready(), want: 0},
		{name: "not initialized", facts: notReady(), want: CRNGNotInitialized},
		{name: "readiness unknown", facts: unknown, want: ReadinessUnknown},
		{name: "gate opened by timeout", facts: timedOut(ready()), want: GateTimedOut},
		{name: "gate kept shut by timeout", facts: keptShut, want: CRNGNotInitialized | GateTimedOut},
		{name: "gate state unreadable", facts: gateNotRun, want: 0},
		{name: "legacy low", facts: legacy(40), want: LowEntropy},
		{name: "legacy fine", facts: legacy(3000), want: 0},
		{name: "legacy low but not initialized says only that", facts: func() gatestate.View { f := legacy(40); f.Readiness = pool.NotReady; return f }(), want: CRNGNotInitialized},
		{name: "modern entropy number means nothing", facts: func() gatestate.View { f := ready(); f.Kernel.EntropyAvail = 3; return f }(), want: 0},
		{name: "seed credited", facts: withSeeds(ready(), seedCredited), want: 0},
		{name: "first boot of a stick", facts: withSeeds(ready(), seedFirstBoot), want: NoSeedCredited},
		{name: "read-only medium is no news", facts: withSeeds(ready(), seedReadOnly), want: 0},
		{name: "unusable location is no news", facts: withSeeds(ready(), seedUnusable), want: 0},
		{name: "refresh failed", facts: withSeeds(ready(), seedStoreError), want: SeedNotRefreshed},
		{name: "one credited seed is enough", facts: withSeeds(ready(), seedFirstBoot, seedCredited), want: 0},
		{name: "a later refresh redoes a failed one", facts: withSeeds(ready(), seedCredited, seedStoreError, seedRefreshed), want: 0},
		{name: "refresh after the gate opened failed", facts: withSeeds(ready(), seedCredited, seedRefreshFail), want: SeedNotRefreshed},
		{name: "refreshes do not make a first boot", facts: withSeeds(ready(), seedReadOnly, seedRefreshed), want: 0},
		{name: "everything", facts: withSeeds(timedOut(notReady()), seedFirstBoot, seedStoreError), want: CRNGNotInitialized | GateTimedOut | SeedNotRefreshed | NoSeedCredited},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewDecider(DefaultPolicy()).Conditions(tt.facts); got != tt.want {
				t.Errorf("Conditions = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestHysteresis(t *testing.T) {
	p := Policy{EntropyLow: 100, EntropyHigh: 200}
	for _, tt := range []struct {
		name   string
		policy Policy
		avail  []int
		want   []bool
	}{
		{name: "falls below low", policy: p, avail: []int{300, 150, 99}, want: []bool{false, false, true}},
		{name: "stays low until high", policy: p, avail: []int{99, 100, 150, 199, 200}, want: []bool{true, true, true, true, false}},
		{name: "low mark itself is not low", policy: p, avail: []int{100}, want: []bool{false}},
		{name: "unknown keeps the verdict", policy: p, avail: []int{50, -1, 300, -1}, want: []bool{true, true, false, false}},
		{name: "disabled", policy: Policy{EntropyLow: 0, EntropyHigh: 200}, avail: []int{0, 5}, want: []bool{false, false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecider(tt.policy)
			for i, avail := range tt.avail {
				got := d.Conditions(legacy(avail))&LowEntropy != 0
				if got != tt.want[i] {
					t.Errorf("step %d: entropy_avail %d: low = %t, want %t", i, avail, got, tt.want[i])
				}
			}
		})
	}
}

func TestUrgency(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    Conditions
		want notify.Urgency
	}{
		{name: "not initialized", c: CRNGNotInitialized, want: notify.UrgencyCritical},
		{name: "not initialized among others", c: CRNGNotInitialized | GateTimedOut | NoSeedCredited, want: notify.UrgencyCritical},
		{name: "degraded boot", c: GateTimedOut, want: notify.UrgencyNormal},
		{name: "unknown", c: ReadinessUnknown, want: notify.UrgencyNormal},
		{name: "low entropy", c: LowEntropy, want: notify.UrgencyNormal},
		{name: "seeds", c: SeedNotRefreshed | NoSeedCredited, want: notify.UrgencyNormal},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Urgency(); got != tt.want {
				t.Errorf("Urgency(%s) = %v, want %v", tt.c, got, tt.want)
			}
		})
	}
}

// step is one event in a Decider scenario. Evaluations check their
// action; a Show is then accepted by a simulated server, which keeps the
// id it is asked to replace and numbers new notifications 1, 2, 3…
type step struct {
	at time.Duration
	// Exactly one of these happens.
	eval    *gatestate.View
	closed  uint32
	invoke  string // the action key, on invokeID
	server  bool   // the notification server restarted
	failing bool   // the server rejects this step's Show
	// invokeID is the notification whose action was invoked.
	invokeID uint32

	want         Action
	wantWithdraw uint32
}

func eval(f gatestate.View, want Action) step { return step{eval: &f, want: want} }

func show(id uint32, c Conditions) Action { return Action{Op: Show, ID: id, Conditions: c} }

func TestDecider(t *testing.T) {
	keep := Action{}
	gate := timedOut(ready())
	for _, tt := range []struct {
		name   string
		policy Policy
		steps  []step
	}{
		{
			name:  "healthy shows nothing",
			steps: []step{eval(ready(), keep), eval(ready(), keep)},
		},
		{
			name: "critical until ready, then closed",
			steps: []step{
				eval(notReady(), show(0, CRNGNotInitialized)),
				eval(notReady(), keep),
				eval(ready(), Action{Op: Close, ID: 1}),
				eval(ready(), keep),
			},
		},
		{
			name: "one notification updated in place",
			steps: []step{
				eval(notReady(), show(0, CRNGNotInitialized)),
				eval(timedOut(notReady()), show(1, CRNGNotInitialized|GateTimedOut)),
				eval(gate, show(1, GateTimedOut)),
				eval(gate, keep),
				eval(ready(), Action{Op: Close, ID: 1}),
			},
		},
		{
			name: "numbers alone do not update",
			steps: []step{
				eval(legacy(50), show(0, LowEntropy)),
				eval(legacy(20), keep),
				eval(legacy(150), keep),
				eval(legacy(300), Action{Op: Close, ID: 1}),
			},
		},
		{
			name: "dismissed ongoing condition returns after the interval",
			steps: []step{
				eval(notReady(), show(0, CRNGNotInitialized)),
				{at: time.Minute, closed: 1},
				{at: 2 * time.Minute, eval: ptr(notReady())},
				{at: 10*time.Minute + 59*time.Second, eval: ptr(notReady())},
				{at: 11 * time.Minute, eval: ptr(notReady()), want: show(0, CRNGNotInitialized)},
				{at: 12 * time.Minute, eval: ptr(notReady())},
			},
		},
		{
			name:   "renotify never",
			policy: Policy{EntropyLow: 128, EntropyHigh: 256, Renotify: 0},
			steps: []step{
				eval(notReady(), show(0, CRNGNotInitialized)),
				{closed: 1},
				{at: 100 * time.Hour, eval: ptr(notReady())},
			},
		},
		{
			name: "dismissed boot fact stays dismissed",
			steps: []step{
				eval(gate, show(0, GateTimedOut)),
				{at: time.Minute, closed: 1},
				{at: 5 * time.Hour, eval: &gate},
			},
		},
		{
			name: "a new condition brings a dismissed notification back at once",
			steps: []step{
				eval(gate, show(0, GateTimedOut)),
				{at: time.Minute, closed: 1},
				{at: 2 * time.Minute, eval: ptr(withSeeds(gate, seedStoreError)), want: show(0, GateTimedOut|SeedNotRefreshed)},
			},
		},
		{
			name: "a condition going away does not bring it back",
			steps: []step{
				eval(timedOut(notReady()), show(0, CRNGNotInitialized|GateTimedOut)),
				{at: time.Minute, closed: 1},
				{at: 2 * time.Minute, eval: &gate},
				{at: 20 * time.Minute, eval: &gate},
			},
		},
		{
			name: "resolved after dismissal starts afresh",
			steps: []step{
				eval(legacy(10), show(0, LowEntropy)),
				{at: time.Minute, closed: 1},
				{at: 2 * time.Minute, eval: ptr(legacy(3000))},
				{at: 3 * time.Minute, eval: ptr(legacy(10)), want: show(0, LowEntropy)},
			},
		},
		{
			name: "someone else's notification closing is ignored",
			steps: []step{
				eval(notReady(), show(0, CRNGNotInitialized)),
				{closed: 7},
				eval(timedOut(notReady()), show(1, CRNGNotInitialized|GateTimedOut)),
			},
		},
		{
			name: "click shows details in a fresh notification",
			steps: []step{
				eval(gate, show(0, GateTimedOut)),
				{invoke: "default", invokeID: 1, wantWithdraw: 1},
				eval(gate, Action{Op: Show, Conditions: GateTimedOut, Details: true}),
				// The clicked one's close signal comes late.
				{closed: 1},
				eval(gate, keep),
			},
		},
		{
			name: "click on a notification already closed",
			steps: []step{
				eval(gate, show(0, GateTimedOut)),
				{closed: 1},
				{invoke: "default", invokeID: 1, wantWithdraw: 0},
				eval(gate, Action{Op: Show, Conditions: GateTimedOut, Details: true}),
			},
		},
		{
			name: "dismissing the details ends them",
			steps: []step{
				eval(notReady(), show(0, CRNGNotInitialized)),
				{invoke: "default", invokeID: 1, wantWithdraw: 1},
				eval(notReady(), Action{Op: Show, Conditions: CRNGNotInitialized, Details: true}),
				{closed: 2},
				{at: 11 * time.Minute, eval: ptr(notReady()), want: show(0, CRNGNotInitialized)},
			},
		},
		{
			name: "other actions and other notifications' clicks are ignored",
			steps: []step{
				eval(gate, show(0, GateTimedOut)),
				{invoke: "dismiss", invokeID: 1},
				{invoke: "default", invokeID: 9},
				eval(gate, keep),
			},
		},
		{
			name: "restarted server gets the notification again",
			steps: []step{
				eval(gate, show(0, GateTimedOut)),
				{server: true},
				eval(gate, show(0, GateTimedOut)),
			},
		},
		{
			name: "restarted server does not undo a dismissal",
			steps: []step{
				eval(notReady(), show(0, CRNGNotInitialized)),
				{closed: 1},
				{server: true},
				eval(notReady(), keep),
			},
		},
		{
			name: "failed send is retried",
			steps: []step{
				{eval: ptr(notReady()), failing: true, want: show(0, CRNGNotInitialized)},
				eval(notReady(), show(0, CRNGNotInitialized)),
				eval(notReady(), keep),
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			policy := tt.policy
			if policy == (Policy{}) {
				policy = DefaultPolicy()
			}
			d := NewDecider(policy)
			start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
			nextID := uint32(1)
			for i, s := range tt.steps {
				now := start.Add(s.at)
				switch {
				case s.eval != nil:
					got := d.Evaluate(now, *s.eval)
					if got != s.want {
						t.Fatalf("step %d: Evaluate = %+v, want %+v", i, got, s.want)
					}
					if got.Op != Show {
						continue
					}
					if s.failing {
						d.SendFailed()
						continue
					}
					id := got.ID
					if id == 0 {
						id, nextID = nextID, nextID+1
					}
					d.Shown(got, id)
				case s.closed != 0:
					d.Closed(now, s.closed)
				case s.invoke != "":
					withdraw, _ := d.Invoked(s.invokeID, s.invoke)
					if withdraw != s.wantWithdraw {
						t.Fatalf("step %d: Invoked withdraws %d, want %d", i, withdraw, s.wantWithdraw)
					}
				case s.server:
					d.ServerChanged()
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestDeadline(t *testing.T) {
	start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name   string
		facts  gatestate.View
		closed bool
		want   time.Duration // after the close; 0 for none
	}{
		{name: "shown", facts: notReady()},
		{name: "dismissed ongoing", facts: notReady(), closed: true, want: 10 * time.Minute},
		{name: "dismissed boot fact", facts: timedOut(ready()), closed: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecider(DefaultPolicy())
			a := d.Evaluate(start, tt.facts)
			d.Shown(a, 1)
			if tt.closed {
				d.Closed(start, 1)
			}
			got, ok := d.Deadline()
			if ok != (tt.want != 0) || (ok && !got.Equal(start.Add(tt.want))) {
				t.Errorf("Deadline = %v, %t; want %v after the close", got, ok, tt.want)
			}
		})
	}
}

func TestWithdraw(t *testing.T) {
	d := NewDecider(DefaultPolicy())
	d.Shown(d.Evaluate(time.Now(), notReady()), 5)
	if id := d.Withdraw(); id != 5 {
		t.Errorf("Withdraw = %d, want 5", id)
	}
	if id := d.Withdraw(); id != 0 {
		t.Errorf("second Withdraw = %d, want 0", id)
	}
}

func TestConditionsString(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    Conditions
		want string
	}{
		{name: "none", c: 0, want: "none"},
		{name: "one", c: LowEntropy, want: "low-entropy"},
		{name: "ordered by severity", c: NoSeedCredited | CRNGNotInitialized | GateTimedOut, want: "crng-not-initialized,gate-timed-out,no-seed-credited"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.String(); got != tt.want {
				t.Errorf("String = %q, want %q", got, tt.want)
			}
		})
	}
}
