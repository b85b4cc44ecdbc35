// SPDX-License-Identifier: GPL-3.0-or-later

// Command survey boots Debian's real kernel under QEMU in each
// configuration that matters for boot entropy — no help with a passive
// and an active gate, virtio-rng, a trusted RDRAND, a credited and a
// mixed-only seed, haveged and jitterentropy-rngd in the guest — and
// prints how long the gate waited in each, what made the pool ready and
// what entropy_avail was at the end, as a Markdown table for
// docs/boot-entropy.md.
//
// It is `make survey`: it takes minutes, so it is not part of `make
// test`. `make survey` installs the Debian packages it needs first (`make
// deps`, as root); the survey caches the kernel and the daemons' Debian
// packages.
//
//	go run ./internal/cmd/survey [-boots 3] [-timeout 60s] [-only virtio-rng,haveged] [-v]
package main
