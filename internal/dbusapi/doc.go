// SPDX-License-Identifier: GPL-3.0-or-later

// Package dbusapi is entropy-gate's status service on the system bus:
// org.boum.tails.EntropyGate1, whose read-only properties say whether the
// kernel's random number generator is ready by the gate's rule (the same
// as `entropy-gate status`), and whose WaitReady method lets a program
// such as the persistent storage assistant wait for it.
//
// The service learns of changes from events where the kernel offers them:
// the pool's own Wait for CRNG readiness, inotify for the gate's state
// file. entropy_avail has no change event, so it is read afresh on every
// call and once a second only while a caller waits in WaitReady. The
// service is bus-activated and exits once idle; WaitReady's timeout is
// capped and its concurrent callers are bounded, so no caller can keep it
// running or make it hold unbounded resources.
//
// docs/dbus.md documents the interface; units/dbus holds its introspection
// XML, the bus policy and the activation file.
package dbusapi
