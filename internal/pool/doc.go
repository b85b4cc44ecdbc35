// SPDX-License-Identifier: GPL-3.0-or-later

// Package pool is the kernel's random number generator as entropy-gate sees
// it: whether the CRNG is initialized (getrandom's word, never a /proc
// number), how much entropy the kernel reports, which pool semantics are in
// force, how to wait until the CRNG is ready, and how to credit or mix seed
// material.
//
// Everything that touches the kernel sits behind the Pool interface. Kernel
// is the real implementation, with every /proc and /dev path under an
// injectable root so tests can feed it fixture trees; Fake is an in-memory
// implementation for unit tests of the logic built on top. RandomDevice
// waits for poll events on /dev/random in the runtime's netpoller: the
// passive wait and the notifier's wake-ups both sleep in it.
package pool
