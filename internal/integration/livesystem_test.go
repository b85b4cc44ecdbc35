// SPDX-License-Identifier: GPL-3.0-or-later

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeding"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

// These tests boot the Tails-shaped live system of vmtest.PrepareLive:
// Debian's live-boot and initramfs-tools with our hook and init-bottom
// script, Tails' first-boot repartitioning, systemd with our units, Tor
// and D-Bus, from a virtual USB stick (or DVD) laid out like Tails'
// published image, on the lab's entropy-starved guest.

// The units whose start the tests follow.
const (
	liveSeedUnit = "entropy-gate-seed.service"
	liveGateUnit = "entropy-gate.service"
	liveTorUnit  = "tor@default.service"
)

// stickSerial is the USB serial number of the lab's stick.
const stickSerial = "4C530001230517104394"

// stickSize is a stick larger than the image, as every real one is.
const stickSize = 1 << 30

// liveSeedOffset is the byte offset of the sector seed, LBA 34.
const liveSeedOffset = seeders.DefaultLBA * vmtest.SectorSize

// The report's steps, which every live boot runs once the boot has
// finished; a scenario may add steps after them.
const (
	liveStepUnits = iota + 1
	liveStepJournal
	liveStepStatus
	liveStepSeedStatus
	liveStepSectorHash
	liveStepRuntimeFiles
	liveStepExtra
)

var liveReport = liveReportWith()

// liveReportWith is the report of a live boot that also follows units.
func liveReportWith(units ...string) string {
	units = append([]string{liveSeedUnit, liveGateUnit, liveTorUnit, "sysinit.target", "multi-user.target"}, units...)
	return `
run /usr/bin/systemctl show --property=Id,ActiveState,Result,InactiveExitTimestampMonotonic,ActiveEnterTimestampMonotonic ` +
		strings.Join(units, " ") + `
run /usr/bin/journalctl --boot --output=short-monotonic --no-pager
-run /usr/sbin/entropy-gate status --json
-run /usr/sbin/entropy-gate seed status --json
-hash /dev/sda ` + strconv.Itoa(liveSeedOffset) + ` 512
run /usr/bin/ls -1 /run/entropy-gate
`
}

// liveLab is the lab with the live system, prepared once per process.
type liveLab struct {
	lab   *vmtest.Lab
	live  *vmtest.LiveSystem
	tree  string // our `make install` tree, also in the live system
	boots int    // so far, to name each boot's artifacts
}

var liveShared struct {
	once sync.Once
	tree string
	live *vmtest.LiveSystem
	err  error
}

// TestMain removes the shared `make install` tree after the tests.
// removeLiveTree removes the shared make-install tree, once every test
// has run (TestMain).
func removeLiveTree() {
	if liveShared.tree != "" {
		os.RemoveAll(liveShared.tree)
	}
}

func newLiveLab(t testing.TB) *liveLab {
	t.Helper()
	lab := vmtest.New(t)
	liveShared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		if liveShared.tree, liveShared.err = os.MkdirTemp("", "live-tree-"); liveShared.err != nil {
			return
		}
		build, err := os.MkdirTemp("", "live-build-")
		if liveShared.err = err; err != nil {
			return
		}
		defer os.RemoveAll(build)
		// The live system installs the Debian package, as Tails would;
		// its files, unpacked, are the tree the installer step runs from.
		var deb string
		if deb, liveShared.err = vmtest.MakeDeb(ctx, build); liveShared.err != nil {
			return
		}
		if _, liveShared.err = exec.CommandContext(ctx, "dpkg-deb", "-x", deb, liveShared.tree).Output(); liveShared.err != nil {
			liveShared.err = fmt.Errorf("dpkg-deb -x: %w", liveShared.err)
			return
		}
		start := time.Now()
		liveShared.live, liveShared.err = lab.PrepareLive(ctx, vmtest.LiveRecipe{Package: deb})
		if liveShared.err == nil {
			t.Logf("%v; prepared in %v", liveShared.live, time.Since(start).Round(100*time.Millisecond))
		}
	})
	if errors.Is(liveShared.err, vmtest.ErrUnavailable) {
		t.Skip(liveShared.err)
	}
	if liveShared.err != nil {
		t.Fatal(liveShared.err)
	}
	return &liveLab{lab: lab, live: liveShared.live, tree: liveShared.tree}
}

