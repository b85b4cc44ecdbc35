// SPDX-License-Identifier: GPL-3.0-or-later

package cli

import (
	"context"
	"flag"
	"fmt"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/godbus/dbus/v5"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/dbusapi"
)

// defaultIdleTimeout is how long the D-Bus service stays without callers
// before it exits; the bus starts it again on the next call.
const defaultIdleTimeout = "60s"

func runDBus(ctx context.Context, env Env, args []string) int {
	fs := flag.NewFlagSet("dbus", flag.ContinueOnError)
	tr := env.tr()
	// TRANSLATORS: keep `D` in backquotes: it names the argument.
	idle := fs.String("idle-timeout", defaultIdleTimeout, tr.G("exit after `D` without callers or waiters (0 or infinity: never)"))
	// TRANSLATORS: keep `D` in backquotes: it names the argument.
	maxWait := fs.String("max-wait", config.FormatTimespan(dbusapi.DefaultMaxWait), tr.G("cap WaitReady's timeout at `D`"))
	// TRANSLATORS: keep `N` in backquotes: it names the argument.
	maxWaiters := fs.Int("max-waiters", dbusapi.DefaultMaxWaiters, tr.G("answer WaitReady with an error while `N` callers wait already"))
	// TRANSLATORS: keep `USER` in backquotes: it names the argument.
	privileged := fs.String("privileged-user", "", tr.G("comma-separated `USER`s (names or uids) whose WaitReady calls, like root's, always get a slot"))
	file := configFlag(fs, tr)
	if err := parseFlags(env, fs, "dbus", tr.G("Serve the status of the kernel's random number generator on the system bus as\norg.boum.tails.EntropyGate1, until idle. The bus starts it on demand.\nExit 0 when idle or stopped, 2 on errors."), args); err != nil {
		return exitFor(err)
	}
	idleTimeout, err := config.ParseTimespan(*idle)
	if err != nil {
		fmt.Fprintf(env.Stderr, "entropy-gate dbus: --idle-timeout %q: %v\n", *idle, err)
		return ExitUsage
	}
	waitCap, err := config.ParseTimespan(*maxWait)
	if err != nil || waitCap == 0 {
		fmt.Fprintf(env.Stderr, "entropy-gate dbus: --max-wait %q: %s\n", *maxWait, tr.G("must be a time span above 0"))
		return ExitUsage
	}
	if *maxWaiters < 1 {
		fmt.Fprintf(env.Stderr, "entropy-gate dbus: %s\n", tr.G("--max-waiters must be 1 or more"))
		return ExitUsage
	}
	privilegedUIDs, err := lookupUIDs(*privileged)
	if err != nil {
		fmt.Fprintf(env.Stderr, "entropy-gate dbus: --privileged-user: %v\n", err)
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	logger := newLogger(env.Stderr)
	c, _ := loadConfig(env, *file, logger)
	// DBUS_SYSTEM_BUS_ADDRESS, if set, names the bus.
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		logger.Errorf("connect to the system bus: %v", err)
		return ExitUsage
	}
	defer conn.Close()
	svc := dbusapi.New(dbusapi.Config{
		Pool:           env.Pool,
		StatePath:      env.StatePath,
		Threshold:      c.Threshold,
		IdleTimeout:    idleTimeout,
		MaxWait:        waitCap,
		MaxWaiters:     *maxWaiters,
		PrivilegedUIDs: privilegedUIDs,
		Logf:           logger.Warningf,
	})
	if err := svc.Serve(ctx, conn); err != nil {
		logger.Errorf("%v", err)
		return ExitUsage
	}
	return ExitOK
}

// lookupUIDs resolves a comma-separated list of user names or uids.
func lookupUIDs(list string) ([]uint32, error) {
	var uids []uint32
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		id := name
		if _, err := strconv.ParseUint(name, 10, 32); err != nil {
			u, err := user.Lookup(name)
			if err != nil {
				return nil, err
			}
			id = u.Uid
		}
		uid, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("uid %q of %s: %w", id, name, err)
		}
		uids = append(uids, uint32(uid))
	}
	return uids, nil
}
