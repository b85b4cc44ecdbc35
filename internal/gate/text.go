package gate

import (
	"fmt"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
)

// Status is the one-line description of p for `systemctl status`, the
// terminal and logs.
func (p Progress) Status() string {
	waited := roundWait(p.Waited)
	switch p.Phase {
	case gatestate.Seeding:
		return "Loading random seeds"
	case gatestate.Waiting:
		s := "Waiting for the kernel random number generator"
		if f := p.Fraction(); f >= 0 {
			s += fmt.Sprintf(": %d%%", int(f*100))
		}
		s += fmt.Sprintf(" (%s, %s mode, %s)", p.entropyText(), p.Mode, waited)
		if p.Reason != "" {
			s += ": " + p.Reason
		}
		return s
	case gatestate.Open:
		if p.Outcome == gatestate.Timeout {
			return fmt.Sprintf("Open by timeout after %s, CRNG %s (%s): continuing without enough randomness", waited, p.crngText(), p.entropyText())
		}
		return fmt.Sprintf("Open: CRNG initialized (%s) after %s", p.entropyText(), waited)
	case gatestate.TimedOut:
		return fmt.Sprintf("Timed out after %s, CRNG %s (%s): dependent services will not start", waited, p.crngText(), p.entropyText())
	case gatestate.Stopped:
		return fmt.Sprintf("Stopped after %s while waiting", waited)
	}
	return string(p.Phase)
}

func (p Progress) crngText() string {
	if p.CRNGInitialized {
		return "initialized"
	}
	return "not initialized"
}

func (p Progress) entropyText() string {
	if p.EntropyAvail < 0 {
		return "entropy unknown"
	}
	if p.Threshold > 0 {
		return fmt.Sprintf("entropy %d/%d bits", p.EntropyAvail, p.Threshold)
	}
	return fmt.Sprintf("entropy %d bits", p.EntropyAvail)
}

// roundWait keeps wait times readable: milliseconds under a second,
// tenths of a second above.
func roundWait(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
