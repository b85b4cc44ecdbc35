// SPDX-License-Identifier: GPL-3.0-or-later

package integration

import (
	"bytes"
	"context"
	mathrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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

// checkStick fails the test unless the stick is whole: the FAT passes
// fsck.vfat -n but for the dirty bit (which it reports), the bootloader
// configurations are unchanged, the token files have their size and a
// token, and the GPT verifies.
func checkStick(t *testing.T, s *vmtest.Stick, boot int) (dirty bool) {
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
	out, err := exec.CommandContext(ctx, "fsck.vfat", "-n", part).CombinedOutput()
	if err != nil {
		if !onlyDirtyBit(string(out)) {
			t.Errorf("boot %d: fsck.vfat -n: %v\n%s", boot, err, out)
		}
		dirty = true
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
	if out, err := exec.CommandContext(ctx, "sgdisk", "-v", s.Path).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
		t.Errorf("boot %d: sgdisk -v: %v\n%s", boot, err, out)
	}
	return dirty
}

// onlyDirtyBit says whether fsck.vfat -n found nothing but the dirty bit
// (and with it, the boot sector's differing from its backup in that byte,
// 0x41): what a power cut leaves while the file system is mounted
// read-write, and the next read-write mount clears. Every other finding
// is damage.
func onlyDirtyBit(out string) bool {
	harmless := []string{"fsck.fat ", "There are differences between boot sector and its backup.",
		"This is mostly harmless.", "65:01/00", "Not automatically fixing this.", "Dirty bit is set.",
		"Automatically removing dirty bit.", "Leaving filesystem unchanged.", " files, "}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !slices.ContainsFunc(harmless, func(h string) bool { return strings.Contains(line, h) }) {
			return false
		}
	}
	return true
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

// Power cut at random moments while the command-line token is written, on
// a real vfat in the guest: after every cut the FAT is clean but for the
// dirty bit, the bootloader configurations are untouched and the token
// files whole, and the GPT verifies. A cut inside the read-write window
// leaves the FAT's dirty bit set, and no other damage: counted, not failed.
// An uncut boot says how many sectors writing the token costs.
func TestTokenSurvivesPowerCuts(t *testing.T) {
	g := newGuest(t)
	s := fatStick(t)
	// The CRNG is initialized before the load (as after a credited
	// sector seed), so the load writes the token. The token is written
	// once per boot: emptying the results file makes each load a new
	// boot's.
	script := `
		mount /dev/vda1 /run/live/medium vfat ro,fmask=0077,dmask=0077
		write /tmp/s.conf "[Seed.Cmdline]\nEnable=yes\n"
		credit 256
		cat /sys/block/vda/stat
		run /bin/entropy-gate seed load --config /tmp/s.conf
		cat /sys/block/vda/stat
	` + strings.Repeat("write /run/entropy-gate/seeds.json \"[]\"\nrun /bin/entropy-gate seed load --config /tmp/s.conf\n", 20)

	uncut := g.boot(t, vmtest.Config{Disks: []vmtest.Disk{{Path: s.Path}}, Script: script})
	if code, err := uncut.ExitCode(5); err != nil || code != 0 || !outputHas(uncut, 5, "replacement written and verified") {
		t.Fatalf("seed load: exit %d, %v\n%s", code, err, uncut.Timeline())
	}
	t.Logf("one boot's token (both files, the remount cycle included) wrote %d sectors of the stick", writtenSectors(t, uncut, 6)-writtenSectors(t, uncut, 4))
	checkStick(t, s, 0)

	seed := uint64(time.Now().UnixNano())
	t.Logf("cut times drawn with seed %d", seed)
	rng := mathrand.New(mathrand.NewPCG(seed, 0))
	dirty, cuts := 0, 0
	defer func() {
		t.Logf("%d of %d cuts left the FAT's dirty bit set (cut inside a read-write window)", dirty, cuts)
	}()
	for boot := 1; boot <= powerCuts && !t.Failed(); boot++ {
		cuts++
		cut := time.Duration(rng.Int64N(int64(time.Second)))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		res, _ := g.lab.Boot(ctx, vmtest.Config{
			Files:   map[string]string{"/bin/entropy-gate": g.gate},
			Disks:   []vmtest.Disk{{Path: s.Path}},
			Script:  script,
			Console: &cutAfter{marker: " 5 step ", delay: cut, cut: cancel},
		})
		cancel()
		loads := 0
		for _, e := range res.All("exit") {
			if e.Step >= 5 {
				loads++
			}
		}
		t.Logf("boot %d: cut %v after the first load began, %d loads done", boot, cut, loads)
		if checkStick(t, s, boot) {
			dirty++
		}
	}
}
