// SPDX-License-Identifier: GPL-3.0-or-later

// Package gate is entropy-gate's core: it waits until the kernel's CRNG is
// initialized and the configured entropy threshold is met, or a timeout
// expires, and reports progress to sinks on the way (systemd's notify
// socket, the journal, a terminal, the state file, the boot splash, the
// history file). Seeds are loaded in its first phase and refreshed once it
// opened, through hooks, so their results reach every sink.
//
// Its phases are seeding → waiting → open, or timed-out when the timeout
// expires under OnTimeout=fail. The gate never decides readiness from
// /proc numbers alone: getrandom's word comes first.
package gate
