// SPDX-License-Identifier: GPL-3.0-or-later

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

// The benchmark boots the same live system, from an installer-made
// stick, three ways: with entropy-gate, with a copy of Tails 6.4's seed
// step instead, and with neither. Each boot's seed step runs in our
// init-bottom script's place (after live-boot mounted the stick: Tails
// 6.4 runs its step in init-top, where it waits for the disk), between
// two kernel log marks that time it.

// tails64SeedStep is Tails 6.4's seed step: the 512 bytes at LBA 34 of
// the boot disk into /dev/urandom, mixed and never credited.
const tails64SeedStep = `#!/bin/sh
medium=$(grep " /run/live/medium " /proc/mounts | cut -d" " -f1)
disk=/dev/$(basename "$(readlink -f "/sys/class/block/${medium#/dev/}/..")")
dd if="$disk" of=/dev/urandom bs=512 skip=34 count=1 2>/dev/null
exit 0
`

// benchStep is the path of the timed step in the initramfs.
const benchStep = "/vmtest/seed-step"

// timedStep replaces our init-bottom script: it runs benchStep between
// two marks in the kernel log.
const timedStep = `#!/bin/sh
[ "$1" = prereqs ] && exit 0
echo "vmtest-step: begin" >/dev/kmsg
sh ` + benchStep + `
echo "vmtest-step: end" >/dev/kmsg
exit 0
`

// noGate turns entropy-gate off in the booted system: empty unit files
// in /etc mask ours, and an empty drop-in of the same name replaces the
// one that makes Tor wait for the gate.
var noGate = map[string]string{
	"/etc/systemd/system/" + liveSeedUnit:                         "",
	"/etc/systemd/system/" + liveGateUnit:                         "",
	"/etc/systemd/system/" + liveTorUnit + ".d/entropy-gate.conf": "",
}

// benchBoot is one way of booting.
type benchBoot struct {
	name       string
	step       string            // the seed step's script
	texts      map[string]string // laid over the system
	withoutUs  bool              // the initramfs a system without entropy-gate has
	crng, tor  time.Duration
	stepTook   time.Duration
	initrdSize int64
}

func BenchmarkLiveSystemBoot(b *testing.B) {
	ll := newLiveLab(b)
	ours, err := os.ReadFile("../../units/initramfs-tools/scripts/init-bottom/entropy-gate")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bare, err := ll.lab.PrepareLive(ctx, vmtest.LiveRecipe{})
	if err != nil {
		b.Fatal(err)
	}
	ways := []benchBoot{
		{name: "(a) entropy-gate", step: string(ours)},
		{name: "(b) Tails 6.4's seed step", step: tails64SeedStep, texts: noGate, withoutUs: true},
		{name: "(c) neither", step: "#!/bin/sh\nexit 0\n", texts: noGate, withoutUs: true},
	}
	// The same installer-made stick at its first boot (repartitioned
	// then), and at a later boot (after one boot with entropy-gate).
	installed := ll.newStick(b)
	ll.seedInit(b, installed)
	later := filepath.Join(b.TempDir(), "later.img")
	if err := copyStick(installed, later); err != nil {
		b.Fatal(err)
	}
	ll.benchBoot(b, later, &benchBoot{step: string(ours)})
	var table strings.Builder
	table.WriteString("| stick | boot | `crng init done` (uptime) | tor@default starts (uptime) | initramfs | seed step |\n|---|---|---|---|---|---|\n")
	for _, state := range []struct{ name, stick string }{{"first boot", installed}, {"later boot", later}} {
		boots := slices.Clone(ways)
		for range b.N {
			for i := range boots {
				stick := filepath.Join(b.TempDir(), "stick.img")
				if err := copyStick(state.stick, stick); err != nil {
					b.Fatal(err)
				}
				ll.benchBoot(b, stick, &boots[i])
				boots[i].initrdSize = ll.live.InitrdSize
				if boots[i].withoutUs {
					boots[i].initrdSize = bare.InitrdSize
				}
			}
		}
		a, tails, neither := boots[0], boots[1], boots[2]
		unit := strings.ReplaceAll(state.name, " ", "-")
		b.ReportMetric((tails.crng - a.crng).Seconds(), unit+"-crng-earlier-than-b-s")
		b.ReportMetric((neither.crng - a.crng).Seconds(), unit+"-crng-earlier-than-c-s")
		b.ReportMetric(float64(a.stepTook)/float64(tails.stepTook), unit+"-step-vs-tails-x")
		for _, bb := range boots {
			fmt.Fprintf(&table, "| %s | %s | %.1f s | %.1f s | %.1f MiB | %d ms |\n", state.name, bb.name, bb.crng.Seconds(), bb.tor.Seconds(),
				float64(bb.initrdSize)/(1<<20), bb.stepTook.Milliseconds())
		}
	}
	b.ReportMetric(float64(ll.live.InitrdSize)/float64(bare.InitrdSize), "initrd-vs-c-x")
	b.Logf("guest uptimes, one boot each:\n%s", table.String())

	gate, poller, woke := ll.reaction(b)
	b.ReportMetric(float64(gate.Microseconds())/1000, "gate-reaction-ms")
	b.ReportMetric(float64(poller.Microseconds())/1000, "poll-reaction-ms")
	b.ReportMetric(float64(gate)/float64(poller), "gate-vs-poll-x")
	b.Logf("reaction to a credit, from the ioctl's start to READY=1 as systemd records it: the gate %v, a poll(2) on /dev/random %v (%.2f×; the poller's own wake-up %v)",
		gate, poller, float64(gate)/float64(poller), woke)
}

