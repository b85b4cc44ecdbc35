// SPDX-License-Identifier: GPL-3.0-or-later

// Package gatestate is the gate's runtime files under /run/entropy-gate:
// the state file (what the gate is doing and how its wait ended) and this
// boot's seed results, for the CLI's status, the desktop notifier and the
// D-Bus service to read. They never hold secrets.
package gatestate
