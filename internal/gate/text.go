// SPDX-License-Identifier: GPL-3.0-or-later

package gate

import (
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
)

// Status is the one-line description of p, in tr's language: English for
// the journal and systemd, the user's for a terminal.
func (p Progress) Status(tr *i18n.Translator) string {
	waited := roundWait(p.Waited).String()
	switch p.Phase {
	case gatestate.Seeding:
		return tr.G("Loading random seeds")
	case gatestate.Waiting:
		var s string
		if f := p.Fraction(); f >= 0 {
			// TRANSLATORS: %[1]d is a percentage, %[2]s the entropy
			// (e.g. "entropy 12/256 bits"), %[3]s "active" or
			// "passive", %[4]s a duration like 1.5s.
			s = tr.G("Waiting for the kernel random number generator: %[1]d%% (%[2]s, %[3]s mode, %[4]s)", int(f*100), p.entropyText(tr), p.Mode, waited)
		} else {
			// TRANSLATORS: %[1]s is the entropy (e.g. "entropy 12/256
			// bits"), %[2]s "active" or "passive", %[3]s a duration.
			s = tr.G("Waiting for the kernel random number generator (%[1]s, %[2]s mode, %[3]s)", p.entropyText(tr), p.Mode, waited)
		}
		if p.Reason != "" {
			s += ": " + p.Reason
		}
		return s
	case gatestate.Open:
		if p.Outcome == gatestate.Timeout {
			if p.CRNGInitialized {
				return tr.G("Open by timeout after %[1]s, CRNG initialized (%[2]s): continuing without enough randomness", waited, p.entropyText(tr))
			}
			return tr.G("Open by timeout after %[1]s, CRNG not initialized (%[2]s): continuing without enough randomness", waited, p.entropyText(tr))
		}
		return tr.G("Open: CRNG initialized (%[1]s) after %[2]s", p.entropyText(tr), waited)
	case gatestate.TimedOut:
		if p.CRNGInitialized {
			return tr.G("Timed out after %[1]s, CRNG initialized (%[2]s): dependent services will not start", waited, p.entropyText(tr))
		}
		return tr.G("Timed out after %[1]s, CRNG not initialized (%[2]s): dependent services will not start", waited, p.entropyText(tr))
	case gatestate.Stopped:
		return tr.G("Stopped after %s while waiting", waited)
	}
	return string(p.Phase)
}

func (p Progress) entropyText(tr *i18n.Translator) string {
	switch {
	case p.EntropyAvail < 0:
		return tr.G("entropy unknown")
	case p.Threshold > 0:
		// TRANSLATORS: entropy available out of the threshold, in bits.
		return tr.N("entropy %[1]d/%[2]d bit", "entropy %[1]d/%[2]d bits", p.Threshold, p.EntropyAvail, p.Threshold)
	default:
		return tr.N("entropy %d bit", "entropy %d bits", p.EntropyAvail, p.EntropyAvail)
	}
}

// SplashText is the short progress line for the boot splash: the
// percentage where the kernel's numbers mean something, else the seconds
// waited.
func (p Progress) SplashText(tr *i18n.Translator) string {
	if f := p.Fraction(); f >= 0 {
		return tr.G("Initializing the random number generator… %d%%", int(f*100))
	}
	// TRANSLATORS: %d is the number of seconds waited so far.
	return tr.N("Initializing the random number generator… (%d second)", "Initializing the random number generator… (%d seconds)", int(p.Waited.Seconds()), int(p.Waited.Seconds()))
}

// roundWait keeps wait times readable: milliseconds under a second,
// tenths of a second above.
func roundWait(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
