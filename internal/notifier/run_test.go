// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/esiqveland/notify"
	"github.com/godbus/dbus/v5"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// kickWaiter stands in for /dev/random beside a fake pool: the test kicks
// it after changing the pool. Its buffer of one holds a kick until the
// next Wait, as the kernel holds an asserted event.
type kickWaiter chan struct{}

func (k kickWaiter) Wait(ctx context.Context, _ int16) error {
	select {
	case <-k:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// notifierRun is a Run in the background against a desktop.
type notifierRun struct {
	pool      *pool.Fake
	kick      kickWaiter
	statePath string
	cancel    context.CancelFunc
	done      chan error
}

// startNotifier runs the notifier on d's bus with a fake pool that is not
// ready, and a state file whose directory does not exist yet. o sets the
// policy, and may set the translator (English by default) and Debugf.
func startNotifier(t testing.TB, d *desktop, o Options) *notifierRun {
	t.Helper()
	conn, err := dbus.Connect(d.bus)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := &notifierRun{
		pool:      pool.NewFake(pool.State{EntropyAvail: 12, PoolSize: 256, WriteWakeupThreshold: 896, Semantics: pool.Modern, PollMeansReady: true}),
		kick:      make(kickWaiter, 1),
		statePath: filepath.Join(d.dir, "run", "entropy-gate", "state.json"),
		done:      make(chan error, 1),
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	o.Pool, o.Random, o.StatePath, o.Bus = r.pool, r.kick, r.statePath, conn
	// Nothing periodic: every change must come from an event.
	o.FallbackInterval = time.Hour
	o.Logf = t.Logf
	if o.Translator == nil {
		o.Translator = i18n.English
	}
	if o.Debugf == nil {
		o.Debugf = t.Logf
	}
	go func() { r.done <- Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// setReady initializes the fake CRNG and wakes the notifier as
// /dev/random would.
func (r *notifierRun) setReady() {
	r.pool.SetReady()
	select {
	case r.kick <- struct{}{}:
	default: // a kick is pending already
	}
}

func (r *notifierRun) writeState(t testing.TB, phase gatestate.Phase, outcome gatestate.Outcome, reason string) {
	t.Helper()
	st := gatestate.State{Phase: phase, Outcome: outcome, Reason: reason, Mode: "passive", Semantics: "modern",
		Threshold: 256, EntropyAvail: 12, WaitedMS: 120000}
	if err := gatestate.Write(r.statePath, st); err != nil {
		t.Fatal(err)
	}
}

// stop ends Run as SIGTERM would, and returns its error.
func (r *notifierRun) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	return nil
}

func hasHint(c notifyCall, name string, want any) bool {
	v, ok := c.Hints[name]
	return ok && v.Value() == want
}

// TestDesktopLifecycle drives the notifier through "not ready → degraded
// → fine" and checks what a real notification server received and shows:
// one notification, updated in place, closed when resolved.
func TestDesktopLifecycle(t *testing.T) {
	d := newDesktop(t)
	mon := d.monitor()
	r := startNotifier(t, d, Options{Policy: DefaultPolicy()})

	// Not ready: critical.
	first := mon.waitAnswered(t, 1)[0]
	if first.ReplacesID != 0 || first.Summary != "Random number generator not ready" {
		t.Errorf("first notification: replaces %d, summary %q", first.ReplacesID, first.Summary)
	}
	if first.urgency() != byte(notify.UrgencyCritical) || first.Icon != "security-low-symbolic" || first.Expire != 0 {
		t.Errorf("first notification: urgency %d, icon %q, expire %d; want critical, security-low-symbolic, never", first.urgency(), first.Icon, first.Expire)
	}
	if first.AppName != "Entropy Gate" || !hasHint(first, "desktop-entry", AppID) {
		t.Errorf("app name %q, hints %v; want GNOME's desktop-entry %s", first.AppName, first.Hints, AppID)
	}
	if !slices.Equal(first.Actions, []string{"default", "Show details"}) {
		t.Errorf("actions = %q, want the default action", first.Actions)
	}
	d.waitDisplayed(1)
	if px := d.screenshot("notify-1-not-ready"); px != criticalPixel {
		t.Errorf("bubble colour %s, want critical %s", px, criticalPixel)
	}

	// The gate gives up waiting and opens: still critical, both reasons.
	r.writeState(t, gatestate.Open, gatestate.Timeout, "timeout expired")
	second := mon.waitAnswered(t, 2)[1]
	if second.ReplacesID != first.ID || second.ID != first.ID {
		t.Errorf("update replaces %d and got id %d, want both %d", second.ReplacesID, second.ID, first.ID)
	}
	if second.urgency() != byte(notify.UrgencyCritical) || !strings.Contains(second.Body, "services such as Tor started anyway") {
		t.Errorf("degraded while not ready: urgency %d, body %q", second.urgency(), second.Body)
	}

	// The CRNG initializes: a degraded boot remains, at normal urgency.
	r.setReady()
	third := mon.waitAnswered(t, 3)[2]
	if third.ReplacesID != first.ID || third.ID != first.ID {
		t.Errorf("update replaces %d and got id %d, want both %d", third.ReplacesID, third.ID, first.ID)
	}
	if third.urgency() != byte(notify.UrgencyNormal) || third.Summary != "Started without enough randomness" || third.Icon != "security-medium-symbolic" {
		t.Errorf("degraded: urgency %d, summary %q, icon %q", third.urgency(), third.Summary, third.Icon)
	}
	if got := d.displayed(); got != 1 {
		t.Errorf("dunst shows %d notifications, want 1", got)
	}
	if px := d.screenshot("notify-2-degraded"); px != normalPixel {
		t.Errorf("bubble colour %s, want normal %s", px, normalPixel)
	}

	// Resolved: closed by the notifier.
	r.writeState(t, gatestate.Open, gatestate.Ready, "")
	if reason := mon.waitClosed(t, first.ID); reason != uint32(notify.ReasonClosedByCall) {
		t.Errorf("closed with reason %d, want closed by call", reason)
	}
	if got := mon.closeCalls(); len(got) != 1 || got[0].ID != first.ID {
		t.Errorf("CloseNotification calls %v, want one for %d", got, first.ID)
	}
	d.waitDisplayed(0)
	// dunst's history holds every notification that ever closed: one.
	history := d.dunstctl("history")
	if n := strings.Count(history, `"summary"`); n != 1 || !strings.Contains(history, "Started without enough randomness") {
		t.Errorf("dunst history has %d notifications, want the degraded one only:\n%s", n, history)
	}
	if n := mon.callCount(); n != 3 {
		t.Errorf("%d Notify calls, want 3", n)
	}
	if err := r.stop(t); err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
}

// TestDesktopDismissal: a notification the user dismissed stays away while
// nothing new happens, comes back at once for a new condition, and after
// the renotification interval for a condition that persists.
func TestDesktopDismissal(t *testing.T) {
	d := newDesktop(t)
	mon := d.monitor()
	// Long enough that nothing else in the test waits that long.
	renotify := 3 * time.Second
	r := startNotifier(t, d, Options{Policy: Policy{EntropyLow: 128, EntropyHigh: 256, Renotify: renotify}})

	first := mon.waitAnswered(t, 1)[0]
	d.waitDisplayed(1)
	d.dunstctl("close")
	dismissed := time.Now()
	if reason := mon.waitClosed(t, first.ID); reason != uint32(notify.ReasonDismissedByUser) {
		t.Fatalf("closed with reason %d, want dismissed", reason)
	}
	// The gate's progress rewrites the state file: no new condition.
	r.writeState(t, gatestate.Waiting, "", "")
	time.Sleep(300 * time.Millisecond)
	if n := mon.callCount(); n != 1 || d.displayed() != 0 {
		t.Fatalf("after dismissal: %d Notify calls, %d displayed; want 1, 0", n, d.displayed())
	}

	// The CRNG condition persists: back after the interval, as a new
	// notification.
	again := mon.waitAnswered(t, 2)[1]
	if waited := time.Since(dismissed); waited < renotify {
		t.Errorf("shown again after %v, before the %v interval", waited, renotify)
	}
	if again.ReplacesID != 0 || again.Summary != first.Summary {
		t.Errorf("renotification replaces %d, summary %q", again.ReplacesID, again.Summary)
	}

	// Dismissed again; a new condition brings it back without waiting.
	d.waitDisplayed(1)
	d.dunstctl("close")
	mon.waitClosed(t, again.ID)
	closed := time.Now()
	r.writeState(t, gatestate.Open, gatestate.Timeout, "timeout expired")
	third := mon.waitAnswered(t, 3)[2]
	if time.Since(closed) >= renotify {
		t.Fatalf("too slow to tell a new condition from a renotification")
	}
	if third.ReplacesID != 0 || !strings.Contains(third.Body, "timed out") {
		t.Errorf("new condition: replaces %d, body %q; want a fresh notification about the timeout", third.ReplacesID, third.Body)
	}
	d.waitDisplayed(1)
}

// TestDesktopDetails clicks the notification: the details come in its
// place, with the gate's reason escaped for the server's markup.
func TestDesktopDetails(t *testing.T) {
	d := newDesktop(t)
	mon := d.monitor()
	r := startNotifier(t, d, Options{Policy: DefaultPolicy()})
	r.writeState(t, gatestate.Open, gatestate.Timeout, "timeout <2min> & no seed")
	r.setReady()
	waitFor(t, "the degraded notification", func() bool {
		calls := mon.waitAnswered(t, 1)
		return calls[len(calls)-1].urgency() == byte(notify.UrgencyNormal)
	})
	d.waitDisplayed(1)
	d.dunstctl("action", "0")
	var details notifyCall
	waitFor(t, "the details", func() bool {
		calls := mon.waitAnswered(t, 1)
		details = calls[len(calls)-1]
		return strings.Contains(details.Body, "Details:")
	})
	if details.ReplacesID != 0 {
		t.Errorf("details replace %d, want a fresh notification", details.ReplacesID)
	}
	for _, want := range []string{"Startup wait: timed out after 2 minutes", "Reason: timeout &lt;2min&gt; &amp; no seed", "Random number generator: initialized"} {
		if !strings.Contains(details.Body, want) {
			t.Errorf("details lack %q:\n%s", want, details.Body)
		}
	}
	d.waitDisplayed(1)
	if px := d.screenshot("notify-3-details"); px != normalPixel {
		t.Errorf("bubble colour %s, want normal %s", px, normalPixel)
	}
}

// TestDesktopServerRestart: when the notification server restarts, the
// notification it lost is shown again.
func TestDesktopServerRestart(t *testing.T) {
	d := newDesktop(t)
	mon := d.monitor()
	startNotifier(t, d, Options{Policy: DefaultPolicy()})
	first := mon.waitAnswered(t, 1)[0]
	d.stopDunst()
	d.startDunst()
	again := mon.waitAnswered(t, 2)[1]
	if again.ReplacesID != 0 || again.Summary != first.Summary {
		t.Errorf("after restart: replaces %d, summary %q", again.ReplacesID, again.Summary)
	}
	d.waitDisplayed(1)
}

// TestDesktopBusGone: the notifier ends when its session bus goes away.
func TestDesktopBusGone(t *testing.T) {
	d := newDesktop(t)
	mon := d.monitor()
	r := startNotifier(t, d, Options{Policy: DefaultPolicy()})
	mon.waitAnswered(t, 1)
	stopProcess(d.daemon)
	select {
	case err := <-r.done:
		r.done <- err
		if !errors.Is(err, ErrBusClosed) {
			t.Errorf("Run = %v, want ErrBusClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the bus went away")
	}
}

// TestDesktopWithdrawOnStop: stopping the notifier withdraws its warning,
// which would otherwise go stale.
func TestDesktopWithdrawOnStop(t *testing.T) {
	d := newDesktop(t)
	mon := d.monitor()
	r := startNotifier(t, d, Options{Policy: DefaultPolicy()})
	first := mon.waitAnswered(t, 1)[0]
	d.waitDisplayed(1)
	if err := r.stop(t); err != nil {
		t.Errorf("Run = %v", err)
	}
	mon.waitClosed(t, first.ID)
	d.waitDisplayed(0)
}

// TestDesktopTranslated runs the notifier in the pseudo language, which
// brackets every translated string: whatever reaches the notification
// server unbracketed escaped translation.
func TestDesktopTranslated(t *testing.T) {
	d := newDesktop(t)
	mon := d.monitor()
	r := startNotifier(t, d, Options{Policy: DefaultPolicy(), Translator: i18n.Find([]string{i18n.Pseudo}, "")})
	r.writeState(t, gatestate.Open, gatestate.Timeout, "timeout expired")
	var last notifyCall
	waitFor(t, "both conditions", func() bool {
		calls := mon.waitAnswered(t, 1)
		last = calls[len(calls)-1]
		return strings.Contains(last.Body, "Tor")
	})
	texts := []string{last.AppName, last.Summary, last.Actions[1]}
	for _, line := range strings.Split(last.Body, "\n") {
		if line != "" {
			texts = append(texts, line)
		}
	}
	for _, text := range texts {
		if !strings.HasPrefix(text, "⟦") || !strings.HasSuffix(text, "⟧") {
			t.Errorf("untranslated text reached the server: %q", text)
		}
	}
	d.waitDisplayed(1)
	d.screenshot("notify-4-pseudo")
}

// TestDesktopGermanAndFrench shows the warning in German and French on a
// real notification server and keeps a screenshot of each.
func TestDesktopGermanAndFrench(t *testing.T) {
	for _, tt := range []struct{ lang, summary, body, action string }{
		{lang: "de_DE.UTF-8", summary: "Zufallszahlengenerator nicht bereit", body: "Beständigen Speicher", action: "Details anzeigen"},
		{lang: "fr_FR.UTF-8", summary: "Générateur de nombres aléatoires pas prêt", body: "Stockage persistant", action: "Afficher les détails"},
	} {
		t.Run(tt.lang, func(t *testing.T) {
			d := newDesktop(t)
			mon := d.monitor()
			startNotifier(t, d, Options{Policy: DefaultPolicy(), Translator: i18n.Find([]string{tt.lang}, "")})
			first := mon.waitAnswered(t, 1)[0]
			if first.Summary != tt.summary || !strings.Contains(first.Body, tt.body) || first.Actions[1] != tt.action {
				t.Errorf("notification in %s: summary %q, body %q, actions %q", tt.lang, first.Summary, first.Body, first.Actions)
			}
			d.waitDisplayed(1)
			d.screenshot("notify-" + tt.lang[:2])
		})
	}
}