// newStick writes the published image to a fresh stick.
func (ll *liveLab) newStick(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stick.img")
	if _, err := ll.live.NewStick(context.Background(), path, stickSize); err != nil {
		t.Fatal(err)
	}
	return path
}

// seedInit runs `entropy-gate seed init` on the stick as Tails Installer
// would right after writing the image: on a computer whose CRNG is
// initialized (virtio-rng), with the stick attached by USB.
func (ll *liveLab) seedInit(t testing.TB, stick string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	usb := vmtest.Disk{Path: stick, USBSerial: stickSerial}
	if err := ll.lab.InstallerSeedInit(ctx, ll.live, usb, filepath.Join(ll.tree, "usr/sbin/entropy-gate")); err != nil {
		t.Fatal(err)
	}
}

// liveBoot is what one boot of the live system showed.
type liveBoot struct {
	*vmtest.SystemdResult
	units   vmtest.Units
	journal []vmtest.JournalEntry
	end     time.Time // when QEMU exited
}

// boot boots the live system from disk with texts laid over it and the
// extra report steps.
func (ll *liveLab) boot(t testing.TB, disk vmtest.Disk, texts map[string]string, extraReport string) *liveBoot {
	t.Helper()
	return ll.bootWith(t, vmtest.LiveConfig{SystemdConfig: vmtest.SystemdConfig{
		Config: vmtest.Config{Disks: []vmtest.Disk{disk}},
		Texts:  texts,
		Report: liveReport + extraReport,
	}})
}

// scenarioCPUs is how many virtual CPUs a scenario's live boot gets:
// QEMU runs each on a host thread of its own (multi-threaded TCG) and the
// lab runs one guest at a time, so the second lets systemd, Tor and the
// gate start side by side, as on the multi-core computers Tails boots on,
// and the scenarios take less of CI's time. The benchmarks keep one, as
// the figures in docs/boot-entropy.md were measured (benchCPUs).
const scenarioCPUs = 2

// bootWith boots the live system with a whole configuration.
func (ll *liveLab) bootWith(t testing.TB, cfg vmtest.LiveConfig) *liveBoot {
	t.Helper()
	b, err := ll.tryBoot(t, cfg)
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	return b
}

// tryBoot boots the live system and returns what the boot showed, with
// the error of a boot that failed or whose report did not finish (then
// only the console and the end are there).
func (ll *liveLab) tryBoot(t testing.TB, cfg vmtest.LiveConfig) (*liveBoot, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if cfg.CPUs == 0 {
		cfg.CPUs = scenarioCPUs
	}
	res, err := ll.lab.BootLive(ctx, ll.live, cfg)
	end := time.Now()
	if res == nil {
		return nil, err
	}
	ll.boots++
	name := fmt.Sprintf("boot%d", ll.boots)
	saveArtifact(t, name+".console.txt", res.Console)
	t.Logf("live boot took %v wall", res.Wall.Round(100*time.Millisecond))
	b := &liveBoot{SystemdResult: res, end: end}
	if err != nil {
		return b, err
	}
	journal := strings.Join(res.Report.Output(liveStepJournal), "\n") + "\n"
	saveArtifact(t, name+".journal.txt", journal)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("journal:\n%s", journal)
		}
	})
	if b.units, err = vmtest.ParseUnits(res.Report.Output(liveStepUnits)); err != nil {
		return b, err
	}
	b.journal = vmtest.ParseJournal(res.Report.Output(liveStepJournal))
	return b, nil
}

// saveArtifact keeps a file for a person to read where `make unit` keeps
// artifacts.
func saveArtifact(t testing.TB, suffix, text string) {
	dir := os.Getenv("ENTROPY_GATE_ARTIFACTS")
	if dir == "" {
		return
	}
	name := "live-" + strings.NewReplacer("/", "-", " ", "-", ":", "").Replace(t.Name()) + "." + suffix
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Error(err)
	}
}

