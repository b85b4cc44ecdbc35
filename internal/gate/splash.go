// SPDX-License-Identifier: GPL-3.0-or-later

package gate

import (
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/plymouth"
)

// SplashSink shows the wait on the boot splash (or the console, where the
// display falls back to it): the percentage where the kernel's numbers
// mean something, the seconds waited where they do not.
type SplashSink struct {
	Display plymouth.Sink
	// Translator is the boot language; nil means English.
	Translator *i18n.Translator
}

// Update implements Sink.
func (s SplashSink) Update(p Progress) {
	tr := s.Translator
	if tr == nil {
		tr = i18n.English
	}
	switch p.Phase {
	case gatestate.Waiting:
		s.Display.Show(p.SplashText(tr))
	case gatestate.Open:
		if p.Outcome == gatestate.Timeout {
			s.Display.Show(tr.G("Continuing without enough randomness"))
			return
		}
		s.Display.Clear()
	case gatestate.TimedOut:
		s.Display.Show(tr.G("Not enough randomness: services that need it will not start"))
	case gatestate.Stopped:
		s.Display.Clear()
	}
}
