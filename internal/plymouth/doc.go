// SPDX-License-Identifier: GPL-3.0-or-later

// Package plymouth shows one line of boot progress on the Plymouth boot
// splash, or on the kernel console when no splash answers.
//
// Client speaks plymouthd's control protocol directly on its abstract unix
// socket, without running the plymouth binary. Splash, Console and Display
// wrap it for the gate: they never return errors and never block for longer
// than a short deadline, because a missing or stuck display must not delay
// the boot.
package plymouth
