// SPDX-License-Identifier: GPL-3.0-or-later

package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/notifier"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

// waitRandom is the guest side of TestVMRandomWakes: it sleeps in the
// notifier's RandomDevice.Wait for POLLIN and says what getrandom reports
// on waking.
func waitRandom() int {
	r, err := pool.OpenRandom(pool.Roots{})
	if err != nil {
		fmt.Println(err)
		return 2
	}
	if err := r.Wait(context.Background(), unix.POLLIN); err != nil {
		fmt.Println(err)
		return 2
	}
	ready, _ := pool.NewKernel(pool.Roots{}).Ready()
	fmt.Printf("woke: %s\n", ready)
	return 0
}

// TestVMRandomWakes boots Debian's kernel with a CRNG that stays
// uninitialized until the scenario credits entropy (see vmtest): the
// notifier warns, its wait on /dev/random sleeps until the credit and
// wakes on it, and then the verdict is fine. The host's CRNG is always
// initialized, so only a guest shows the event path.
func TestVMRandomWakes(t *testing.T) {
	lab := vmtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	notify, err := lab.Build(ctx, "./cmd/entropy-notify")
	if err != nil {
		t.Fatal(err)
	}
	// This package's tests, static, for waitRandom.
	testBin := buildTestBinary(ctx, t, "./internal/integration")
	const once = "run /bin/entropy-notify --once --config /none --state-file /run/entropy-gate/state.json"
	res, err := lab.Boot(ctx, vmtest.Config{
		Files: map[string]string{"/bin/entropy-notify": notify, "/bin/integration.test": testBin},
		Script: strings.Join([]string{
			once, // 1
			"env " + guestMainEnv + "=wait-random",
			"start waiter /bin/integration.test", // 3
			"sleep 2s",
			"probe", // 5
			"credit 256",
			"wait waiter",
			once, // 8
		}, "\n"),
	})
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	timeline := res.Timeline()
	check := func(step, wantCode int, wantFirst string) {
		t.Helper()
		code, err := res.ExitCode(step)
		out := res.Output(step)
		if err != nil || code != wantCode || len(out) == 0 || out[0] != wantFirst {
			t.Errorf("step %d: exit %d (%v), output %q; want %d, %q\n%s", step, code, err, out, wantCode, wantFirst, timeline)
		}
	}
	check(1, notifier.ExitWarn, "warn: crng-not-initialized")
	if probe, ok := res.Find(5, "probe"); !ok || probe.Get("ready") != "false" {
		t.Fatalf("the guest's CRNG was ready before the credit: %v\n%s", probe, timeline)
	}
	// The kernel turns ready inside the credit ioctl, which takes a few
	// ms under emulation: the waiter may wake before it returns, so the
	// credit counts from the ioctl's start.
	credit, _ := res.Find(6, "credit")
	creditStart, err := credit.CreditStarted()
	if err != nil {
		t.Fatal(err)
	}
	woke := slices.IndexFunc(res.Events, func(e vmtest.Event) bool { return e.Step == 3 && e.Kind == "stdout" })
	switch {
	case woke < 0 || res.Events[woke].Get("line") != "woke: ready":
		t.Errorf("the waiter did not wake ready:\n%s", timeline)
	case res.Events[woke].Time < creditStart:
		t.Errorf("the waiter woke before the credit:\n%s", timeline)
	default:
		t.Logf("woke %v after the credit began", res.Events[woke].Time-creditStart)
	}
	check(8, notifier.ExitOK, "ok")
}
