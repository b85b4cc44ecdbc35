// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"testing"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

func TestPlanWakeup(t *testing.T) {
	p := Policy{EntropyLow: 128, EntropyHigh: 256}
	preFiveSix := notReady()
	preFiveSix.Kernel = pool.State{EntropyAvail: 20, PoolSize: 4096, WriteWakeupThreshold: 896, Semantics: pool.Legacy}
	legacyNotReady := preFiveSix
	legacyNotReady.Kernel.PollMeansReady = true
	unknown := ready()
	unknown.Readiness = pool.Unknown
	lowThreshold := legacy(3000)
	lowThreshold.Kernel.WriteWakeupThreshold = 64
	for _, tt := range []struct {
		name  string
		facts gatestate.View
		low   bool
		// disabled turns the entropy warning off (EntropyLow=0).
		disabled bool
		want     wakeup
	}{
		{name: "modern not ready: POLLIN means ready", facts: notReady(), want: wakeup{events: unix.POLLIN}},
		{name: "5.6 to 5.17 not ready: POLLIN means ready", facts: legacyNotReady, want: wakeup{events: unix.POLLIN}},
		{name: "before 5.6: POLLIN says nothing", facts: preFiveSix, want: wakeup{periodic: true}},
		{name: "unknown", facts: unknown, want: wakeup{periodic: true}},
		{name: "modern ready: nothing ever changes", facts: ready(), want: wakeup{}},
		{name: "legacy above the write wakeup threshold: POLLOUT on a fall", facts: legacy(3000), want: wakeup{events: unix.POLLOUT}},
		{name: "legacy below the write wakeup threshold: POLLOUT is asserted", facts: legacy(500), want: wakeup{periodic: true}},
		{name: "legacy low: nothing signals a rise", facts: legacy(20), low: true, want: wakeup{periodic: true}},
		{name: "legacy threshold under the low mark signals too late", facts: lowThreshold, want: wakeup{periodic: true}},
		{name: "legacy warning disabled", facts: legacy(3000), disabled: true, want: wakeup{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			policy := p
			if tt.disabled {
				policy.EntropyLow = 0
			}
			if got := planWakeup(tt.facts, policy, tt.low); got != tt.want {
				t.Errorf("planWakeup = %+v, want %+v", got, tt.want)
			}
		})
	}
}
