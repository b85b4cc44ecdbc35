// SPDX-License-Identifier: GPL-3.0-or-later

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	mathrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

// seedOffset is where the sector seed lives on a 512-byte-sector stick.
const seedOffset = seeders.DefaultLBA * 512

func newStick(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stick.img")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := vmtest.NewStick(ctx, path, vmtest.MinStickSize); err != nil {
		t.Fatal(err)
	}
	return path
}

func readSector(t *testing.T, img string) []byte {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := f.ReadAt(b, seedOffset); err != nil {
		t.Fatal(err)
	}
	return b
}

func writeSector(t *testing.T, img string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, seedOffset); err != nil {
		t.Fatal(err)
	}
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sum(b)
}

// seedsOf returns the seed results of a state file a cat step printed.
func seedsOf(t *testing.T, res *vmtest.Result, step int, action string) []seeders.Result {
	t.Helper()
	var out []seeders.Result
	for _, s := range stateAt(t, res, step).Seeds {
		if s.Action == action {
			out = append(out, s)
		}
	}
	return out
}

// sectorConf is a gate configuration using /dev/vda's LBA 34.
func sectorConf(gate string, extra string) string {
	return `"[Gate]\nMode=passive\n` + gate + `[Seed.Sector]\nEnable=yes\nDevice=/dev/vda\n` + extra + `"`
}

