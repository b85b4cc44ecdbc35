// SPDX-License-Identifier: GPL-3.0-or-later

package integration

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

// These tests run entropy-gate in a QEMU guest on Debian's real kernel,
// whose CRNG is not initialized at boot (no RDRAND, no virtio-rng, CPU and
// bootloader untrusted) and stays so while nothing asks for entropy.

// guest boots the lab with the static entropy-gate binary at /bin.
type guest struct {
	lab  *vmtest.Lab
	gate string
}

func newGuest(t *testing.T) *guest {
	t.Helper()
	lab := vmtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := lab.Build(ctx, "./cmd/entropy-gate")
	if err != nil {
		t.Fatal(err)
	}
	return &guest{lab: lab, gate: bin}
}

func (g *guest) boot(t testing.TB, cfg vmtest.Config) *vmtest.Result {
	t.Helper()
	cfg.Files = map[string]string{"/bin/entropy-gate": g.gate}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := g.lab.Boot(ctx, cfg)
	if err != nil {
		t.Fatalf("boot: %v\n%s", err, res.Timeline())
	}
	return res
}

func exitCode(t *testing.T, res *vmtest.Result, step int) int {
	t.Helper()
	code, err := res.ExitCode(step)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.Timeline())
	}
	return code
}

// stateAt parses the state file a cat step printed.
func stateAt(t testing.TB, res *vmtest.Result, step int) gatestate.State {
	t.Helper()
	var lines []string
	for _, e := range res.All("cat") {
		if e.Step == step {
			lines = append(lines, e.Get("text"))
		}
	}
	st, err := gatestate.Parse([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("step %d: %v\n%s", step, err, res.Timeline())
	}
	return st
}

// statusAt parses the JSON a `status --json` step printed.
func statusAt(t *testing.T, res *vmtest.Result, step int) map[string]any {
	t.Helper()
	out := res.Output(step)
	var st map[string]any
	if len(out) == 0 || json.Unmarshal([]byte(out[len(out)-1]), &st) != nil {
		t.Fatalf("step %d printed %q, not a status object", step, out)
	}
	return st
}

func outputHas(res *vmtest.Result, step int, text string) bool {
	for _, line := range res.Output(step) {
		if strings.Contains(line, text) {
			return true
		}
	}
	return false
}

func TestGateOnRealKernel(t *testing.T) {
	g := newGuest(t)

	t.Run("passive: timeouts, then a credit opens it", func(t *testing.T) {
		res := g.boot(t, vmtest.Config{Script: `
			probe
			run /bin/entropy-gate status --json
			write /tmp/fail.conf "[Gate]\nMode=passive\nTimeout=5s\nOnTimeout=fail\n"
			write /tmp/open.conf "[Gate]\nMode=passive\nTimeout=5s\nOnTimeout=open\n"
			run /bin/entropy-gate run --config /tmp/fail.conf
			cat /run/entropy-gate/state.json
			run /bin/entropy-gate run --config /tmp/open.conf
			cat /run/entropy-gate/state.json
			write /tmp/wait.conf "[Gate]\nMode=passive\nTimeout=2min\n"
			start gate /bin/entropy-gate run --config /tmp/wait.conf
			sleep 1500ms
			cat /run/entropy-gate/state.json
			credit 256
			wait gate
			cat /run/entropy-gate/state.json
			run /bin/entropy-gate status --json
		`})
		if probe, _ := res.Find(1, "probe"); probe.Get("ready") != "false" {
			t.Fatalf("guest CRNG ready at boot: %v; the lab must start uninitialized", probe)
		}

		// Scenario 5, before: not ready, exit 1.
		if code := exitCode(t, res, 2); code != 1 {
			t.Errorf("status in an uninitialized guest: exit %d, want 1", code)
		}
		if st := statusAt(t, res, 2); st["ready"] != false || st["crng_initialized"] != false || st["semantics"] != "modern" {
			t.Errorf("status = %v", st)
		}

		// Scenario 1: fail closed after 5 s, with progress on the console.
		if code := exitCode(t, res, 5); code != 1 {
			t.Errorf("OnTimeout=fail: exit %d, want 1", code)
		}
		if st := stateAt(t, res, 6); st.Phase != gatestate.TimedOut || st.Outcome != gatestate.Timeout || st.WaitedMS < 5000 || st.CRNGInitialized {
			t.Errorf("after OnTimeout=fail: %+v", st)
		}
		if !outputHas(res, 5, "Waiting for the kernel random number generator") || !outputHas(res, 5, "Timed out after 5") {
			t.Errorf("gate log: %q", res.Output(5))
		}
		if !strings.Contains(res.Console, "Initializing the random number generator") {
			t.Errorf("no progress on the console while waiting")
		}
		// Open degraded after 5 s.
		if code := exitCode(t, res, 7); code != 0 {
			t.Errorf("OnTimeout=open: exit %d, want 0", code)
		}
		if st := stateAt(t, res, 8); st.Phase != gatestate.Open || st.Outcome != gatestate.Timeout || st.WaitedMS < 5000 {
			t.Errorf("after OnTimeout=open: %+v", st)
		}

		// Scenario 3: still waiting after 1.5 s, opened by a credit.
		if st := stateAt(t, res, 12); st.Phase != gatestate.Waiting {
			t.Errorf("before the credit: %+v", st)
		}
		if code := exitCode(t, res, 10); code != 0 {
			t.Errorf("gate opened by a credit: exit %d, want 0", code)
		}
		if st := stateAt(t, res, 15); st.Phase != gatestate.Open || st.Outcome != gatestate.Ready || !st.CRNGInitialized {
			t.Errorf("after the credit: %+v", st)
		}
		// The kernel turns ready inside the ioctl, which takes a few ms
		// under emulation: the gate may wake before it returns, so the
		// reaction is measured from the ioctl's start.
		credit, _ := res.Find(13, "credit")
		creditStart, err := credit.CreditStarted()
		if err != nil {
			t.Fatal(err)
		}
		var opened vmtest.Event
		for _, e := range res.Events {
			if e.Step == 10 && strings.Contains(e.Get("line"), "Open: CRNG initialized") {
				opened = e
			}
		}
		if opened.Kind == "" || opened.Time < creditStart {
			t.Errorf("gate did not open after the credit (its ioctl began at %v, open line %v)", creditStart, opened)
		} else {
			t.Logf("reaction latency: ioctl start → gate open logged %v (the ioctl took %s, guest time)",
				opened.Time-creditStart, credit.Get("took"))
		}

		// Scenario 5, after: ready, exit 0.
		if code := exitCode(t, res, 16); code != 0 {
			t.Errorf("status after crediting: exit %d, want 0", code)
		}
		if st := statusAt(t, res, 16); st["ready"] != true || st["crng_initialized"] != true {
			t.Errorf("status = %v", st)
		}
	})

	t.Run("active: the kernel's jitter opens it", func(t *testing.T) {
		res := g.boot(t, vmtest.Config{Script: `
			probe
			write /tmp/active.conf "[Gate]\nMode=active\nTimeout=1min\nOnTimeout=fail\n"
			run /bin/entropy-gate run --config /tmp/active.conf
			cat /run/entropy-gate/state.json
		`})
		if probe, _ := res.Find(1, "probe"); probe.Get("ready") != "false" {
			t.Fatalf("guest CRNG ready at boot: %v", probe)
		}
		if code := exitCode(t, res, 3); code != 0 {
			t.Fatalf("active gate: exit %d, want 0\n%s", code, res.Timeline())
		}
		st := stateAt(t, res, 4)
		if st.Outcome != gatestate.Ready || !st.CRNGInitialized || st.WaitedMS <= 0 {
			t.Errorf("active gate: %+v", st)
		}
		t.Logf("active wait on an uninitialized kernel: %d ms", st.WaitedMS)
	})

	t.Run("virtio-rng: ready at start, no wait", func(t *testing.T) {
		// The hwrng thread feeds the kernel shortly after the driver
		// loads, before any service would start; waitready stands for
		// that moment (an idle guest without it stays unready).
		res := g.boot(t, vmtest.Config{VirtioRNG: true, Script: `
			waitready
			write /tmp/passive.conf "[Gate]\nMode=passive\nTimeout=1min\n"
			run /bin/entropy-gate run --config /tmp/passive.conf
			cat /run/entropy-gate/state.json
		`})
		if _, ok := res.Find(1, "ready"); !ok {
			t.Fatalf("virtio-rng guest never ready by itself:\n%s", res.Timeline())
		}
		if code := exitCode(t, res, 3); code != 0 {
			t.Fatalf("exit %d", code)
		}
		// Zero wait: the gate never entered its waiting phase (the
		// milliseconds it reports are its own start-up and seeding).
		if outputHas(res, 3, "Waiting") {
			t.Errorf("gate waited with a hardware RNG: %q", res.Output(3))
		}
		if st := stateAt(t, res, 4); st.Outcome != gatestate.Ready || st.EntropyAvailStart != 256 {
			t.Errorf("virtio-rng: %+v, want ready with a full pool from the start", st)
		}
	})
}
