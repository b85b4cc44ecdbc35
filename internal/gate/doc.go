// Package gate is entropy-gate's core: it waits until the kernel's CRNG is
// initialized and the configured entropy threshold is met, or a timeout
// expires, and reports progress to sinks on the way (systemd's notify
// socket, the journal, a terminal, the state file, the boot splash).
//
// Its phases are seeding → waiting → open, or timed-out when the timeout
// expires under OnTimeout=fail. The gate never decides readiness from
// /proc numbers alone: getrandom's word comes first.
package gate