// The reaction boot: from the ISO (nothing credited), a passive gate, a
// minimal waiter blocked in poll(2) on /dev/random and a credit once both
// wait. The waiter is a notify service, as the gate is, so systemd times
// both the same way: it sends READY=1 the moment it wakes. It starts with
// the boot's first jobs and is ordered before nothing but multi-user.target,
// which the credit does not wait for.
const (
	pollerUnit = "vmtest-poller.service"
	reactUnit  = "vmtest-react-credit.service"
)

var reactionTexts = map[string]string{
	"/etc/entropy-gate/entropy-gate.conf.d/50-test.conf": "[Gate]\nMode=passive\nTimeout=5min\n",
	"/etc/systemd/system/" + pollerUnit: `[Unit]
Description=The minimal waiter: poll(2) on /dev/random (benchmark)
DefaultDependencies=no

[Service]
Type=notify
TimeoutStartSec=infinity
ExecStart=/init pollready
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
`,
	"/vmtest/react-credit": "sleep 5s\ncredit 256\n",
	"/etc/systemd/system/" + reactUnit: `[Unit]
Description=A credit while the gate and the minimal waiter wait (benchmark)
After=basic.target

[Service]
Type=oneshot
ExecStart=` + vmtest.ScenarioCommand("/vmtest/react-credit") + `

[Install]
WantedBy=multi-user.target
`,
}

// reaction boots the ISO with a passive gate and the minimal waiter,
// credits once both wait, and returns how long after the ioctl began each
// became ready as systemd records it (its unit turned active on READY=1),
// and when the waiter itself woke, on the guest's CLOCK_MONOTONIC.
func (ll *liveLab) reaction(b *testing.B) (gate, poller, woke time.Duration) {
	iso := filepath.Join(b.TempDir(), "tails.iso")
	if err := ll.live.NewISO(context.Background(), iso); err != nil {
		b.Fatal(err)
	}
	boot := ll.bootWith(b, vmtest.LiveConfig{SystemdConfig: vmtest.SystemdConfig{
		Config: vmtest.Config{Disks: []vmtest.Disk{{Path: iso, CDROM: true}}, CPUs: benchCPUs},
		Texts:  reactionTexts,
		Enable: []string{pollerUnit, reactUnit},
		Report: liveReportWith(pollerUnit),
	}})
	event := func(text string) protocol.Event {
		e, ok, err := protocol.ParseLine(boot.find(b, "init", text).Message)
		if !ok || err != nil {
			b.Fatalf("journal entry with %q: not an event (%v)", text, err)
		}
		return e
	}
	// The kernel turns ready inside the ioctl, so both may wake before
	// it returns: count from its start.
	credit := event("credit bits=256")
	credited, err := credit.CreditStarted()
	if err != nil {
		b.Fatal(err)
	}
	woke = event("ready polls=poll(2)").Time
	gateReady := boot.at(b, liveGateUnit, "ActiveEnterTimestampMonotonic")
	pollerReady := boot.at(b, pollerUnit, "ActiveEnterTimestampMonotonic")
	if woke < credited || gateReady < credited || pollerReady < credited {
		b.Fatalf("the CRNG was ready before the credit (poll woke at %v, READY=1 at %v and %v, credit began at %v)",
			woke, gateReady, pollerReady, credited)
	}
	return gateReady - credited, pollerReady - credited, woke - credited
}

// benchCPUs is the benchmarks' virtual CPUs: one, as the figures in
// docs/boot-entropy.md were measured.
const benchCPUs = 1

// benchBoot boots stick the way bb says and records its times.
func (ll *liveLab) benchBoot(b *testing.B, stick string, bb *benchBoot) {
	boot := ll.bootWith(b, vmtest.LiveConfig{
		SystemdConfig: vmtest.SystemdConfig{
			Config: vmtest.Config{Disks: []vmtest.Disk{{Path: stick, USBSerial: stickSerial}}, CPUs: benchCPUs},
			Texts:  bb.texts,
			Report: liveReport,
		},
		Initramfs: map[string]string{"/scripts/init-bottom/entropy-gate": timedStep, benchStep: bb.step},
	})
	bb.crng = boot.find(b, "kernel", "random: crng init done").Time
	bb.tor = boot.at(b, liveTorUnit, "InactiveExitTimestampMonotonic")
	bb.stepTook = boot.find(b, "vmtest-step", "end").Time - boot.find(b, "vmtest-step", "begin").Time
}

// copyStick copies a stick image, keeping it sparse.
func copyStick(src, dst string) error {
	if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("cp %s: %w: %s", src, err, out)
	}
	return nil
}
