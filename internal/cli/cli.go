// SPDX-License-Identifier: GPL-3.0-or-later

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/coreos/go-systemd/v22/journal"
	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/buildinfo"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/doctor"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/history"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/logging"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/plymouth"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeding"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitNotReady = 1
	ExitUsage    = 2
)

// Env is what the command runs against: the real system by default,
// fixtures and fakes in tests.
type Env struct {
	Stdout, Stderr io.Writer
	// Pool is the kernel RNG.
	Pool pool.Pool
	// Sources are the configuration sources; --config replaces File
	// and DropInDir.
	Sources config.Sources
	// StatePath is the gate's state file.
	StatePath string
	// Terminal says whether Stdout is a terminal, for live progress.
	Terminal bool
	// Notify and Journal enable the service's systemd sinks.
	Notify, Journal bool
	// Splash shows the service's progress at boot; nil shows nothing.
	Splash plymouth.Sink
	// Translator is the language of human output; nil means English.
	Translator *i18n.Translator
	// LocaleFile is /etc/default/locale, where the service finds the
	// boot language when its environment has none.
	LocaleFile string
	// Doctor are the proc, sys and dev roots doctor reads.
	Doctor doctor.Sources
	// HistoryPath is the per-boot history file; "" keeps none.
	HistoryPath string
	// ReadJournal reads past boots from the journal, for report where
	// there is no history file; nil means there is no journal to read.
	ReadJournal func(ctx context.Context) ([]history.Record, int, error)
	// SeedResults is where `seed load` leaves its results for the gate.
	SeedResults string
	// SeedLock serialises seed operations across processes; "" takes
	// no lock.
	SeedLock string
	// Locator finds the boot disk for a sector seed with Device=auto.
	Locator seeding.Locator
}

func (env Env) tr() *i18n.Translator {
	if env.Translator == nil {
		return i18n.English
	}
	return env.Translator
}

// System is the environment of the installed program.
func System(stdout, stderr *os.File) Env {
	env := Env{
		Stdout:    stdout,
		Stderr:    stderr,
		Pool:      pool.NewKernel(pool.Roots{}),
		Sources:   config.DefaultSources(),
		StatePath: gatestate.DefaultPath,
		Terminal:  isTerminal(stdout),
		Notify:    true,
		Journal:   true,
		Splash:    plymouth.NewDisplay(debugf),
		// Human output is in the caller's language; the service
		// replaces it with the boot language (see runService).
		Translator: i18n.Default(),
		LocaleFile: "/etc/default/locale",
	}
	env.Doctor = doctor.SystemSources(env.Pool)
	env.HistoryPath = history.DefaultPath
	env.SeedResults = gatestate.DefaultSeedsPath
	env.SeedLock = seeding.DefaultLockPath
	env.Locator = seeders.SystemMounts{}
	env.ReadJournal = history.ReadJournal
	return env
}

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, env Env, args []string) int
}

func commands(tr *i18n.Translator) []command {
	return []command{
		{"run", "", tr.G("run the gate service: seed, wait, report to systemd"), runService},
		{"wait", "[--timeout D] [--threshold N] [--passive]", tr.G("wait until the pool is ready; exit 0 ready, 1 timed out"), runWait},
		{"status", "[--json]", tr.G("show the pool and gate state; exit 0 ready, 1 not ready"), runStatus},
		{"dbus", "[--idle-timeout D]", tr.G("serve the status on the system bus; started by D-Bus activation"), runDBus},
		{"config", "--check", tr.G("check the configuration and print the effective values; exit 2 on errors"), runConfig},
		{"seed", "status|load|save|init", tr.G("manage the random seeds kept on the boot medium"), runSeed},
		{"report", "[--json] [--svg FILE] [--limit N]", tr.G("show how long past boots waited, and why"), runReport},
		{"doctor", "[--json]", tr.G("explain this machine's randomness and what would help; exit 1 with advice"), runDoctor},
		{"version", "", tr.G("print the version"), runVersion},
	}
}

func usage(w io.Writer, tr *i18n.Translator) {
	var b strings.Builder
	b.WriteString(tr.G("Usage: entropy-gate COMMAND [OPTIONS]") + "\n\n")
	b.WriteString(tr.G("Keeps services that need strong randomness waiting until the kernel's\nrandom number generator is initialized.") + "\n\n")
	b.WriteString(tr.G("Commands:") + "\n")
	for _, c := range commands(tr) {
		fmt.Fprintf(&b, "  %-8s %-42s %s\n", c.name, c.args, c.summary)
	}
	b.WriteString("\n" + tr.G("Run 'entropy-gate COMMAND --help' for a command's options.") + "\n")
	b.WriteString(tr.G("Exit codes: 0 ready/success, 1 not ready or timed out, 2 usage or fatal error.") + "\n")
	io.WriteString(w, b.String())
}

