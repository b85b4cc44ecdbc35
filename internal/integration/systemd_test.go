// SPDX-License-Identifier: GPL-3.0-or-later

package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

// These tests boot a Debian system with systemd as PID 1, Tor and D-Bus,
// with entropy-gate installed by `make install` and its units enabled, on
// the lab's entropy-starved guest (no RDRAND, CPU and bootloader
// untrusted, no seed; nothing in the boot asks for randomness before Tor
// does, see vmtest.BootSystemd): only the gate stands between the boot
// and Tor.

// The units whose start the tests follow.
const (
	seedUnit    = "entropy-gate-seed.service"
	gateUnit    = "entropy-gate.service"
	dbusUnit    = "entropy-gate-dbus.service"
	torUnit     = "tor@default.service"
	storageUnit = "tails-persistent-storage.service"
	creditUnit  = "vmtest-credit.service"
)

// storageStandIn takes the place of Tails' persistent storage service,
// whose drop-in from `make install` makes it wait for the gate.
const storageStandIn = `[Unit]
Description=Stand-in for Tails' persistent storage service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/echo persistent storage service started

[Install]
WantedBy=multi-user.target
`

// The report's steps, which every boot runs once the boot has finished;
// a scenario may add steps after them.
const (
	stepUnits = iota + 1
	stepJournal
	stepState
	stepProbe
	stepExtra
)

var reportScript = `
run /usr/bin/systemctl show --property=Id,ActiveState,Result,InactiveExitTimestampMonotonic,ActiveEnterTimestampMonotonic ` +
	strings.Join([]string{seedUnit, gateUnit, torUnit, storageUnit, creditUnit, "sysinit.target", "basic.target", "multi-user.target"}, " ") + `
run /usr/bin/journalctl --boot --output=short-monotonic --no-pager
-cat /run/entropy-gate/state.json
probe
`

// gateConf is the test's drop-in for the gate's configuration.
const gateConf = "/etc/entropy-gate/entropy-gate.conf.d/50-test.conf"

// systemGuest boots the Debian system with the tree `make install` laid
// out.
type systemGuest struct {
	lab  *vmtest.Lab
	tree string // DESTDIR of make install
}

func newSystemGuest(t *testing.T) *systemGuest {
	t.Helper()
	lab := vmtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := lab.PrepareSystemd(ctx); errors.Is(err, vmtest.ErrUnavailable) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
	return &systemGuest{lab: lab, tree: makeInstall(t)}
}

// makeInstall runs `make install` into a temporary root, as a package
// build would.
func makeInstall(t *testing.T) string {
	t.Helper()
	testenv.NeedCommands(t, "make", "msgfmt", "go-md2man") // for make install
	root := t.TempDir()
	if err := vmtest.MakeInstall(context.Background(), root, t.TempDir()); errors.Is(err, vmtest.ErrUnavailable) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
	return root
}

// systemBoot is what one boot showed.
type systemBoot struct {
	*vmtest.SystemdResult
	units   vmtest.Units
	journal []vmtest.JournalEntry
}

// boot boots with the stand-in storage service, the gate configuration
// conf and the extra report steps; cfg adds units and files.
func (g *systemGuest) boot(t *testing.T, conf, extraReport string, cfg vmtest.SystemdConfig) *systemBoot {
	t.Helper()
	cfg.Trees = []string{g.tree}
	if cfg.Texts == nil {
		cfg.Texts = map[string]string{}
	}
	cfg.Texts["/etc/systemd/system/"+storageUnit] = storageStandIn
	cfg.Texts[gateConf] = conf
	cfg.Enable = append(cfg.Enable, seedUnit, gateUnit, storageUnit)
	cfg.Report = reportScript + extraReport
	// Generous: other tests' boots may hold the lab's lock meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	res, err := g.lab.BootSystemd(ctx, cfg)
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	t.Logf("boot took %v wall", res.Wall.Round(100*time.Millisecond))
	journal := strings.Join(res.Report.Output(stepJournal), "\n") + "\n"
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("journal:\n%s", journal)
		}
	})
	// The journal, for a person to read, where `make unit` keeps artifacts.
	if dir := os.Getenv("ENTROPY_GATE_ARTIFACTS"); dir != "" {
		name := "systemd-" + strings.NewReplacer("/", "-", " ", "-", ":", "").Replace(t.Name()) + ".journal.txt"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(journal), 0o644); err != nil {
			t.Error(err)
		}
	}
	units, err := vmtest.ParseUnits(res.Report.Output(stepUnits))
	if err != nil {
		t.Fatal(err)
	}
	return &systemBoot{SystemdResult: res, units: units, journal: vmtest.ParseJournal(res.Report.Output(stepJournal))}
}