func TestSeedsOnRealKernel(t *testing.T) {
	g := newGuest(t)

	t.Run("a stick made by seed init is credited at its first boot", func(t *testing.T) {
		stick := newStick(t)
		out, err := exec.Command(g.gate, "seed", "init", "--device", stick).CombinedOutput()
		if err != nil {
			t.Fatalf("seed init on the host: %v: %s", err, out)
		}
		made := readSector(t, stick)
		if r, err := seeders.ParseRecord(made); err != nil || !r.Creditable {
			t.Fatalf("seed init wrote %v, %v", r, err)
		}
		res := g.boot(t, vmtest.Config{Disks: []vmtest.Disk{{Path: stick}}, Script: `
			probe
			write /tmp/s.conf ` + sectorConf(`Timeout=30s\n`, "") + `
			run /bin/entropy-gate run --config /tmp/s.conf
			cat /run/entropy-gate/state.json
			hash /dev/vda 17408 512
			run /bin/entropy-gate seed save --config /tmp/s.conf
			hash /dev/vda 17408 512
		`})
		if p, _ := res.Find(1, "probe"); p.Get("ready") != "false" {
			t.Fatalf("guest ready before the seed: %v", p)
		}
		if code := exitCode(t, res, 3); code != 0 {
			t.Fatalf("gate: exit %d\n%s", code, res.Timeline())
		}
		loads := seedsOf(t, res, 4, seeders.ActionLoad)
		if len(loads) != 1 || loads[0].CreditedBits != 256 || !loads[0].Refreshed {
			t.Errorf("load = %+v, want credited after its replacement was written", loads)
		}
		if st := stateAt(t, res, 4); st.Outcome != gatestate.Ready || !st.CRNGInitialized {
			t.Errorf("state = %+v", st)
		}
		if outputHas(res, 3, "Waiting") {
			t.Errorf("the gate waited although the seed was credited: %q", res.Output(3))
		}
		afterBoot, _ := res.Find(5, "hash")
		afterSave, _ := res.Find(7, "hash")
		if afterBoot.Get("sha256") == sum(made) || afterSave.Get("sha256") == afterBoot.Get("sha256") {
			t.Errorf("LBA 34 did not change at boot and again at seed save: %s → %s → %s", sum(made)[:12], afterBoot.Get("sha256"), afterSave.Get("sha256"))
		}
		final := readSector(t, stick)
		if r, err := seeders.ParseRecord(final); err != nil || !r.Creditable || sum(final) != afterSave.Get("sha256") {
			t.Errorf("sector after shutdown: %v, %v (hash %s, guest saw %s)", r, err, sum(final)[:12], afterSave.Get("sha256"))
		}
	})

	t.Run("read-only stick: mixed, not credited, the gate waits", func(t *testing.T) {
		stick := newStick(t)
		if out, err := exec.Command(g.gate, "seed", "init", "--device", stick).CombinedOutput(); err != nil {
			t.Fatalf("seed init: %v: %s", err, out)
		}
		before := fileSum(t, stick)
		res := g.boot(t, vmtest.Config{Disks: []vmtest.Disk{{Path: stick, ReadOnly: true}}, Script: `
			write /tmp/s.conf ` + sectorConf(`Timeout=3s\nOnTimeout=open\n`, "") + `
			run /bin/entropy-gate run --config /tmp/s.conf
			cat /run/entropy-gate/state.json
		`})
		loads := seedsOf(t, res, 3, seeders.ActionLoad)
		if len(loads) != 1 || loads[0].CreditedBits != 0 || !loads[0].Mixed || loads[0].Refreshed {
			t.Errorf("load = %+v, want mixed only", loads)
		}
		if st := stateAt(t, res, 3); st.Outcome != gatestate.Timeout || st.CRNGInitialized {
			t.Errorf("state = %+v, want a gate that waited until its timeout", st)
		}
		if fileSum(t, stick) != before {
			t.Errorf("the read-only stick changed")
		}
	})

	t.Run("torn record: not credited, replaced by a valid one", func(t *testing.T) {
		stick := newStick(t)
		if out, err := exec.Command(g.gate, "seed", "init", "--device", stick).CombinedOutput(); err != nil {
			t.Fatalf("seed init: %v: %s", err, out)
		}
		torn := readSector(t, stick)
		torn[40] ^= 0xff // inside the seed: the checksum no longer matches
		writeSector(t, stick, torn)
		if _, err := seeders.ParseRecord(torn); !errors.Is(err, seeders.ErrChecksum) {
			t.Fatalf("test sector not torn: %v", err)
		}
		res := g.boot(t, vmtest.Config{Disks: []vmtest.Disk{{Path: stick}}, Script: `
			write /tmp/s.conf ` + sectorConf(`Timeout=2s\nOnTimeout=open\n`, "") + `
			run /bin/entropy-gate run --config /tmp/s.conf
			cat /run/entropy-gate/state.json
		`})
		loads := seedsOf(t, res, 3, seeders.ActionLoad)
		if len(loads) != 1 || loads[0].CreditedBits != 0 || !loads[0].Mixed || !loads[0].Refreshed || loads[0].Content != seeders.ContentTorn {
			t.Errorf("load = %+v, want a torn record mixed and replaced", loads)
		}
		if _, err := seeders.ParseRecord(readSector(t, stick)); err != nil {
			t.Errorf("the torn record was not replaced by a valid one: %v", err)
		}
	})

	t.Run("hostile layouts stay untouched, the gate still runs", func(t *testing.T) {
		mbrOnly := filepath.Join(t.TempDir(), "mbr.img")
		disk := make([]byte, 8<<20)
		disk[446+4] = 0x83 // one Linux partition from LBA 2048
		copy(disk[446+8:], []byte{0x00, 0x08, 0, 0, 0x00, 0x38, 0, 0})
		disk[510], disk[511] = 0x55, 0xaa
		copy(disk[seedOffset:], "GRUB core.img lives in the MBR gap")
		if err := os.WriteFile(mbrOnly, disk, 0o644); err != nil {
			t.Fatal(err)
		}
		iso := newStick(t)
		f, _ := os.OpenFile(iso, os.O_WRONLY, 0)
		f.WriteAt([]byte("CD001"), 32769)
		f.Close()
		legacy := newStick(t)
		random := make([]byte, 512)
		rand.Read(random)
		writeSector(t, legacy, random)
		before := []string{fileSum(t, mbrOnly), fileSum(t, iso), fileSum(t, legacy)}

		res := g.boot(t, vmtest.Config{Disks: []vmtest.Disk{{Path: mbrOnly}, {Path: iso}, {Path: legacy}}, Script: `
			write /tmp/a.conf "[Seed.Sector]\nEnable=yes\nDevice=/dev/vda\n"
			write /tmp/b.conf "[Seed.Sector]\nEnable=yes\nDevice=/dev/vdb\n"
			write /tmp/c.conf "[Seed.Sector]\nEnable=yes\nDevice=/dev/vdc\n"
			run /bin/entropy-gate seed load --config /tmp/a.conf
			run /bin/entropy-gate seed load --config /tmp/b.conf
			run /bin/entropy-gate seed load --config /tmp/c.conf
			write /tmp/g.conf "[Gate]\nMode=passive\nTimeout=1s\nOnTimeout=open\n"
			run /bin/entropy-gate run --config /tmp/g.conf
		`})
		for step, want := range map[int]string{4: "MBR", 5: "ISO", 6: "not ours"} {
			if code := exitCode(t, res, step); code != 0 {
				t.Errorf("seed load on a hostile disk: exit %d", code)
			}
			if !outputHas(res, step, "not used") || !strings.Contains(strings.Join(res.Output(step), "\n"), want) {
				t.Errorf("step %d said %q, want a refusal naming %s", step, res.Output(step), want)
			}
		}
		if code := exitCode(t, res, 8); code != 0 {
			t.Errorf("the gate did not run after refusals: exit %d", code)
		}
		after := []string{fileSum(t, mbrOnly), fileSum(t, iso), fileSum(t, legacy)}
		for i := range before {
			if before[i] != after[i] {
				t.Errorf("hostile disk %d changed", i)
			}
		}
	})

	t.Run("LegacySector=mix adopts Tails 6.4's random sector", func(t *testing.T) {
		stick := newStick(t)
		random := make([]byte, 512)
		rand.Read(random)
		writeSector(t, stick, random)
		res := g.boot(t, vmtest.Config{Disks: []vmtest.Disk{{Path: stick}}, Script: `
			write /tmp/s.conf ` + sectorConf(`Timeout=2s\nOnTimeout=open\n`, `LegacySector=mix\n`) + `
			run /bin/entropy-gate run --config /tmp/s.conf
			cat /run/entropy-gate/state.json
		`})
		loads := seedsOf(t, res, 3, seeders.ActionLoad)
		if len(loads) != 1 || loads[0].Content != seeders.ContentForeign || !loads[0].Mixed || loads[0].CreditedBits != 0 || !loads[0].Refreshed {
			t.Errorf("load = %+v, want the legacy sector mixed once and replaced", loads)
		}
		now := readSector(t, stick)
		if bytes.Equal(now, random) {
			t.Fatal("the legacy sector was not replaced")
		}
		if _, err := seeders.ParseRecord(now); err != nil {
			t.Errorf("not our record after adoption: %v", err)
		}
	})
}

