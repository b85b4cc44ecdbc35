// SPDX-License-Identifier: GPL-3.0-or-later

// Package doctor explains a machine's randomness situation: which kernel
// semantics are in force, whether and when the CRNG initialized, which
// sources feed it (hardware RNG, CPU RNG, bootloader, seeds, daemons),
// whether this is a virtual machine and which hypervisor, and what would
// help. Gather reads facts from injectable proc, sys and dev roots, where
// a missing file means "unknown"; Diagnose turns facts into findings.
package doctor
