// SPDX-License-Identifier: GPL-3.0-or-later

// Package integration holds the end-to-end tests: entropy-gate and
// entropy-notify as built, run in a QEMU guest on Debian's real kernel
// (internal/vmtest), whose CRNG stays uninitialized until a scenario
// credits entropy.
//
//   - gate_test.go: the gate's wait, timeout, modes and state file in the
//     guest;
//   - seed_test.go: seed init, load and refresh on a virtual stick, and
//     power cuts while a seed is replaced;
//   - report_test.go: report and doctor on the real kernel;
//   - systemd_test.go: a Debian system booted by systemd with the tree
//     `make install` lays out, Tor and the persistent storage service
//     ordered after the gate;
//   - notifier_test.go: the notifier's wait on /dev/random wakes on the
//     kernel's readiness;
//   - vfat_test.go: the seeders package's vfat tests, run in the guest;
//   - bench_test.go: figures from real boots (waits, reaction, RSS,
//     start-up);
//   - livesystem*_test.go: the Tails-shaped live system (live-boot, real
//     initramfs-tools with our hook, Tails' first-boot repartitioning)
//     booted from a virtual USB stick or DVD, and its benchmark.
//
// The package has no code of its own beyond its tests. They take
// minutes, boot guests one at a time (a lock in the cache folder), and
// skip, saying why, in -short mode or where the lab's Debian packages are
// missing (`sudo make deps` installs them):
//
//	ENTROPY_GATE_CACHE=/var/cache/entropy-gate go test ./internal/integration
//	go test -run '^$' -bench . ./internal/integration
package integration
