// SPDX-License-Identifier: GPL-3.0-or-later

// Package history keeps one record per boot of how long the gate waited
// and why it opened, and summarizes them for `entropy-gate report`: a
// table, statistics and an SVG chart. Records come from a small
// append-only file where the system is persistent, else from the journal.
// They hold counters and names only, never seed material.
package history
