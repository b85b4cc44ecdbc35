// SPDX-License-Identifier: GPL-3.0-or-later

package integration

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

const sectorSeed = "sector:/dev/sda@34"

// wantNoCredit checks that no seed was credited this boot.
func (b *liveBoot) wantNoCredit(t *testing.T) {
	t.Helper()
	for _, s := range b.thisBootSeeds(t) {
		if s.CreditedBits > 0 {
			t.Errorf("seed %s %s credited %d bits", s.Backend, s.Action, s.CreditedBits)
		}
	}
}

// wantCRNGAfterSystemd checks that the CRNG was initialized only once
// systemd ran: nothing in the initramfs did it.
func (b *liveBoot) wantCRNGAfterSystemd(t *testing.T) {
	t.Helper()
	crng := b.find(t, "kernel", "random: crng init done")
	if systemd := b.find(t, "systemd", ""); crng.Time <= systemd.Time {
		t.Errorf("crng init done at %v, before systemd at %v", crng.Time, systemd.Time)
	}
}

// wantCreditableRecord checks that the stick's LBA 34 holds a creditable
// record of ours.
func wantCreditableRecord(t *testing.T, stick string) {
	t.Helper()
	if r, err := seeders.ParseRecord(stickSeedSector(t, stick)); err != nil || !r.Creditable {
		t.Errorf("LBA 34: %v, %v; want a creditable record", r, err)
	}
}

func TestLiveSystemPlainImage(t *testing.T) {
	ll := newLiveLab(t)
	stick := ll.newStick(t)
	usb := vmtest.Disk{Path: stick, USBSerial: stickSerial}

	first := ll.boot(t, usb, nil, "")
	t.Run("first boot: nothing credited, the active wait opens the gate, a seed is saved", func(t *testing.T) {
		if load := first.seedLoad(t, sectorSeed); load.Content != seeders.ContentEmpty || load.CreditedBits != 0 {
			t.Errorf("seed load of the empty sector: %+v, want it empty, nothing credited", load)
		}
		first.wantNoCredit(t)
		first.find(t, "entropy-gate", "Open: CRNG initialized")
		first.wantTorAfterReady(t)
		wantCreditableRecord(t, stick)
		wantValidStick(t, stick)
	})
	second := ll.boot(t, usb, nil, "")
	t.Run("second boot: credits the saved seed", func(t *testing.T) {
		if load := second.seedLoad(t, sectorSeed); load.CreditedBits < 256 {
			t.Errorf("seed load: %+v, want 256 bits credited", load)
		}
		second.wantCRNGBeforeSystemd(t)
		second.wantTorAfterReady(t)
	})
}