// find returns the first journal entry of ident that contains text.
func (b *liveBoot) find(t testing.TB, ident, text string) vmtest.JournalEntry {
	t.Helper()
	e, ok := vmtest.FindJournal(b.journal, ident, text)
	if !ok {
		t.Fatalf("no journal entry of %s with %q", ident, text)
	}
	return e
}

// at returns a unit's …TimestampMonotonic property.
func (b *liveBoot) at(t testing.TB, unit, key string) time.Duration {
	t.Helper()
	d, err := b.units.Monotonic(unit, key)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// wantActive checks that a unit started and succeeded.
func (b *liveBoot) wantActive(t *testing.T, unit string) {
	t.Helper()
	if got, res := b.units.Get(unit, "ActiveState"), b.units.Get(unit, "Result"); got != "active" || res != "success" {
		t.Errorf("%s: ActiveState=%s Result=%s, want active success", unit, got, res)
	}
}

// wantTorAfterReady checks that tor@default began to start only after
// the gate sent READY=1.
func (b *liveBoot) wantTorAfterReady(t *testing.T) {
	t.Helper()
	b.wantActive(t, liveGateUnit)
	b.wantActive(t, liveTorUnit)
	ready, start := b.at(t, liveGateUnit, "ActiveEnterTimestampMonotonic"), b.at(t, liveTorUnit, "InactiveExitTimestampMonotonic")
	if start <= ready {
		t.Errorf("%s started at %v, not after the gate's READY=1 at %v", liveTorUnit, start, ready)
	}
}

// thisBootSeeds returns what `entropy-gate seed status --json` says the
// backends did this boot.
func (b *liveBoot) thisBootSeeds(t *testing.T) []seeders.Result {
	t.Helper()
	var st struct {
		ThisBoot []seeders.Result `json:"this_boot"`
	}
	out := b.Report.Output(liveStepSeedStatus)
	if err := json.Unmarshal([]byte(strings.Join(out, "\n")), &st); err != nil {
		t.Fatalf("entropy-gate seed status --json: %v: %q", err, out)
	}
	return st.ThisBoot
}

// seedLoad returns what the initramfs's seed load did with backend.
func (b *liveBoot) seedLoad(t *testing.T, backend string) seeders.Result {
	t.Helper()
	for _, s := range b.thisBootSeeds(t) {
		if s.Backend == backend && s.Action == seeders.ActionLoad {
			return s
		}
	}
	t.Fatalf("no load of %s this boot: %+v", backend, b.thisBootSeeds(t))
	return seeders.Result{}
}

// remountedMedium says whether the boot made its one read-write remount
// of the boot medium (the marker of seeding.RemountMarker).
func (b *liveBoot) remountedMedium(t *testing.T) bool {
	t.Helper()
	files := b.Report.Output(liveStepRuntimeFiles)
	if !slices.Contains(files, "seeds.json") {
		t.Fatalf("/run/entropy-gate holds %q, not even the seed results", files)
	}
	return slices.Contains(files, seeding.RemountMarker)
}

// sessionSector is the hash of the seed sector once the boot finished.
func (b *liveBoot) sessionSector(t *testing.T) string {
	t.Helper()
	e, ok := b.Report.Find(liveStepSectorHash, protocol.KindHash)
	if !ok {
		t.Fatalf("no hash of the seed sector in the report")
	}
	return e.Get("sha256")
}

// wantCRNGBeforeSystemd checks that the kernel said "crng init done"
// before systemd's first line: in the initramfs.
func (b *liveBoot) wantCRNGBeforeSystemd(t *testing.T) {
	t.Helper()
	crng := b.find(t, "kernel", "random: crng init done")
	systemd := b.find(t, "systemd", "")
	if crng.Time >= systemd.Time {
		t.Errorf("crng init done at %v, not before systemd's first line at %v (%q)", crng.Time, systemd.Time, systemd.Message)
	} else {
		t.Logf("crng init done at %v, %v before systemd's first line", crng.Time, systemd.Time-crng.Time)
	}
}

// gateStatus is the part of `entropy-gate status --json` the tests read.
type gateStatus struct {
	Ready bool `json:"ready"`
	Gate  struct {
		State   string `json:"state"`
		Outcome string `json:"outcome"`
	} `json:"gate"`
}

func (b *liveBoot) status(t *testing.T) gateStatus {
	t.Helper()
	var st gateStatus
	out := b.Report.Output(liveStepStatus)
	if err := json.Unmarshal([]byte(strings.Join(out, "\n")), &st); err != nil {
		t.Fatalf("entropy-gate status --json: %v: %q", err, out)
	}
	return st
}

// readSector returns the seed sector of an image.
func stickSeedSector(t testing.TB, image string) []byte {
	t.Helper()
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sector := make([]byte, vmtest.SectorSize)
	if _, err := f.ReadAt(sector, liveSeedOffset); err != nil {
		t.Fatal(err)
	}
	return sector
}

// wantValidStick checks the stick from the host: a GPT that sgdisk
// verifies without problems, whose partition 1 holds a FAT that
// fsck.vfat finds clean.
func wantValidStick(t *testing.T, stick string) {
	t.Helper()
	out, err := exec.Command("sgdisk", "-v", stick).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("No problems found")) {
		t.Errorf("sgdisk -v: %v\n%s", err, out)
	}
	info, err := exec.Command("sgdisk", "-i", "1", stick).CombinedOutput()
	if err != nil {
		t.Fatalf("sgdisk -i 1: %v\n%s", err, info)
	}
	var first, last int64
	for _, line := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(line, "First sector: "); ok {
			first = atoi(t, strings.Fields(v)[0])
		}
		if v, ok := strings.CutPrefix(line, "Last sector: "); ok {
			last = atoi(t, strings.Fields(v)[0])
		}
	}
	part := filepath.Join(t.TempDir(), "partition.img")
	if out, err := exec.Command("dd", "if="+stick, "of="+part, "bs=512", "skip="+itoa(first), "count="+itoa(last-first+1),
		"conv=sparse", "status=none").CombinedOutput(); err != nil {
		t.Fatalf("dd: %v\n%s", err, out)
	}
	if out, err := exec.Command("fsck.vfat", "-n", part).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat -n: %v\n%s", err, out)
	}
}

