// SPDX-License-Identifier: GPL-3.0-or-later

package plymouth

import "testing"

// What tests of other packages' use of Plymouth need from this package's
// real-plymouthd harness (plymouthd_test.go), for tests in plymouth_test.

// Daemon is a real plymouthd on a pseudo-terminal in a network namespace.
type Daemon = plymouthd

// StartDaemon starts one, with its debug stream if debug is set, or skips.
func StartDaemon(tb testing.TB, debug bool) *Daemon { return startPlymouthd(tb, debug) }

// Run calls f on the thread that shares the daemon's network namespace.
// Everything that talks to the daemon must run inside f.
func (d *plymouthd) Run(f func() error) error { return d.ns.run(f) }

// DebugLines returns what follows marker on each debug stream line.
func (d *plymouthd) DebugLines(tb testing.TB, marker string) []string {
	return d.debugLines(tb, marker)
}

// Screen returns everything plymouthd wrote to its terminal so far.
func (d *plymouthd) Screen() []byte {
	d.screen.mu.Lock()
	defer d.screen.mu.Unlock()
	return append([]byte(nil), d.screen.seen.Bytes()...)
}