func TestLiveSystemTails64Stick(t *testing.T) {
	ll := newLiveLab(t)
	stick := ll.newStick(t)
	// Tails Installer 6.4 writes 512 random bytes at LBA 34.
	legacy := make([]byte, vmtest.SectorSize)
	if _, err := rand.Read(legacy); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(stick, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(legacy, liveSeedOffset); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	usb := vmtest.Disk{Path: stick, USBSerial: stickSerial}

	first := ll.boot(t, usb, nil, "")
	t.Run("first boot: the legacy sector mixed once and replaced", func(t *testing.T) {
		load := first.seedLoad(t, sectorSeed)
		if !load.Mixed || load.CreditedBits != 0 {
			t.Errorf("seed load of Tails 6.4's sector: %+v, want mixed, not credited", load)
		}
		first.wantNoCredit(t)
		first.wantTorAfterReady(t)
		if sum(stickSeedSector(t, stick)) == sum(legacy) {
			t.Error("LBA 34 still holds Tails 6.4's random bytes")
		}
		wantCreditableRecord(t, stick)
	})
	second := ll.boot(t, usb, nil, "")
	t.Run("second boot: credits our record", func(t *testing.T) {
		if load := second.seedLoad(t, sectorSeed); load.CreditedBits < 256 || load.Mixed {
			t.Errorf("seed load: %+v, want 256 bits credited", load)
		}
		second.wantCRNGBeforeSystemd(t)
	})
}

// The ISO scenario's parts: the desktop user, and the assistant's check
// run as that user while the passive gate waits. Python is told not to
// seed its hashes: reading /dev/urandom for that would make the kernel
// initialize the CRNG at once. What opens the gate is the system bus
// starting for the check: dbus-daemon reads /dev/urandom too.
const (
	assistantUnit = "vmtest-assistant.service"
	checkScript   = "/usr/local/lib/vmtest/check_entropy.py"
	plymouthLog   = "/run/plymouth-debug.log"
)

var isoTexts = map[string]string{
	"/etc/entropy-gate/entropy-gate.conf.d/50-test.conf": "[Gate]\nMode=passive\nTimeout=5min\n",
	"/etc/sysusers.d/vmtest-amnesia.conf":                "u amnesia 1000 \"Desktop user\" /home/amnesia /bin/sh\n",
	"/etc/systemd/system/" + assistantUnit: `[Unit]
Description=The persistent storage assistant's entropy check, as the desktop user (test)
Requires=dbus.socket
After=dbus.socket systemd-sysusers.service

[Service]
Type=oneshot
RemainAfterExit=yes
User=amnesia
Environment=PYTHONHASHSEED=0
ExecStart=/bin/sh -c 'python3 ` + checkScript + `; echo "check exit $?"; python3 ` + checkScript + ` --wait 240; echo "check --wait exit $?"'

[Install]
WantedBy=multi-user.target
`,
	// Plymouth stays up as long as the gate waits: in Tails the desktop
	// quits it, later than this minimal system would.
	"/etc/systemd/system/plymouth-quit.service.d/vmtest.conf":      "[Unit]\nAfter=entropy-gate.service\n",
	"/etc/systemd/system/plymouth-quit-wait.service.d/vmtest.conf": "[Unit]\nAfter=entropy-gate.service\n",
}

func TestLiveSystemISO(t *testing.T) {
	ll := newLiveLab(t)
	iso := filepath.Join(t.TempDir(), "tails.iso")
	if err := ll.live.NewISO(context.Background(), iso); err != nil {
		t.Fatal(err)
	}
	before := fileSum(t, iso)
	check, err := os.ReadFile("../../docs/examples/check_entropy.py")
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{checkScript: string(check)}
	for k, v := range isoTexts {
		texts[k] = v
	}
	const liveStepPlymouth = liveStepExtra
	b := ll.bootWith(t, vmtest.LiveConfig{SystemdConfig: vmtest.SystemdConfig{
		Config: vmtest.Config{
			Disks:  []vmtest.Disk{{Path: iso, CDROM: true}},
			Append: []string{"splash", "plymouth.ignore-serial-consoles", "plymouth.debug=stream:" + plymouthLog},
		},
		Texts:  texts,
		Enable: []string{assistantUnit},
		Report: liveReport + "run /bin/grep -a -E \"message|updating status\" " + plymouthLog + "\n",
	}})

	t.Run("nothing written, nothing credited, the gate waits, then opens", func(t *testing.T) {
		if fileSum(t, iso) != before {
			t.Error("the ISO image changed")
		}
		for _, s := range b.thisBootSeeds(t) {
			if s.CreditedBits > 0 || s.Refreshed {
				t.Errorf("seed %s %s: credited %d bits, refreshed %v; want neither from a DVD", s.Backend, s.Action, s.CreditedBits, s.Refreshed)
			}
		}
		b.wantNoCredit(t)
		b.wantCRNGAfterSystemd(t)
		b.wantTorAfterReady(t)
	})
	t.Run("the assistant's check as the desktop user on the system bus: waits, then ready", func(t *testing.T) {
		started := b.find(t, "systemd", "Starting "+assistantUnit)
		b.find(t, "systemd", "Finished "+assistantUnit)
		ready := b.at(t, liveGateUnit, "ActiveEnterTimestampMonotonic")
		if started.Time >= ready {
			t.Errorf("the check started at %v, not while the gate waited (READY=1 at %v)", started.Time, ready)
		}
		// Either answer of the first check is right, if it matches the gate.
		first := b.find(t, "sh", "check exit")
		if strings.HasSuffix(first.Message, "exit 0") != (first.Time > ready) {
			t.Errorf("first check %q at %v, the gate's READY=1 at %v", first.Message, first.Time, ready)
		}
		if waited := b.find(t, "sh", "check --wait exit"); waited.Message != "check --wait exit 0" || waited.Time <= ready {
			t.Errorf("the waiting check: %q at %v, want exit 0 after the gate's READY=1 at %v", waited.Message, waited.Time, ready)
		}
		if call := b.find(t, "dbus-daemon", "org.boum.tails.EntropyGate1"); !strings.Contains(call.Message, "uid=1000") {
			t.Errorf("the service was not activated by the desktop user: %q", call.Message)
		}
	})
	t.Run("Plymouth shows the progress while the gate waits, then clears it", func(t *testing.T) {
		lines := b.Report.Output(liveStepPlymouth)
		shown, cleared := -1, -1
		for i, l := range lines {
			if strings.Contains(l, "Initializing the random number generator") && shown < 0 {
				shown = i
			}
			// An empty message clears the one shown.
			if shown >= 0 && i > shown && strings.HasSuffix(strings.TrimSpace(l), "displaying message") {
				cleared = i
			}
		}
		if shown < 0 || cleared < 0 {
			t.Errorf("Plymouth's debug stream: progress at line %d, cleared at line %d; want both:\n%s", shown, cleared, strings.Join(lines, "\n"))
		}
	})
}

// emergencyTexts make the seed units print to the console, so that a
// seed write would show there after the stick is gone.
var emergencyTexts = map[string]string{
	"/etc/systemd/system/" + liveSeedUnit + ".d/console.conf": "[Service]\nStandardOutput=journal+console\nStandardError=journal+console\n",
	"/etc/systemd/system/" + liveGateUnit + ".d/console.conf": "[Service]\nStandardOutput=journal+console\nStandardError=journal+console\n",
}

// emergencyReport is Tails' emergency path: a watchdog that lives in RAM
// (the report runs from the root's tmpfs layer: the squashfs went with
// the stick) sees the boot disk go and powers off at once, stopping no
// unit (poweroff -f).
const emergencyReport = "waitgone /dev/sda 60s\npoweroff\n"

// pullMarker is on the console once the watchdog waits: the stick may be
// pulled.
const pullMarker = `step text="waitgone /dev/sda`

// pullWatcher pulls the stick (device_del on the monitor) when the
// console shows pullMarker, once, and remembers when.
type pullWatcher struct {
	monitor string
	mu      sync.Mutex
	seen    strings.Builder
	pulled  time.Time
	answer  string
	err     error
}

func (w *pullWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.pulled.IsZero() || w.err != nil {
		return len(p), nil
	}
	w.seen.Write(p)
	if strings.Contains(w.seen.String(), pullMarker) {
		w.answer, w.err = vmtest.MonitorCommand(w.monitor, "device_del disk0")
		w.pulled = time.Now()
	}
	return len(p), nil
}

func TestLiveSystemStickPulled(t *testing.T) {
	ll := newLiveLab(t)
	stick := ll.newStick(t)
	watcher := &pullWatcher{monitor: filepath.Join(t.TempDir(), "monitor.sock")}
	b, err := ll.tryBoot(t, vmtest.LiveConfig{SystemdConfig: vmtest.SystemdConfig{
		Config: vmtest.Config{
			Disks:   []vmtest.Disk{{Path: stick, USBSerial: stickSerial}},
			Monitor: watcher.monitor,
			Console: watcher,
		},
		Texts:  emergencyTexts,
		Report: emergencyReport,
	}})
	if !errors.Is(err, vmtest.ErrReportUnfinished) {
		t.Fatalf("boot: %v, want the report cut short by the power-off", err)
	}
	watcher.mu.Lock()
	defer watcher.mu.Unlock()
	if watcher.pulled.IsZero() || watcher.err != nil || watcher.answer != "" {
		t.Fatalf("device_del: at %v, answer %q, %v", watcher.pulled, watcher.answer, watcher.err)
	}
	console := b.Console[strings.LastIndex(b.Console, pullMarker):]
	t.Run("powered off within 10 s, no seed write attempted", func(t *testing.T) {
		// QEMU exits at the guest's power-off.
		if took := b.end.Sub(watcher.pulled); took > 10*time.Second {
			t.Errorf("power-off %v after the stick was pulled, want at most 10 s", took)
		} else {
			t.Logf("powered off %v after the stick was pulled", took.Round(10*time.Millisecond))
		}
		if !strings.Contains(console, "reboot: Power down") {
			t.Errorf("no power-off on the console after the pull:\n%s", console)
		}
		if strings.Contains(console, "seed save") || strings.Contains(console, "seed refresh") {
			t.Errorf("a seed write was attempted after the pull:\n%s", console)
		}
	})
	t.Run("the stick is still a valid GPT with a clean FAT", func(t *testing.T) {
		wantValidStick(t, stick)
	})
}
