// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/esiqveland/notify"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// everyCondition is one of each condition's facts, with details on.
func everyConditionFacts() gatestate.View {
	f := withSeeds(timedOut(notReady()), seedFirstBoot, seedStoreError)
	f.Gate.Reason = "timeout expired"
	return f
}

// TestRenderTranslatesEverything renders every condition and the details
// in the pseudo language, which brackets each translated string: a line
// without brackets escaped translation.
func TestRenderTranslatesEverything(t *testing.T) {
	tr := i18n.Find([]string{i18n.Pseudo}, "")
	unknown := ready()
	unknown.Readiness, unknown.ReadinessErr = pool.Unknown, errors.New("getrandom forbidden")
	shut := timedOut(notReady())
	shut.Gate.Phase = gatestate.TimedOut
	notRun := legacy(10)
	notRun.GateErr = gatestate.ErrNotRun
	for _, tt := range []struct {
		name  string
		facts gatestate.View
		c     Conditions
	}{
		{name: "all conditions", facts: everyConditionFacts(), c: CRNGNotInitialized | GateTimedOut | SeedNotRefreshed | NoSeedCredited},
		{name: "unknown", facts: unknown, c: ReadinessUnknown},
		{name: "kept shut", facts: shut, c: CRNGNotInitialized | GateTimedOut},
		{name: "low entropy, gate not run", facts: notRun, c: LowEntropy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, details := range []bool{false, true} {
				n := Render(tr, Action{Op: Show, Conditions: tt.c, Details: details}, tt.facts, true)
				for _, text := range []string{n.AppName, n.Summary, n.DetailsLabel} {
					assertTranslated(t, text)
				}
				for _, line := range strings.Split(n.Body, "\n") {
					if line != "" {
						assertTranslated(t, line)
					}
				}
			}
		})
	}
}

func assertTranslated(t *testing.T, s string) {
	t.Helper()
	if !strings.HasPrefix(s, "⟦") || !strings.HasSuffix(s, "⟧") {
		t.Errorf("text escaped translation: %q", s)
	}
}

func TestRenderEnglish(t *testing.T) {
	for _, tt := range []struct {
		name        string
		facts       gatestate.View
		c           Conditions
		wantSummary string
		wantBody    []string
		wantUrgency notify.Urgency
		wantIcon    string
	}{
		{
			name: "most severe condition is the summary", facts: everyConditionFacts(),
			c:           CRNGNotInitialized | GateTimedOut | NoSeedCredited,
			wantSummary: "Random number generator not ready",
			wantBody:    []string{"cannot make strong encryption keys yet", "timed out after 2 minutes, and services such as Tor started anyway", "first time"},
			wantUrgency: notify.UrgencyCritical, wantIcon: "security-low-symbolic",
		},
		{
			name: "degraded boot", facts: timedOut(ready()), c: GateTimedOut,
			wantSummary: "Started without enough randomness",
			wantBody:    []string{"timed out after 2 minutes"},
			wantUrgency: notify.UrgencyNormal, wantIcon: "security-medium-symbolic",
		},
		{
			name: "low entropy says how low", facts: legacy(42), c: LowEntropy,
			wantSummary: "Low entropy", wantBody: []string{"only 42 bits"},
			wantUrgency: notify.UrgencyNormal, wantIcon: "security-medium-symbolic",
		},
		{
			name: "seed not saved", facts: withSeeds(ready(), seedStoreError), c: SeedNotRefreshed,
			wantSummary: "Random seed not saved", wantBody: []string{"could not be saved"},
			wantUrgency: notify.UrgencyNormal, wantIcon: "security-medium-symbolic",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := Render(i18n.English, Action{Op: Show, Conditions: tt.c}, tt.facts, false)
			if n.Summary != tt.wantSummary {
				t.Errorf("Summary = %q, want %q", n.Summary, tt.wantSummary)
			}
			for _, w := range tt.wantBody {
				if !strings.Contains(n.Body, w) {
					t.Errorf("Body %q lacks %q", n.Body, w)
				}
			}
			if strings.Contains(n.Body, "Details:") {
				t.Errorf("Body has details nobody asked for: %q", n.Body)
			}
			if n.Urgency != tt.wantUrgency || n.Icon != tt.wantIcon {
				t.Errorf("urgency, icon = %v, %q; want %v, %q", n.Urgency, n.Icon, tt.wantUrgency, tt.wantIcon)
			}
		})
	}
}

func TestRenderDetails(t *testing.T) {
	f := withSeeds(timedOut(ready()), seedFirstBoot)
	f.Gate.Reason = `timeout <2min> & "more"`
	for _, tt := range []struct {
		name   string
		markup bool
		want   []string
		absent []string
	}{
		{
			name: "plain", markup: false,
			want: []string{"Details:", "Random number generator: initialized", "Entropy estimate: 256 of 256 bits",
				"Startup wait: timed out after 2 minutes, services started anyway", `Reason: timeout <2min> & "more"`,
				"Seed sector, load: nothing passed to the kernel"},
		},
		{
			name: "markup escaped", markup: true,
			want:   []string{`Reason: timeout &lt;2min&gt; &amp; "more"`},
			absent: []string{"<", ">", "& "},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := Render(i18n.English, Action{Op: Show, Conditions: GateTimedOut | NoSeedCredited, Details: true}, f, tt.markup)
			for _, w := range tt.want {
				if !strings.Contains(n.Body, w) {
					t.Errorf("Body lacks %q:\n%s", w, n.Body)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(n.Body, a) {
					t.Errorf("Body has %q:\n%s", a, n.Body)
				}
			}
		})
	}
}

func TestWaitedText(t *testing.T) {
	for _, tt := range []struct {
		name string
		d    time.Duration
		want string
	}{
		{name: "one second", d: 1200 * time.Millisecond, want: "1 second"},
		{name: "seconds", d: 90 * time.Second, want: "90 seconds"},
		{name: "minutes", d: 2*time.Minute + 40*time.Second, want: "3 minutes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := waitedText(i18n.English, tt.d); got != tt.want {
				t.Errorf("waitedText(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}
