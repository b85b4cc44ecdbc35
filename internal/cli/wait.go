// SPDX-License-Identifier: GPL-3.0-or-later

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

func runWait(ctx context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	tr := env.tr()
	// TRANSLATORS: keep `D` in backquotes: it names the argument.
	timeout := fs.String("timeout", "", tr.G("give up after `D` (e.g. 30s, 2min; 0 or infinity: never); default from the configuration"))
	// TRANSLATORS: keep `N` in backquotes: it names the argument.
	threshold := fs.Int("threshold", 0, tr.G("wait until entropy_avail reaches `N` bits (0: CRNG readiness only); default from the configuration"))
	passive := fs.Bool("passive", false, tr.G("wait without making the kernel generate jitter entropy"))
	file := configFlag(fs, tr)
	if err := parseFlags(env, fs, "wait", tr.G("Wait until the kernel's random number generator is ready.\nExit 0 when ready, 1 on timeout, 2 on errors."), args); err != nil {
		return exitFor(err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	logger := newLogger(env.Stderr)
	c, _ := loadConfig(env, *file, logger)
	if given["timeout"] {
		d, err := config.ParseTimespan(*timeout)
		if err != nil {
			fmt.Fprintf(env.Stderr, "entropy-gate wait: --timeout %q: %s\n", *timeout, tr.G("not a time span (like 90s, 2min, 1min 30s, or infinity)"))
			return ExitUsage
		}
		c.Timeout = d
	}
	if given["threshold"] {
		if *threshold < 0 {
			fmt.Fprintf(env.Stderr, "entropy-gate wait: %s\n", tr.G("--threshold must be 0 or more"))
			return ExitUsage
		}
		c.Threshold = *threshold
	}
	if *passive {
		c.Mode = pool.Passive
	}
	// A caller of wait wants to know, not to be let through: a timeout
	// is always a failure here.
	c.OnTimeout = config.Fail

	g := &gate.Gate{Pool: env.Pool, Config: c, Logf: logger.Warningf}
	if env.Terminal {
		g.Sinks = append(g.Sinks, &gate.TerminalSink{W: env.Stdout, Translator: tr})
	}
	return exitForGate(g.Run(ctx))
}

// exitForGate maps a finished wait to an exit code: 0 when the pool was
// ready, 1 when it timed out, 2 when it was interrupted.
func exitForGate(p gate.Progress, err error) int {
	switch {
	case errors.Is(err, gate.ErrTimedOut):
		return ExitNotReady
	case err != nil:
		return ExitUsage
	case p.Outcome == gatestate.Ready:
		return ExitOK
	default:
		return ExitNotReady
	}
}
