// SPDX-License-Identifier: GPL-3.0-or-later

package integration

import (
	"bytes"
	"context"
	mathrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

// powerCuts is how many boots TestFATSurvivesPowerCuts cuts.
const powerCuts = 30

// A stick as the image build would make it: bootloader configurations that
// include the token files (docs/seed-format.md), and the token files.
func fatStick(t *testing.T) *vmtest.Stick {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := vmtest.NewStick(ctx, filepath.Join(t.TempDir(), "stick.img"), vmtest.MinStickSize)
	if err != nil {
		t.Fatal(err)
	}
	noToken := strings.Repeat("0", 32)
	syslinuxToken := "linux /live/vmlinuz entropy_gate.seed=" + noToken + "\n"
	grubEnv := "# GRUB Environment Block\nentropy_gate_seed=" + noToken + "\n"
	for name, data := range map[string]string{
		"/syslinux/live64.cfg":         string(readTestdata(t, "live64.cfg")),
		"/EFI/debian/grub.cfg":         string(readTestdata(t, "grub.cfg")),
		"/syslinux/entropy-gate.cfg":   syslinuxToken + strings.Repeat("#", 512-len(syslinuxToken)),
		"/EFI/debian/entropy-gate.env": grubEnv + strings.Repeat("#", 1024-len(grubEnv)),
		"/live/vmlinuz":                "a kernel",
	} {
		if err := s.WriteFile(ctx, name, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "seeders", "testdata", "bootloader", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkStick fails the test unless the stick is whole: fsck.vfat -n finds
// nothing at all (not even the dirty bit: no write may leave the FAT
// mounted read-write), the bootloader configurations are unchanged, the
// token files have their size and a token, the seed file its size, and
// the GPT verifies.
func checkStick(t *testing.T, s *vmtest.Stick, boot int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	img, err := os.ReadFile(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(t.TempDir(), "fat.img")
	if err := os.WriteFile(part, img[vmtest.StickPartitionLBA*512:], 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, "fsck.vfat", "-n", part).CombinedOutput(); err != nil {
		t.Errorf("boot %d: fsck.vfat -n: %v\n%s", boot, err, out)
	}
	for _, name := range []string{"live64.cfg", "grub.cfg"} {
		dir := map[string]string{"live64.cfg": "/syslinux/", "grub.cfg": "/EFI/debian/"}[name]
		got, err := s.ReadFile(ctx, dir+name)
		if err != nil || !bytes.Equal(got, readTestdata(t, name)) {
			t.Errorf("boot %d: %s%s changed or unreadable (%v)", boot, dir, name, err)
		}
	}
	for name, size := range map[string]int{"/syslinux/entropy-gate.cfg": 512, "/EFI/debian/entropy-gate.env": 1024} {
		got, err := s.ReadFile(ctx, name)
		if err != nil || len(got) != size || !bytes.Contains(got, []byte("seed=")) {
			t.Errorf("boot %d: token file %s: %d bytes, %v; want %d with a token", boot, name, len(got), err, size)
		}
	}
	if got, err := s.ReadFile(ctx, "/live/entropy-gate.seed"); err != nil || len(got) != seeders.RecordSize {
		t.Errorf("boot %d: seed file: %d bytes, %v; want %d", boot, len(got), err, seeders.RecordSize)
	}
	if out, err := exec.CommandContext(ctx, "sgdisk", "-v", s.Path).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
		t.Errorf("boot %d: sgdisk -v: %v\n%s", boot, err, out)
	}
}

// writtenSectors reads field 7 (sectors written) of a `cat
// /sys/block/vda/stat` step.
func writtenSectors(t *testing.T, res *vmtest.Result, step int) int64 {
	t.Helper()
	e, ok := res.Find(step, "cat")
	fields := strings.Fields(e.Get("text"))
	if !ok || len(fields) < 7 {
		t.Fatalf("step %d: no block device statistics:\n%s", step, res.Timeline())
	}
	n, err := strconv.ParseInt(fields[6], 10, 64)
	if err != nil {
		t.Fatalf("step %d: %v", step, err)
	}
	return n
}

// Power cut at random moments while the FAT seed file and the
// command-line token are loaded and saved, boot after boot, on a real vfat
// in the guest: after every cut fsck.vfat finds nothing (the files are
// rewritten through the block device, so the FAT is never mounted
// read-write and its dirty bit never set), the bootloader configurations
// are untouched, the token and seed files whole, and the GPT verifies.
// An uncut boot says how many sectors a boot's seed and token writes cost.
func TestFATSurvivesPowerCuts(t *testing.T) {
	g := newGuest(t)
	s := fatStick(t)
	// The CRNG is initialized before the load (as after a credited
	// sector seed), so the load writes the token. The token is written
	// once per boot: emptying the results file makes each load a new
	// boot's. The first load creates the seed file (the one remount);
	// every later write is in place.
	loadAndSave := "write /run/entropy-gate/seeds.json \"[]\"\n" +
		"run /bin/entropy-gate seed load --config /tmp/s.conf\n" +
		"run /bin/entropy-gate seed save --config /tmp/s.conf\n"
	script := `
		mount /dev/vda1 /run/live/medium vfat ro,fmask=0077,dmask=0077
		write /tmp/s.conf "[Seed.FAT]\nEnable=yes\n[Seed.Cmdline]\nEnable=yes\n"
		credit 256
		run /bin/entropy-gate seed load --config /tmp/s.conf
		cat /sys/block/vda/stat
	` + loadAndSave + "cat /sys/block/vda/stat\n" + strings.Repeat(loadAndSave, 15)

	uncut := g.boot(t, vmtest.Config{Disks: []vmtest.Disk{{Path: s.Path}}, Script: script})
	for step, want := range map[int]string{4: "replacement written and verified", 7: "credited 256 bits", 8: "new seed creditable true"} {
		if code, err := uncut.ExitCode(step); err != nil || code != 0 || !outputHas(uncut, step, want) {
			t.Fatalf("step %d: exit %d, %v, want %q\n%s", step, code, err, want, uncut.Timeline())
		}
	}
	t.Logf("one boot's seed load and save and token (no remount) wrote %d sectors of the stick", writtenSectors(t, uncut, 9)-writtenSectors(t, uncut, 5))
	checkStick(t, s, 0)

	seed := uint64(time.Now().UnixNano())
	t.Logf("cut times drawn with seed %d", seed)
	rng := mathrand.New(mathrand.NewPCG(seed, 0))
	for boot := 1; boot <= powerCuts && !t.Failed(); boot++ {
		cut := time.Duration(rng.Int64N(int64(time.Second)))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		res, err := g.lab.Boot(ctx, vmtest.Config{
			Files:   map[string]string{"/bin/entropy-gate": g.gate},
			Disks:   []vmtest.Disk{{Path: s.Path}},
			Script:  script,
			Console: &cutAfter{marker: " 4 step ", delay: cut, cut: cancel},
		})
		cancel()
		if res == nil {
			t.Fatalf("boot %d: %v", boot, err)
		}
		runs := 0
		for _, e := range res.All("exit") {
			if e.Step >= 4 {
				runs++
			}
		}
		t.Logf("boot %d: cut %v after the first load began, %d loads and saves done", boot, cut, runs)
		checkStick(t, s, boot)
	}
}
