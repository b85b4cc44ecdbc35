// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/buildinfo"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/logging"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// Exit codes of entropy-notify.
const (
	ExitOK   = 0
	ExitWarn = 1 // --once: a warning would be shown
	ExitFail = 2 // usage or fatal error
)

// Main runs entropy-notify with the command line args (without the
// program name) and returns its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	tr := i18n.Default()
	fs := flag.NewFlagSet("entropy-notify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	once := fs.Bool("once", false, tr.G("print the verdict and exit: 0 fine, 1 a warning would be shown"))
	// TRANSLATORS: keep `FILE` in backquotes: it names the argument.
	configFile := fs.String("config", DefaultConfigFile, tr.G("read the [Notify] section of `FILE` and FILE.d/*.conf"))
	// TRANSLATORS: keep `FILE` in backquotes: it names the argument.
	statePath := fs.String("state-file", gatestate.DefaultPath, tr.G("the gate's state `FILE`"))
	verbose := fs.Bool("verbose", false, tr.G("log every event and decision"))
	version := fs.Bool("version", false, tr.G("print the version"))
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "%s\n\n%s\n\n%s\n", tr.G("Usage: entropy-notify [OPTIONS]"),
			tr.G("Warns in the desktop session when the kernel's random number generator\nor this boot's random seeds are not in a good state."), tr.G("Options:"))
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return ExitOK
	}
	if err == nil && fs.NArg() > 0 {
		err = errors.New(tr.G("unexpected argument %q", fs.Arg(0)))
	}
	if err != nil {
		fmt.Fprintf(stderr, "entropy-notify: %v (%s)\n", err, tr.G("see --help"))
		return ExitFail
	}
	if *version {
		fmt.Fprintf(stdout, "entropy-notify %s\n", buildinfo.Version())
		return ExitOK
	}

	// Outside the journal, its lines mix with other programs' of the
	// session (a terminal, a session log file): they name it there.
	logger := logging.New(stderr, logging.StyleOf(stderr), "entropy-notify")
	logger.PlainPrefix, logger.Verbose = true, *verbose
	cfg, problems := LoadConfig(*configFile, *configFile+".d")
	for _, p := range problems {
		if p.Warning {
			logger.Warningf("config: %v", p)
		} else {
			logger.Errorf("config: %v", p)
		}
	}
	// inotify needs the directories from the root.
	if *statePath, err = filepath.Abs(*statePath); err != nil {
		logger.Errorf("state file: %v", err)
		return ExitFail
	}
	kernel := pool.NewKernel(pool.Roots{})
	if *once {
		return printVerdict(stdout, i18n.Default(), gatestate.ReadView(kernel, *statePath, 0), cfg.Policy)
	}

	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()
	bus, err := connectSession()
	if err != nil {
		logger.Errorf("%v", err)
		return ExitFail
	}
	defer bus.Close()
	reply, err := bus.RequestName(AppID, dbus.NameFlagDoNotQueue)
	if err != nil {
		logger.Errorf("request bus name %s: %v", AppID, err)
		return ExitFail
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		logger.Printf("already running in this session")
		return ExitOK
	}
	o := Options{
		Pool:             kernel,
		StatePath:        *statePath,
		Policy:           cfg.Policy,
		FallbackInterval: cfg.FallbackInterval,
		Translator:       i18n.Default(),
		Bus:              bus,
		Logf:             logger.Printf,
		Debugf:           logger.Debugf,
	}
	if random, err := pool.OpenRandom(pool.Roots{}); err != nil {
		logger.Printf("%v; re-checking every %s where it would tell", err, cfg.FallbackInterval)
	} else {
		defer random.Close()
		o.Random = random
	}
	switch err := Run(ctx, o); {
	case errors.Is(err, ErrBusClosed):
		logger.Printf("%v: exiting", err)
	case err != nil:
		logger.Errorf("%v", err)
		return ExitFail
	}
	return ExitOK
}

// connectSession connects to the session's bus, and never launches one:
// a notifier on a bus of its own would warn nobody.
func connectSession() (*dbus.Conn, error) {
	bus, err := dbus.SessionBusPrivateNoAutoStartup()
	if err == nil {
		if err = bus.Auth(nil); err == nil {
			err = bus.Hello()
		}
		if err != nil {
			bus.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("connect to the session bus: %w", err)
	}
	return bus, nil
}

// printVerdict prints "ok", or "warn: CONDITIONS" and the notification's
// text, for scripts and for people at a terminal.
func printVerdict(w io.Writer, tr *i18n.Translator, f gatestate.View, p Policy) int {
	a := NewDecider(p).Evaluate(time.Now(), f)
	if a.Op != Show {
		fmt.Fprintln(w, "ok")
		return ExitOK
	}
	n := Render(tr, a, f, false)
	fmt.Fprintf(w, "warn: %s\n%s\n%s\n", a.Conditions, n.Summary, n.Body)
	return ExitWarn
}
