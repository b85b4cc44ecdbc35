// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// ErrBusClosed is returned by Run when the session bus connection closed:
// the session is over.
var ErrBusClosed = errors.New("session bus connection closed")

// Options configure Run.
type Options struct {
	Pool pool.Pool
	// Random wakes Run when /dev/random signals a change; nil re-checks
	// every FallbackInterval wherever an event would be needed.
	Random    Waiter
	StatePath string
	Policy    Policy
	// FallbackInterval is how often Run re-checks where no event tells
	// it of a change. It must be positive.
	FallbackInterval time.Duration
	Translator       *i18n.Translator
	// Bus is a connected session bus; Run does not close it.
	Bus *dbus.Conn
	// Logf reports problems, Debugf every event and decision.
	Logf, Debugf func(format string, args ...any)
}

// Run keeps the notification in line with the facts until ctx is done,
// when it withdraws the notification and returns nil, or until the bus
// connection closes (ErrBusClosed). It stays on the bus all the while,
// since desktops drop a client's notifications when it leaves.
func Run(ctx context.Context, o Options) error {
	if o.FallbackInterval <= 0 {
		return fmt.Errorf("fallback interval %v: must be positive", o.FallbackInterval)
	}
	srv, err := newServer(o.Bus, o.Debugf)
	if err != nil {
		return err
	}
	defer srv.shutdown()
	l := &loop{o: o, srv: srv, d: NewDecider(o.Policy)}
	if l.watcher, err = gatestate.Watch(o.StatePath); err != nil {
		o.Logf("%v; re-reading the gate state every %s instead", err, o.FallbackInterval)
	} else {
		defer l.watcher.Close()
		l.fileChanges = l.watcher.Changes()
	}
	for {
		// The notifier judges the pool by its own Policy, not by the
		// gate's threshold.
		facts := gatestate.ReadView(o.Pool, o.StatePath, 0)
		l.logProblems(facts)
		l.apply(l.d.Evaluate(time.Now(), facts), facts)
		if err := l.wait(ctx, facts); err != nil {
			if errors.Is(err, ErrBusClosed) {
				return err
			}
			if id := l.d.Withdraw(); id != 0 {
				if err := srv.close(id); err != nil {
					o.Debugf("%v", err)
				}
			}
			return nil
		}
	}
}

// loop is Run's state between iterations.
type loop struct {
	o       Options
	srv     *server
	d       *Decider
	watcher *gatestate.Watcher
	// fileChanges is nil when the state file is not watched.
	fileChanges <-chan struct{}
	// sendFailed avoids logging the same failure at every event.
	sendFailed bool
	// problems are the last logged problems, so each is logged once.
	problems string
}

// apply carries out a decision.
func (l *loop) apply(a Action, f gatestate.View) {
	switch a.Op {
	case Show:
		id, err := l.srv.show(Render(l.o.Translator, a, f, l.srv.markup), a.ID)
		if err != nil {
			if !l.sendFailed {
				l.o.Logf("%v", err)
			}
			l.sendFailed = true
			l.d.SendFailed()
			return
		}
		l.sendFailed = false
		l.d.Shown(a, id)
		l.o.Debugf("notification %d (replacing %d): %s, details %t", id, a.ID, a.Conditions, a.Details)
	case Close:
		if err := l.srv.close(a.ID); err != nil {
			l.o.Debugf("%v", err)
		}
		l.o.Debugf("notification %d closed: resolved", a.ID)
	}
}

// logProblems logs what could not be read, once per change.
func (l *loop) logProblems(f gatestate.View) {
	var errs []error
	if f.Readiness == pool.Unknown {
		errs = append(errs, f.ReadinessErr)
	}
	errs = append(errs, f.StateFileProblem())
	var text string
	if err := errors.Join(errs...); err != nil {
		text = err.Error()
	}
	if text != l.problems && text != "" {
		l.o.Logf("%s", text)
	}
	l.problems = text
}

// wait sleeps until something may have changed: the kernel, the state
// file, the notification server, or a dismissed notification becoming
// due. It returns ctx's error or ErrBusClosed when Run should end.
func (l *loop) wait(ctx context.Context, f gatestate.View) error {
	wake := planWakeup(f, l.o.Policy, l.d.low)
	if (wake.events != 0 && l.o.Random == nil) || l.fileChanges == nil {
		wake.periodic = true
	}
	now := time.Now()
	var next time.Time
	if wake.periodic {
		next = now.Add(l.o.FallbackInterval)
	}
	if t, ok := l.d.Deadline(); ok && (next.IsZero() || t.Before(next)) {
		next = t
	}
	var timeout <-chan time.Time
	if !next.IsZero() {
		timer := time.NewTimer(next.Sub(now))
		defer timer.Stop()
		timeout = timer.C
	}

	var kernel chan error
	if wake.events != 0 && l.o.Random != nil {
		waitCtx, cancel := context.WithCancel(ctx)
		kernel = make(chan error, 1)
		random := l.o.Random
		go func() { kernel <- random.Wait(waitCtx, wake.events) }()
		defer func() {
			cancel()
			if kernel != nil {
				<-kernel // the waiting goroutine is done before the next wait
			}
		}()
	}

	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-l.o.Bus.Context().Done():
		return ErrBusClosed
	case err := <-kernel:
		kernel = nil
		if err != nil && ctx.Err() == nil {
			l.o.Logf("%v; re-checking every %s instead", err, l.o.FallbackInterval)
			l.o.Random = nil
		}
		l.o.Debugf("random device: poll events %#x", wake.events)
	case _, ok := <-l.fileChanges:
		if !ok {
			l.o.Logf("%v; re-reading the gate state every %s instead", l.watcher.Err(), l.o.FallbackInterval)
			l.fileChanges = nil
			break
		}
		l.o.Debugf("gate state file changed")
	case <-timeout:
		l.o.Debugf("timer")
	case e := <-l.srv.events:
		l.handle(e)
	}
	return nil
}

func (l *loop) handle(e serverEvent) {
	switch e.kind {
	case eventClosed:
		l.o.Debugf("notification %d closed: %v", e.id, e.reason)
		l.d.Closed(time.Now(), e.id)
	case eventAction:
		l.o.Debugf("notification %d: action %q", e.id, e.key)
		if withdraw, ok := l.d.Invoked(e.id, e.key); ok && withdraw != 0 {
			if err := l.srv.close(withdraw); err != nil {
				l.o.Debugf("%v", err)
			}
		}
	case eventOwner:
		if e.owner == "" {
			l.o.Logf("notification server left the bus")
		} else {
			l.o.Logf("notification server is %s", e.owner)
			l.srv.refreshCapabilities()
		}
		l.sendFailed = false
		l.d.ServerChanged()
	}
}
