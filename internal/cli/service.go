// SPDX-License-Identifier: GPL-3.0-or-later

package cli

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/doctor"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/history"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

func runService(ctx context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	file := configFlag(fs, env.tr())
	if err := parseFlags(env, fs, "run", env.tr().G("Run the gate service: load seeds, then wait until the kernel's random number\ngenerator is ready, reporting progress to systemd, the journal and the state\nfile. Exit 0 once open, 1 when it timed out with OnTimeout=fail."), args); err != nil {
		return exitFor(err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	logger := newLogger(env.Stderr)
	c, _ := loadConfig(env, *file, logger)
	if env.tr().Language() == "en" {
		env.Translator = bootTranslator(env)
	}
	journal := &gate.JournalSink{Logf: logger.Printf}
	if env.Journal {
		journal = gate.NewJournalSink(logger.Printf)
	}
	credit := doctor.GatherSources(env.Doctor)
	boot := &gate.HistorySink{
		Path:   env.HistoryPath,
		Kernel: env.Doctor.KernelRelease(),
		Sources: history.Sources{
			HWRNGCredited: credit.HWRNGCredited(),
			CPUCredited:   credit.CPUCredited(),
			Active:        c.Mode == pool.Active,
		},
		Logf: logger.Warningf,
	}
	journal.Extra = boot.JournalFields
	state := &gate.StateFileSink{Path: env.StatePath, Logf: logger.Warningf}
	seeds := seedRunner(env, c.Seed, logger)
	g := &gate.Gate{
		Pool:   env.Pool,
		Config: c,
		Logf:   logger.Warningf,
		Sinks:  []gate.Sink{journal, state, boot},
		// The initramfs or the seed unit has normally loaded the seeds
		// already; this loads what they could not, and all of them on
		// systems without either.
		Seed: seeds.Load,
	}
	if len(seeds.Backends) > 0 {
		// Dependents are starting; now that the CRNG is initialized,
		// replace the seeds written at boot with creditable ones.
		g.AfterOpen = seeds.Refresh
	}
	if env.Notify {
		// READY=1 goes out before anything slower hears of the opening.
		g.Sinks = append([]gate.Sink{gate.NotifySink{}}, g.Sinks...)
	}
	if env.Terminal {
		g.Sinks = append(g.Sinks, &gate.TerminalSink{W: env.Stdout, Translator: env.tr()})
	}
	if env.Splash != nil {
		g.Sinks = append(g.Sinks, gate.SplashSink{Display: env.Splash, Translator: env.tr()})
	}
	p, err := g.Run(ctx)
	if err != nil {
		return ExitNotReady
	}
	if p.Outcome == gatestate.Timeout && env.Splash != nil {
		// Dependents are already starting; leave the warning on the
		// splash long enough to be read, then take it away.
		select {
		case <-ctx.Done():
		case <-time.After(degradedNoticeTime):
		}
		env.Splash.Clear()
	}
	// Opening degraded by timeout is still opening: dependents may start.
	return ExitOK
}

// bootTranslator is the translator for the boot language: at early boot
// a service's environment has no locale, but the kernel command line or
// /etc/default/locale may name one.
func bootTranslator(env Env) *i18n.Translator {
	read := func(path string) string {
		if path == "" {
			return ""
		}
		b, _ := os.ReadFile(path) // missing: no language from there
		return string(b)
	}
	return i18n.Find(i18n.BootLanguages(read(env.Sources.Cmdline), read(env.LocaleFile)), i18n.DefaultLocaleDir)
}

// degradedNoticeTime is how long the splash says the boot continues
// without enough randomness.
const degradedNoticeTime = 5 * time.Second