// at returns a unit's …TimestampMonotonic property.
func (b *systemBoot) at(t *testing.T, unit, key string) time.Duration {
	t.Helper()
	d, err := b.units.Monotonic(unit, key)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// wantState checks a unit's ActiveState and Result (targets have none:
// pass "").
func (b *systemBoot) wantState(t *testing.T, unit, active, result string) {
	t.Helper()
	if got, res := b.units.Get(unit, "ActiveState"), b.units.Get(unit, "Result"); got != active || res != result {
		t.Errorf("%s: ActiveState=%s Result=%s, want %s %s", unit, got, res, active, result)
	}
}

// wantStartedAfterReady checks that each unit began to start (left the
// inactive state: its ExecStartPre= ran from then on) strictly after the
// gate sent READY=1 (the gate unit became active).
func (b *systemBoot) wantStartedAfterReady(t *testing.T, units ...string) {
	t.Helper()
	ready := b.at(t, gateUnit, "ActiveEnterTimestampMonotonic")
	for _, u := range units {
		start := b.at(t, u, "InactiveExitTimestampMonotonic")
		if start <= ready {
			t.Errorf("%s started at %v, not after the gate's READY=1 at %v", u, start, ready)
		} else {
			t.Logf("%s started %v after the gate's READY=1", u, start-ready)
		}
	}
}

// wantSeedUnitBeforeSysinit checks that the seed unit ran, and finished,
// before sysinit.target.
func (b *systemBoot) wantSeedUnitBeforeSysinit(t *testing.T) {
	t.Helper()
	b.wantState(t, seedUnit, "active", "success")
	if seed, sysinit := b.at(t, seedUnit, "ActiveEnterTimestampMonotonic"), b.at(t, "sysinit.target", "ActiveEnterTimestampMonotonic"); seed == 0 || seed >= sysinit {
		t.Errorf("%s finished at %v, sysinit.target at %v", seedUnit, seed, sysinit)
	}
}

func (b *systemBoot) state(t *testing.T) gatestate.State {
	t.Helper()
	var lines []string
	for _, e := range b.Report.All(protocol.KindCat) {
		if e.Step == stepState {
			lines = append(lines, e.Get("text"))
		}
	}
	st, err := gatestate.Parse([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	return st
}

// find returns the first journal entry of ident that contains text.
func (b *systemBoot) find(t *testing.T, ident, text string) vmtest.JournalEntry {
	t.Helper()
	e, ok := vmtest.FindJournal(b.journal, ident, text)
	if !ok {
		t.Fatalf("no journal entry of %s with %q", ident, text)
	}
	return e
}

func TestFullBootUnderSystemd(t *testing.T) {
	g := newSystemGuest(t)

	t.Run("fail-closed: Tor and persistent storage start only once the gate opens", func(t *testing.T) {
		// Passive: only the credit, 3 s after basic.target, initializes
		// the CRNG; Tor's other prerequisites are met by then.
		b := g.boot(t, "[Gate]\nMode=passive\n", "", vmtest.SystemdConfig{
			Texts: map[string]string{
				"/vmtest/credit": "sleep 3s\ncredit 256\n",
				"/etc/systemd/system/" + creditUnit: `[Unit]
Description=Entropy that arrives late in the boot (test)
After=basic.target

[Service]
Type=oneshot
ExecStart=` + vmtest.ScenarioCommand("/vmtest/credit") + `

[Install]
WantedBy=multi-user.target
`,
			},
			Enable: []string{creditUnit},
		})
		b.wantSeedUnitBeforeSysinit(t)
		b.wantState(t, gateUnit, "active", "success")
		b.wantState(t, torUnit, "active", "success")
		b.wantState(t, storageUnit, "active", "success")
		b.wantStartedAfterReady(t, torUnit, storageUnit)

		ready := b.at(t, gateUnit, "ActiveEnterTimestampMonotonic")
		if basic := b.at(t, "basic.target", "ActiveEnterTimestampMonotonic"); basic >= ready {
			t.Errorf("basic.target at %v, not before the gate's READY=1 at %v: nothing but the gate held Tor back", basic, ready)
		}
		// A passive gate opens as soon as the CRNG is initialized: had
		// anything else initialized it, READY=1 would precede the credit.
		// The kernel turns ready inside the ioctl, so the gate may wake
		// before it returns: compare with the ioctl's start.
		journaled := b.find(t, "init", "credit bits=256")
		credit, ok, err := protocol.ParseLine(journaled.Message)
		if !ok || err != nil {
			t.Fatalf("credit journal entry %q: %v", journaled.Message, err)
		}
		creditStart, err := credit.CreditStarted()
		if err != nil {
			t.Fatal(err)
		}
		if ready <= creditStart {
			t.Errorf("the gate's READY=1 at %v came before the credit at %v", ready, creditStart)
		} else {
			t.Logf("the gate sent READY=1 %v after the credit's ioctl began", ready-creditStart)
		}
		opened := b.find(t, "entropy-gate", "Open: CRNG initialized")
		torStart := b.find(t, "systemd", "Starting "+torUnit)
		if torStart.Time <= opened.Time {
			t.Errorf("journal: %q at %v, before %q at %v", torStart.Message, torStart.Time, opened.Message, opened.Time)
		}
		if st := b.state(t); st.Phase != gatestate.Open || st.Outcome != gatestate.Ready {
			t.Errorf("state file: %+v", st)
		}
	})

	t.Run("fail-closed: a timeout keeps Tor and persistent storage from starting", func(t *testing.T) {
		b := g.boot(t, "[Gate]\nMode=passive\nTimeout=5s\nOnTimeout=fail\n", "", vmtest.SystemdConfig{})
		b.wantSeedUnitBeforeSysinit(t)
		b.wantState(t, gateUnit, "failed", "exit-code")
		b.wantState(t, "multi-user.target", "active", "")
		for _, u := range []string{torUnit, storageUnit} {
			b.wantState(t, u, "inactive", "success")
			if start := b.at(t, u, "InactiveExitTimestampMonotonic"); start != 0 {
				t.Errorf("%s started at %v", u, start)
			}
			b.find(t, "systemd", "Dependency failed for "+u)
		}
		if st := b.state(t); st.Phase != gatestate.TimedOut || st.Outcome != gatestate.Timeout || st.WaitedMS < 5000 {
			t.Errorf("state file: %+v", st)
		}
		// Nothing that asks for randomness started: still not ready.
		if probe, _ := b.Report.Find(stepProbe, protocol.KindProbe); probe.Get("ready") != "false" {
			t.Errorf("CRNG at the end of the boot: %v, want not ready", probe)
		}
	})

	t.Run("OnTimeout=open: everything starts, the gate says degraded", func(t *testing.T) {
		// busctl's call activates the D-Bus service through systemd.
		const (
			stepGateState = stepExtra
			stepDBusUnit  = stepExtra + 1
			stepWarnings  = stepExtra + 2
		)
		// Colour= is unknown: a configuration warning.
		b := g.boot(t, "[Gate]\nMode=passive\nTimeout=5s\nOnTimeout=open\nColour=blue\n", `
run /usr/bin/busctl get-property org.boum.tails.EntropyGate1 /org/boum/tails/EntropyGate1 org.boum.tails.EntropyGate1 GateState
run /usr/bin/systemctl show --property=Id,ActiveState,Result `+dbusUnit+`
run /usr/bin/journalctl --boot --no-pager --output=cat --identifier=entropy-gate --priority=warning..warning
`, vmtest.SystemdConfig{})
		// The journal files the configuration warning (a line on the
		// service's stderr) and the degraded end of the wait (a
		// structured entry) as warnings of entropy-gate.
		warnings := strings.Join(b.Report.Output(stepWarnings), "\n")
		for _, want := range []string{"warning: " + gateConf + ":5: Colour", "Open by timeout after"} {
			if !strings.Contains(warnings, want) {
				t.Errorf("entropy-gate's warnings in the journal lack %q:\n%s", want, warnings)
			}
		}
		b.wantSeedUnitBeforeSysinit(t)
		b.wantState(t, gateUnit, "active", "success")
		b.wantState(t, torUnit, "active", "success")
		b.wantState(t, storageUnit, "active", "success")
		b.wantStartedAfterReady(t, torUnit, storageUnit)
		if waited := b.at(t, gateUnit, "ActiveEnterTimestampMonotonic") - b.at(t, gateUnit, "InactiveExitTimestampMonotonic"); waited < 5*time.Second {
			t.Errorf("the gate opened after %v, before its 5 s timeout", waited)
		}
		if st := b.state(t); st.Phase != gatestate.Open || st.Outcome != gatestate.Timeout {
			t.Errorf("state file: %+v", st)
		}
		if out := b.Report.Output(stepGateState); len(out) != 1 || out[0] != `s "degraded"` {
			t.Errorf("D-Bus GateState: %q, want degraded", out)
		}
		dbus, err := vmtest.ParseUnits(b.Report.Output(stepDBusUnit))
		if err != nil {
			t.Fatal(err)
		}
		if got := dbus.Get(dbusUnit, "ActiveState"); got != "active" {
			t.Errorf("%s after the call: %s, want active (bus-activated)", dbusUnit, got)
		}
	})

	t.Run("clean poweroff: the seed unit saves a new seed", func(t *testing.T) {
		stick := newStick(t)
		gate := filepath.Join(g.tree, "usr/sbin/entropy-gate")
		if out, err := exec.Command(gate, "seed", "init", "--device", stick).CombinedOutput(); err != nil {
			t.Fatalf("seed init on the host: %v: %s", err, out)
		}
		made := readSector(t, stick)
		// The shutdown report's unit is ordered before the seed unit, so
		// it stops after it: its ExecStop= sees the seed unit's stop.
		const (
			stepSavedJournal = 1
			stepSavedHash    = 2
		)
		hashSector := fmt.Sprintf("hash /dev/vda %d 512\n", seedOffset)
		b := g.boot(t, "[Gate]\nMode=passive\nTimeout=30s\n[Seed.Sector]\nEnable=yes\nDevice=/dev/vda\n", hashSector, vmtest.SystemdConfig{
			Config: vmtest.Config{Disks: []vmtest.Disk{{Path: stick}}},
			Texts: map[string]string{
				"/vmtest/shutdown": "run /usr/bin/journalctl --boot --output=short-monotonic --no-pager --unit=" + seedUnit + "\n" + hashSector,
				"/etc/systemd/system/vmtest-shutdown-report.service": `[Unit]
Description=Report to the vmtest host after the seed unit stopped (test)
DefaultDependencies=no
Before=` + seedUnit + ` shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=` + vmtest.ScenarioCommand("/vmtest/shutdown") + `
StandardOutput=tty
TTYPath=/dev/console

[Install]
WantedBy=sysinit.target
`,
			},
			Enable: []string{"vmtest-shutdown-report.service"},
		})
		b.wantSeedUnitBeforeSysinit(t)
		if load := b.find(t, "entropy-gate", "seed load sector:/dev/vda"); !strings.Contains(load.Message, "credited 256 bits") {
			t.Errorf("seed load: %q, want credited", load.Message)
		}
		b.wantState(t, gateUnit, "active", "success")
		b.wantStartedAfterReady(t, torUnit, storageUnit)
		if st := b.state(t); st.Phase != gatestate.Open || st.Outcome != gatestate.Ready {
			t.Errorf("state file: %+v, want opened by the seed", st)
		}

		final := readSector(t, stick)
		afterBoot, _ := b.Report.Find(stepExtra, protocol.KindHash)
		shutdown, ok := b.Runs["/vmtest/shutdown"]
		if !ok {
			t.Fatalf("the shutdown report did not run\n%s", b.Console)
		}
		afterSave, _ := shutdown.Find(stepSavedHash, protocol.KindHash)
		if sum(final) == afterBoot.Get("sha256") || sum(final) == sum(made) || sum(final) != afterSave.Get("sha256") {
			t.Errorf("LBA 34: %.12s made, %.12s after the boot, %.12s after the seed unit stopped, %.12s on the host after power-off: want a new seed written at shutdown",
				sum(made), afterBoot.Get("sha256"), afterSave.Get("sha256"), sum(final))
		}
		if r, err := seeders.ParseRecord(final); err != nil || !r.Creditable {
			t.Errorf("seed saved at shutdown: %+v, %v; want a creditable record", r, err)
		}
		saved, ok := vmtest.FindJournal(vmtest.ParseJournal(shutdown.Output(stepSavedJournal)), "entropy-gate", "seed save sector:/dev/vda")
		if !ok {
			t.Errorf("no seed save in the journal at shutdown: %q", shutdown.Output(stepSavedJournal))
		} else {
			t.Logf("at shutdown: %s", saved.Message)
		}
	})
}
