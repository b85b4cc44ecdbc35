// Package seeding runs the configured seed backends for the gate and the
// CLI: it builds them from the [Seed.*] configuration, runs the load,
// refresh or save protocol on each with a deadline (a vanished device
// must never hang a boot or a shutdown), and keeps the results, which
// never hold seed bytes, where the gate and other programs find them.
package seeding