// Run runs the command line args (without the program name) and returns
// the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		usage(env.Stderr, env.tr())
		return ExitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(env.Stdout, env.tr())
		return ExitOK
	case "--version":
		return runVersion(ctx, env, args[1:])
	}
	for _, c := range commands(env.tr()) {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	fmt.Fprintf(env.Stderr, "entropy-gate: %s\n", env.tr().G("unknown command %q", args[0]))
	usage(env.Stderr, env.tr())
	return ExitUsage
}

// errHelp means a command printed its help; it exits 0.
var errHelp = errors.New("help shown")

// parseFlags parses a command's flags. It returns errHelp after printing
// help, or an error already reported to Stderr.
func parseFlags(env Env, fs *flag.FlagSet, name, summary string, args []string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		tr := env.tr()
		fmt.Fprintf(env.Stdout, "%s\n\n%s\n\n%s\n", tr.G("Usage: entropy-gate %s [OPTIONS]", name), summary, tr.G("Options:"))
		fs.SetOutput(env.Stdout)
		fs.PrintDefaults()
		return errHelp
	}
	if err == nil && fs.NArg() > 0 {
		err = errors.New(env.tr().G("unexpected argument %q", fs.Arg(0)))
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "entropy-gate %s: %v (%s)\n", name, err, env.tr().G("see --help"))
	}
	return err
}

func exitFor(err error) int {
	if errors.Is(err, errHelp) {
		return ExitOK
	}
	return ExitUsage
}

// configFlag adds --config, which replaces the configuration file and its
// drop-in directory (FILE.d) for tests and trials.
func configFlag(fs *flag.FlagSet, tr *i18n.Translator) *string {
	// TRANSLATORS: keep `FILE` in backquotes: it names the argument.
	return fs.String("config", "", tr.G("read configuration from `FILE` and FILE.d/*.conf instead of /etc/entropy-gate"))
}

// loadConfig loads the configuration and logs its problems; the defaults
// apply wherever a value is bad.
func loadConfig(env Env, configFile string, logger *logging.Logger) (config.Config, []config.Problem) {
	src := env.Sources
	if configFile != "" {
		src.File, src.DropInDir = configFile, configFile+".d"
	}
	c, problems := config.Load(src)
	for _, p := range problems {
		if p.Warning {
			logger.Warningf("%v", p)
		} else {
			logger.Errorf("%v", p)
		}
	}
	return c, problems
}

// newLogger logs to w, with priorities where w is the journal or the
// kernel log (in the initramfs).
func newLogger(w io.Writer) *logging.Logger {
	return logging.New(w, logging.StyleOf(w), logging.Identifier)
}

// debugf logs at debug priority to the journal, and nowhere without one:
// it is for facts that are normal at boot, such as Plymouth being absent.
func debugf(format string, args ...any) {
	if journal.Enabled() {
		logging.Send(fmt.Sprintf(format, args...), journal.PriDebug, nil)
	}
}

func runVersion(_ context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := parseFlags(env, fs, "version", env.tr().G("Print the version."), args); err != nil {
		return exitFor(err)
	}
	fmt.Fprintf(env.Stdout, "entropy-gate %s\n", buildinfo.Version())
	return ExitOK
}

func runConfig(_ context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	tr := env.tr()
	check := fs.Bool("check", false, tr.G("check the configuration and print the effective values"))
	file := configFlag(fs, tr)
	if err := parseFlags(env, fs, "config", tr.G("Check the configuration: print each problem on one line and the effective\nconfiguration with where each value came from. Exit 2 on errors."), args); err != nil {
		return exitFor(err)
	}
	if !*check {
		fmt.Fprintf(env.Stderr, "entropy-gate config: %s\n", tr.G("nothing to do: use --check"))
		return ExitUsage
	}
	c, problems := loadConfig(env, *file, newLogger(env.Stderr))
	if err := c.WriteEffective(env.Stdout); err != nil {
		return ExitUsage
	}
	if config.HasErrors(problems) {
		return ExitUsage
	}
	return ExitOK
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