func TestLiveSystemInstallerStick(t *testing.T) {
	ll := newLiveLab(t)
	stick := ll.newStick(t)
	ll.seedInit(t, stick)
	installed := stickSeedSector(t, stick)
	if r, err := seeders.ParseRecord(installed); err != nil || !r.Creditable {
		t.Fatalf("installer's seed: %v, %v", r, err)
	}

	usb := vmtest.Disk{Path: stick, USBSerial: stickSerial}
	const sectorSeed = "sector:/dev/sda@34"

	first := ll.boot(t, usb, nil, "")
	afterFirst := stickSeedSector(t, stick)
	t.Run("first boot: repartitioned before the seed load, layout valid", func(t *testing.T) {
		repartitioned := first.find(t, "tails-first-boot", "done")
		loaded := first.find(t, "entropy-gate", "seed load "+sectorSeed)
		if repartitioned.Time >= loaded.Time {
			t.Errorf("repartitioning done at %v, after the seed load at %v", repartitioned.Time, loaded.Time)
		}
		wantRepartitioned(t, stick)
		wantValidStick(t, stick)
	})
	t.Run("first boot: the installer's seed credited in the initramfs", func(t *testing.T) {
		if load := first.seedLoad(t, sectorSeed); load.CreditedBits < 256 {
			t.Errorf("seed load: %+v, want 256 bits credited", load)
		}
		first.find(t, "entropy-gate", "seed load "+sectorSeed+": credited 256 bits")
		first.wantCRNGBeforeSystemd(t)
		if sum(afterFirst) == sum(installed) {
			t.Error("LBA 34 still holds the installer's record")
		}
	})
	t.Run("first boot: Tor after the gate, status ready", func(t *testing.T) {
		first.wantTorAfterReady(t)
		if st := first.status(t); !st.Ready || st.Gate.State != "open" || st.Gate.Outcome != "ready" {
			t.Errorf("entropy-gate status: %+v, want ready and open", st)
		}
	})
	t.Run("clean shutdown: the seed unit saved, the stick stays valid", func(t *testing.T) {
		if sum(afterFirst) == first.sessionSector(t) {
			t.Errorf("LBA 34 after power-off is what it was in the session: no seed saved at shutdown")
		}
		if r, err := seeders.ParseRecord(afterFirst); err != nil || !r.Creditable {
			t.Errorf("seed saved at shutdown: %v, %v; want a creditable record", r, err)
		}
		wantValidStick(t, stick)
	})

	second := ll.boot(t, usb, nil, "")
	afterSecond := stickSeedSector(t, stick)
	t.Run("second boot: credits the first boot's record, never one twice", func(t *testing.T) {
		if load := second.seedLoad(t, sectorSeed); load.CreditedBits < 256 {
			t.Errorf("seed load: %+v, want 256 bits credited", load)
		}
		second.wantCRNGBeforeSystemd(t)
		second.wantTorAfterReady(t)
		if _, ok := vmtest.FindJournal(second.journal, "tails-first-boot", "sgdisk"); ok {
			t.Error("the first-boot repartitioning ran again")
		}
		// Each boot credits the record on the stick when it starts: the
		// installer's, then the one the first boot saved at shutdown.
		records := []string{sum(installed), first.sessionSector(t), sum(afterFirst), second.sessionSector(t), sum(afterSecond)}
		seen := map[string]int{}
		for i, r := range records {
			if j, dup := seen[r]; dup {
				t.Errorf("records %d and %d on the stick are the same (%.12s): %.12s", j, i, r, records)
			}
			seen[r] = i
		}
		wantValidStick(t, stick)
	})
	t.Run("FAT seed: created with the one remount, then rewritten through the block device", func(t *testing.T) {
		for i, b := range []*liveBoot{first, second} {
			load := b.seedLoad(t, liveFATSeed)
			if !load.Refreshed || load.CreditedBits != 0 {
				t.Errorf("boot %d: FAT seed load %+v, want refreshed and not credited (live-boot mounts it world-readable)", i+1, load)
			}
		}
		if first.seedLoad(t, liveFATSeed).Content != seeders.ContentEmpty || !first.remountedMedium(t) {
			t.Error("first boot: the FAT seed file should be created, with the boot's one remount")
		}
		if second.seedLoad(t, liveFATSeed).Content != seeders.ContentRecord || second.remountedMedium(t) {
			t.Error("second boot: the FAT seed should be rewritten in place, without remounting the system partition")
		}
	})
}

// liveFATSeed is the FAT seed backend of the live system's configuration.
const liveFATSeed = "fat:/run/live/medium/live/entropy-gate.seed"

// wantRepartitioned checks the stick from the host for what Tails' first
// boot does: a new disk GUID, the backup header at the end of the stick,
// partition 1 grown with the attributes of Tails' image.
func wantRepartitioned(t *testing.T, stick string) {
	t.Helper()
	out, err := exec.Command("sgdisk", "-p", "-i", "1", "-A", "1:show", stick).CombinedOutput()
	if err != nil {
		t.Fatalf("sgdisk: %v\n%s", err, out)
	}
	text := string(out)
	if strings.Contains(text, vmtest.PublishedDiskGUID) {
		t.Errorf("the stick still has the published disk GUID:\n%s", text)
	}
	for _, want := range []string{"Partition name: 'Tails'", "EFI system partition", "1:0:1 (system partition)", "1:2:1 (legacy BIOS bootable)", "1:60:1 (read-only)", "1:62:1 (hidden)", "1:63:1 (do not automount)"} {
		if !strings.Contains(text, want) {
			t.Errorf("sgdisk does not say %q:\n%s", want, text)
		}
	}
}

func atoi(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
