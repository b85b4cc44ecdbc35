// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"context"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// Waiter sleeps until the kernel RNG may have changed in the way that
// matters next: a *pool.RandomDevice, or a fake in tests.
type Waiter interface {
	// Wait returns nil once /dev/random asserts events (unix.POLLIN or
	// unix.POLLOUT), or ctx's error once ctx is done.
	Wait(ctx context.Context, events int16) error
}

// wakeup is what can end the wait for the next change that would alter
// the verdict about the kernel.
type wakeup struct {
	// events are the poll events on /dev/random that signal it, 0 if
	// none does.
	events int16
	// periodic: no event signals it, so re-check every fallback interval.
	periodic bool
}

// planWakeup chooses what to wait for, per DESIGN.md's table of what poll
// on /dev/random means. low is the Decider's hysteresis state.
//
//   - Not initialized: POLLIN means "ready" where GRND_INSECURE exists
//     (5.6+); before, POLLIN only means entropy_avail reached
//     read_wakeup_threshold, so only re-checking tells.
//   - Initialized: the CRNG never goes back, so a modern kernel needs no
//     wake-up at all. A legacy pool's entropy_avail can still fall: POLLOUT
//     means it is below write_wakeup_threshold, which signals a fall below
//     the low mark only if that threshold is at or above the mark and not
//     already crossed; nothing signals a rise.
func planWakeup(f gatestate.View, p Policy, low bool) wakeup {
	switch f.Readiness {
	case pool.NotReady:
		if f.Kernel.PollMeansReady {
			return wakeup{events: unix.POLLIN}
		}
		return wakeup{periodic: true}
	case pool.Unknown:
		return wakeup{periodic: true}
	}
	k := f.Kernel
	if k.Semantics != pool.Legacy || p.EntropyLow <= 0 || k.EntropyAvail < 0 {
		return wakeup{}
	}
	if !low && k.WriteWakeupThreshold >= p.EntropyLow && k.EntropyAvail >= k.WriteWakeupThreshold {
		return wakeup{events: unix.POLLOUT}
	}
	return wakeup{periodic: true}
}
