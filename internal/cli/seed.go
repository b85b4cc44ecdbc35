// SPDX-License-Identifier: GPL-3.0-or-later

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/doctor"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/logging"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeding"
)

func runSeed(ctx context.Context, env Env, args []string) int {
	tr := env.tr()
	subcommands := map[string]func(context.Context, Env, []string) int{
		"status": runSeedStatus,
		"load":   runSeedLoad,
		"save":   runSeedSave,
		"init":   runSeedInit,
	}
	if len(args) == 0 || subcommands[args[0]] == nil {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprintln(env.Stdout, seedUsage(tr))
			return ExitOK
		}
		fmt.Fprintln(env.Stderr, seedUsage(tr))
		return ExitUsage
	}
	return subcommands[args[0]](ctx, env, args[1:])
}

func seedUsage(tr *i18n.Translator) string {
	return tr.G("Usage: entropy-gate seed status|load|save|init [OPTIONS]") + "\n\n" +
		"  status   " + tr.G("show the configured seed backends, what they hold and what they did this boot") + "\n" +
		"  load     " + tr.G("at boot: credit or mix each seed, after writing its replacement") + "\n" +
		"  save     " + tr.G("at shutdown (or any time): write new seeds") + "\n" +
		"  init     " + tr.G("write a first, creditable seed, e.g. on a new USB stick") + "\n"
}

// seedRunnerFor loads the configuration and builds its seed runner.
func seedRunnerFor(env Env, configFile string, logger *logging.Logger) *seeding.Runner {
	c, _ := loadConfig(env, configFile, logger)
	return seedRunner(env, c.Seed, logger)
}

// seedRunner builds the seed runner for the configured backends.
func seedRunner(env Env, c config.Seed, logger *logging.Logger) *seeding.Runner {
	return seeding.NewRunner(c, env.Locator, seeding.Deps{
		Pool:        env.Pool,
		ResultsPath: env.SeedResults,
		LockPath:    env.SeedLock,
		Logf:        logger.Printf,
		Warnf:       logger.Warningf,
	})
}

func runSeedLoad(ctx context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("seed load", flag.ContinueOnError)
	file := configFlag(fs, env.tr())
	if err := parseFlags(env, fs, "seed load", env.tr().G("Credit or mix each configured seed, after writing its replacement. Run once, early at boot."), args); err != nil {
		return exitFor(err)
	}
	seedRunnerFor(env, *file, newLogger(env.Stderr)).Load(ctx)
	// A seed that could not be used is logged; it never fails the boot.
	return ExitOK
}

func runSeedSave(ctx context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("seed save", flag.ContinueOnError)
	file := configFlag(fs, env.tr())
	if err := parseFlags(env, fs, "seed save", env.tr().G("Write new seeds to every configured backend, e.g. at clean shutdown."), args); err != nil {
		return exitFor(err)
	}
	seedRunnerFor(env, *file, newLogger(env.Stderr)).Save(ctx)
	return ExitOK
}

// seedStatus is `entropy-gate seed status --json`.
type seedStatus struct {
	Backends []backendStatus `json:"backends"`
	// ThisBoot is what the backends did this boot, if they ran.
	ThisBoot []seeders.Result `json:"this_boot"`
	HWRNG    doctor.HWRNG     `json:"hwrng"`
}

// backendStatus is what a backend holds now, read without writing.
type backendStatus struct {
	Backend    string `json:"backend"`
	Content    string `json:"content,omitempty"`
	Creditable bool   `json:"creditable"`
	ReadOnly   bool   `json:"read_only"`
	NoCredit   string `json:"no_credit,omitempty"`
	Error      string `json:"error,omitempty"`
}

func runSeedStatus(_ context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("seed status", flag.ContinueOnError)
	tr := env.tr()
	asJSON := fs.Bool("json", false, tr.G("print one JSON object"))
	file := configFlag(fs, tr)
	if err := parseFlags(env, fs, "seed status", tr.G("Show the configured seed backends, what each holds now (read without writing)\nand what they did this boot."), args); err != nil {
		return exitFor(err)
	}
	seeds := seedRunnerFor(env, *file, newLogger(env.Stderr))
	st := seedStatus{HWRNG: doctor.ReadHWRNG(env.Doctor), Backends: []backendStatus{}}
	for _, f := range seeds.Failed {
		st.Backends = append(st.Backends, backendStatus{Backend: f.Backend, Error: f.Error})
	}
	for _, b := range seeds.Backends {
		st.Backends = append(st.Backends, inspect(b))
	}
	st.ThisBoot = thisBootSeeds(env)
	if *asJSON {
		if err := json.NewEncoder(env.Stdout).Encode(st); err != nil {
			return ExitUsage
		}
		return ExitOK
	}
	writeSeedStatus(env.Stdout, st, tr)
	return ExitOK
}

// inspect reads a backend without writing it.
func inspect(b seeding.Backend) backendStatus {
	s := backendStatus{Backend: b.Name()}
	loaded, err := b.Load()
	defer loaded.Release()
	if err != nil {
		s.Error = err.Error()
		return s
	}
	s.Content = loaded.Content.String()
	s.Creditable = loaded.WhyNoCredit() == ""
	s.ReadOnly, s.NoCredit = loaded.ReadOnly, loaded.NoCredit
	return s
}

