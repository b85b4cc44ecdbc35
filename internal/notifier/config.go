// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
)

// DefaultConfigFile is the configuration file the notifier shares with the
// gate; its [Notify] section, and its drop-ins' in FILE.d, tune the
// notifier.
const DefaultConfigFile = "/etc/entropy-gate/entropy-gate.conf"

// Config is the notifier's configuration.
type Config struct {
	Policy Policy
	// FallbackInterval is how often to re-check where the kernel offers
	// no event for the change waited for.
	FallbackInterval time.Duration
}

// fromShared takes the notifier's part of the shared configuration.
func fromShared(n config.Notify) Config {
	return Config{
		Policy:           Policy{EntropyLow: n.EntropyLow, EntropyHigh: n.EntropyHigh, Renotify: n.Renotify},
		FallbackInterval: n.FallbackInterval,
	}
}

// DefaultConfig is the configuration without any file.
func DefaultConfig() Config { return fromShared(config.Default().Notify) }

// LoadConfig reads file, then the drop-ins dropInDir/*.conf in lexical
// order, with the gate's parser: the same syntax, the same file:line
// problems. A bad value is reported and the one before it stays in force.
func LoadConfig(file, dropInDir string) (Config, []config.Problem) {
	c, problems := config.Load(config.Sources{File: file, DropInDir: dropInDir})
	return fromShared(c.Notify), problems
}
