// Package integration holds the tests that boot the whole product in the
// QEMU lab (internal/vmtest): real kernels, real systemd, and the
// Tails-shaped live system booted from a virtual USB stick or DVD.
package integration