// TestSeedsSurvivePowerCuts pulls the plug on the guest at random moments
// while it loads and saves sector seeds, again and again. Whatever the
// sector holds afterwards, the next boot either credits a record no boot
// credited before, or does not credit at all.
func TestSeedsSurvivePowerCuts(t *testing.T) {
	g := newGuest(t)
	stick := newStick(t)
	if out, err := exec.Command(g.gate, "seed", "init", "--device", stick).CombinedOutput(); err != nil {
		t.Fatalf("seed init: %v: %s", err, out)
	}
	// Saves are creditable once the guest's CRNG is initialized (the
	// credit step), so most cuts leave a creditable record behind.
	script := `
		write /tmp/s.conf "[Seed.Sector]\nEnable=yes\nDevice=/dev/vda\n"
		run /bin/entropy-gate seed load --config /tmp/s.conf
		credit 256
	` + strings.Repeat("run /bin/entropy-gate seed save --config /tmp/s.conf\n", 60)
	seed := uint64(time.Now().UnixNano())
	t.Logf("cut times drawn with seed %d", seed)
	rng := mathrand.New(mathrand.NewPCG(seed, 0))
	credited := map[string]int{}
	for boot := 1; boot <= 4; boot++ {
		before := readSector(t, stick)
		rec, parseErr := seeders.ParseRecord(before)
		// The cut comes a random time after the guest starts loading
		// the seed (step 2), so it lands in the load or the saves
		// however slow the machine is; the first boot's comes late
		// enough for its load to finish and credit.
		cut := 500*time.Millisecond + time.Duration(rng.Int64N(int64(2500*time.Millisecond)))
		if boot == 1 {
			cut += time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		res, _ := g.lab.Boot(ctx, vmtest.Config{
			Files:   map[string]string{"/bin/entropy-gate": g.gate},
			Disks:   []vmtest.Disk{{Path: stick}},
			Script:  script,
			Console: &cutAfter{marker: " 2 step ", delay: cut, cut: cancel},
		})
		cancel()
		didCredit := outputHas(res, 2, "credited 256 bits")
		saves := 0
		for _, e := range res.All("exit") {
			if e.Step > 3 {
				saves++
			}
		}
		t.Logf("boot %d: cut %v after the load began, %d saves; sector before: %v; credited: %v", boot, cut, saves, parseErr, didCredit)
		if !didCredit {
			continue
		}
		if parseErr != nil || !rec.Creditable {
			t.Errorf("boot %d credited a sector that was not a creditable record (%v)", boot, parseErr)
		}
		h := sum(before)
		if prev, again := credited[h]; again {
			t.Errorf("boot %d credited the record boot %d credited already", boot, prev)
		}
		credited[h] = boot
	}
	if len(credited) == 0 {
		t.Errorf("no boot credited anything: the cuts were too early to test crediting")
	}
}

// cutAfter watches the serial console and cuts the guest's power (cancels
// its boot) delay after marker first appears.
type cutAfter struct {
	marker string
	delay  time.Duration
	cut    context.CancelFunc
	seen   strings.Builder
	armed  bool
}

func (c *cutAfter) Write(p []byte) (int, error) {
	if !c.armed {
		c.seen.Write(p)
		if strings.Contains(c.seen.String(), c.marker) {
			c.armed = true
			time.AfterFunc(c.delay, c.cut)
		}
	}
	return len(p), nil
}
