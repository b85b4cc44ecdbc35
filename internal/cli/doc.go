// SPDX-License-Identifier: GPL-3.0-or-later

// Package cli is the entropy-gate command: the gate service (run), the
// precondition check other programs call (status, wait), and
// configuration checking. cmd/entropy-gate only wires it to the process.
//
// Exit codes are part of the interface: status exits 0 when ready and 1
// when not; wait exits 0 when ready and 1 on timeout; run exits 1 when the
// gate timed out with OnTimeout=fail; every command exits 2 on a usage or
// fatal error.
package cli
