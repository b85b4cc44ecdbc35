// SPDX-License-Identifier: GPL-3.0-or-later

// Package seeding runs the configured seed backends for the gate and the
// CLI. A Runner builds them from the [Seed.*] configuration and owns what
// a process needs to use them safely: the seed lock shared by every
// process, this boot's results file (so a backend is loaded once per
// boot), and the deadlines (a vanished device must never hang a boot or a
// shutdown). Results never hold seed bytes.
package seeding
