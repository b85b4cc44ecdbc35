// SPDX-License-Identifier: GPL-3.0-or-later

// Package notifier is entropy-notify: it warns the desktop user, with one
// notification on the session bus, whenever the kernel's random number
// generator or the boot's seeding is not in a good state, and withdraws the
// warning once the situation is resolved.
//
// The package is a pure decision core with thin adapters around it:
//
//   - Decider turns the gate's public view (gatestate.View: what the
//     kernel and the gate's state file say) into the notification that should be on screen: which Conditions it
//     reports, whether it replaces the one shown (replaces_id) or closes
//     it, with hysteresis for the entropy estimate and a rate limit for
//     showing again what the user dismissed. Time is passed in.
//   - Render turns a decision into translated, markup-escaped text.
//   - pool.RandomDevice waits in the kernel (poll on /dev/random through
//     the runtime's netpoller) and gatestate.Watcher in inotify, so a healthy system
//     costs no periodic wake-ups; Run re-checks periodically only where
//     the kernel offers no event for the change it waits for.
//   - server speaks the freedesktop notification protocol over D-Bus and
//     follows the notification server when it restarts.
//   - Main is the command line: the daemon, or --once for scripts.
package notifier
