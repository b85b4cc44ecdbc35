// SPDX-License-Identifier: GPL-3.0-or-later

package plymouth

// Sink shows one line of boot progress. Show and Clear return quickly and
// cannot fail: a missing display is not the caller's problem.
type Sink interface {
	Show(text string)
	Clear()
}

// Display shows progress on the Plymouth splash and, while no Plymouth
// answers, on the console.
type Display struct {
	Splash *Splash
	// Console is the fallback; nil means none.
	Console *Console
}

// NewDisplay returns a Display for the system's plymouthd and console,
// with default timeouts and intervals. logf receives at most one debug
// message per output; nil discards them.
func NewDisplay(logf func(format string, args ...any)) *Display {
	return &Display{
		Splash:  &Splash{Logf: logf},
		Console: &Console{Logf: logf},
	}
}

// Show puts text on the splash, or on the console if the splash is not
// there.
func (d *Display) Show(text string) {
	if d.Splash.show(text) || d.Console == nil {
		return
	}
	d.Console.Show(text)
}

// Clear removes the message from the splash and lets the console repeat
// the next text.
func (d *Display) Clear() {
	d.Splash.Clear()
	if d.Console != nil {
		d.Console.Clear()
	}
}
