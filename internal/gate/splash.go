package gate

import (
	"fmt"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/plymouth"
)

// SplashSink shows the wait on the boot splash (or the console, where the
// display falls back to it): the percentage where the kernel's numbers
// mean something, the seconds waited where they do not.
type SplashSink struct {
	Display plymouth.Sink
}

// Update implements Sink.
func (s SplashSink) Update(p Progress) {
	switch p.Phase {
	case gatestate.Waiting:
		s.Display.Show(p.SplashText())
	case gatestate.Open:
		if p.Outcome == gatestate.Timeout {
			s.Display.Show("Continuing without enough randomness")
			return
		}
		s.Display.Clear()
	case gatestate.TimedOut:
		s.Display.Show("Not enough randomness: services that need it will not start")
	case gatestate.Stopped:
		s.Display.Clear()
	}
}

// SplashText is the short progress line for the boot splash.
func (p Progress) SplashText() string {
	if f := p.Fraction(); f >= 0 {
		return fmt.Sprintf("Initializing the random number generator… %d%%", int(f*100))
	}
	return fmt.Sprintf("Initializing the random number generator… (%ds)", int(p.Waited.Seconds()))
}