// thisBootSeeds are the results in the gate's state, or else those `seed
// load` left.
func thisBootSeeds(env Env) []seeders.Result {
	if st, err := gatestate.Read(env.StatePath); err == nil && len(st.Seeds) > 0 {
		return st.Seeds
	}
	seeds, _ := gatestate.ReadSeeds(env.SeedResults)
	if seeds == nil {
		seeds = []seeders.Result{}
	}
	return seeds
}

func writeSeedStatus(w io.Writer, st seedStatus, tr *i18n.Translator) {
	var b strings.Builder
	if len(st.Backends) == 0 {
		b.WriteString(tr.G("No seed backend is enabled (see [Seed.*] in /etc/entropy-gate/entropy-gate.conf).") + "\n")
	}
	for _, s := range st.Backends {
		switch {
		case s.Error != "":
			fmt.Fprintf(&b, "%s: %s\n", s.Backend, tr.G("unusable: %s", s.Error))
		case s.Creditable:
			fmt.Fprintf(&b, "%s: %s\n", s.Backend, tr.G("holds a creditable seed"))
		case s.ReadOnly:
			fmt.Fprintf(&b, "%s: %s\n", s.Backend, tr.G("read-only: its seed (%s) can only be mixed", s.Content))
		case s.NoCredit != "":
			fmt.Fprintf(&b, "%s: %s\n", s.Backend, tr.G("holds %[1]s, never credited: %[2]s", s.Content, s.NoCredit))
		default:
			fmt.Fprintf(&b, "%s: %s\n", s.Backend, tr.G("holds %s, not creditable", s.Content))
		}
	}
	if len(st.ThisBoot) > 0 {
		b.WriteString(tr.G("This boot:") + "\n")
		for _, s := range st.ThisBoot {
			fmt.Fprintf(&b, "  %s %s: %s\n", s.Action, s.Backend, s.Reason)
		}
	}
	b.WriteString(tr.G("Hardware RNG: %s", hwrngText(st.HWRNG, tr)) + "\n")
	io.WriteString(w, b.String())
}

// hwrngText says which hardware RNG feeds the kernel, and how much the
// kernel trusts it.
func hwrngText(h doctor.HWRNG, tr *i18n.Translator) string {
	switch {
	case h.Current == "" || h.Current == "none":
		return tr.G("none")
	case h.Quality < 0:
		return h.Current
	case h.Quality == 0:
		return tr.G("%s, not credited (quality 0)", h.Current)
	default:
		return tr.G("%[1]s, credited at quality %[2]d of 1024", h.Current, h.Quality)
	}
}

func runSeedInit(ctx context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("seed init", flag.ContinueOnError)
	tr := env.tr()
	backend := fs.String("backend", "sector", tr.G("where to write the seed: sector or file"))
	// TRANSLATORS: keep `DEV` in backquotes: it names the argument.
	device := fs.String("device", "", tr.G("the whole disk `DEV` for --backend sector (a disk image file works too)"))
	// TRANSLATORS: keep `N` in backquotes: it names the argument.
	lba := fs.Int64("lba", seeders.DefaultLBA, tr.G("the sector `N` for --backend sector"))
	// TRANSLATORS: keep `FILE` in backquotes: it names the argument.
	path := fs.String("path", "", tr.G("the seed `FILE` for --backend file"))
	legacy := fs.Bool("legacy-mix", false, tr.G("replace a sector that is not ours (Tails 6.4's raw random sector)"))
	if err := parseFlags(env, fs, "seed init", tr.G("Write a first seed, creditable at the next boot, e.g. on a new USB stick.\nRefuses unsafe disk layouts and foreign data, saying why. Exit 0 when written,\n1 when refused, 2 on usage errors."), args); err != nil {
		return exitFor(err)
	}
	var b seeders.Backend
	switch {
	case *backend == "sector" && *device != "":
		s := seeders.SectorBackend{Path: *device, LBA: *lba}
		if *legacy {
			s.Foreign = seeders.ForeignMix
		}
		b = s
	case *backend == "file" && *path != "":
		b = seeders.FileBackend{Path: *path}
	default:
		fmt.Fprintf(env.Stderr, "entropy-gate seed init: %s\n", tr.G("need --backend sector --device DEV, or --backend file --path FILE"))
		return ExitUsage
	}
	// A seed made before the CRNG is initialized must not be credited,
	// and a first seed is only worth writing if it can be.
	if r, err := env.Pool.Ready(); r != pool.Ready {
		reason := tr.G("the kernel's random number generator is not initialized, so the seed would not be creditable")
		if err != nil {
			reason += ": " + err.Error()
		}
		fmt.Fprintf(env.Stderr, "entropy-gate seed init: %s\n", reason)
		return ExitNotReady
	}
	unlock, err := seeding.Lock(ctx, env.SeedLock)
	if err != nil {
		fmt.Fprintf(env.Stderr, "entropy-gate seed init: %v\n", err)
		return ExitNotReady
	}
	defer unlock()
	res := seeders.Seeder{Backend: b, Kernel: seeding.Kernel{Pool: env.Pool}}.Refresh()
	if !res.Refreshed {
		msg := res.Reason
		if errors.Is(res.Err, seeders.ErrUnsafe) {
			msg = tr.G("refused, nothing written: %s", res.Error)
		}
		fmt.Fprintf(env.Stderr, "entropy-gate seed init: %s: %s\n", b.Name(), msg)
		return ExitNotReady
	}
	fmt.Fprintf(env.Stdout, "%s: %s\n", b.Name(), tr.G("creditable seed written and verified"))
	return ExitOK
}
