// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

var firstBootStep = flag.String("first-boot-step", "", "for TestGuestFirstBoot in the QEMU lab: install (seed init on /dev/vda) or boot (load /dev/vda, the stick, and /dev/vdb, its copy)")

// TestLabInstallerStickFirstBoot follows an installer-made stick through
// Tails' first boot on the real kernel: the image written with the
// published disk GUID, `seed init` on the stick itself (sector and FAT
// seed); then, as Tails' init-premount does before our step, new random
// GUIDs, the backup header moved and a new FAT serial; then the load. The
// stick's seeds are credited. A byte copy taken before the first boot, put
// on a stick with another serial and first-booted the same way, is not.
func TestLabInstallerStickFirstBoot(t *testing.T) {
	lab := vmtest.New(t)
	needHostCommands(t, "sgdisk", "mlabel")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := buildGuestTests(ctx, t, dir)
	stick := filepath.Join(dir, "stick.img")
	if _, err := vmtest.NewStick(ctx, stick, vmtest.MinStickSize); err != nil {
		t.Fatal(err)
	}
	sgdisk(t, stick, "-U", TailsImageDiskGUID.String())

	guest := func(step string, disks ...vmtest.Disk) {
		t.Helper()
		res, err := lab.Boot(ctx, vmtest.Config{
			Files:  map[string]string{"/bin/seeders.test": bin},
			Disks:  disks,
			Script: "run /bin/seeders.test -test.v -test.run ^TestGuestFirstBoot$ -first-boot-step " + step,
		})
		if err != nil {
			t.Fatal(err)
		}
		transcript := strings.Join(res.Output(1), "\n")
		if code, err := res.ExitCode(1); err != nil || code != 0 || !strings.Contains(transcript, "--- PASS: TestGuestFirstBoot (") {
			t.Fatalf("TestGuestFirstBoot %s failed in the guest (exit %d, %v):\n%s", step, code, err, transcript)
		}
	}
	guest("install", vmtest.Disk{Path: stick, Serial: "STICK-A"})

	copied := filepath.Join(dir, "copy.img")
	copyImage(t, stick, copied)
	for _, img := range []string{stick, copied} {
		// Tails' first boot, before our init-bottom step.
		sgdisk(t, img, "--move-second-header", "--randomize-guids")
		label := exec.Command("mlabel", "-i", img+"@@1M", "-n", "::TAILS")
		label.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := label.CombinedOutput(); err != nil {
			t.Fatalf("mlabel: %v: %s", err, out)
		}
	}
	guest("boot", vmtest.Disk{Path: stick, Serial: "STICK-A"}, vmtest.Disk{Path: copied, Serial: "STICK-B"})
}

func needHostCommands(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s not installed: apt-get install gdisk mtools", c)
		}
	}
}

// TestGuestFirstBoot runs in TestLabInstallerStickFirstBoot's guest.
func TestGuestFirstBoot(t *testing.T) {
	ready := &FakeKernel{Initialized: true}
	seeders := func(disk string, medium string, k *FakeKernel) []Seeder {
		return []Seeder{
			{Backend: SectorBackend{Path: disk}, Kernel: k},
			{Backend: FATBackend{Medium: medium}, Kernel: k},
		}
	}
	switch *firstBootStep {
	case "":
		t.Skip("runs in the QEMU lab's guest: go test -run TestLabInstallerStickFirstBoot")
	case "install":
		medium := mountFS(t, "/dev/vda1", "vfat", "fmask=0077,dmask=0077")
		if err := os.MkdirAll(filepath.Join(medium, "live"), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, s := range seeders("/dev/vda", medium, ready) {
			if res := s.Refresh(); !res.StoredCreditable {
				t.Fatalf("seed init, %s: %s", res.Backend, res.Reason)
			}
			loaded, err := s.Backend.Load()
			loaded.Release()
			if err != nil || !loaded.Record.Binding.FirstBoot || loaded.NoCredit == "" {
				t.Fatalf("%s on the published image GUID: %v (no credit: %q), %v; want a first-boot record, not creditable yet", s.Backend.Name(), loaded.Record, loaded.NoCredit, err)
			}
		}
	case "boot":
		for _, disk := range []string{"/dev/vda", "/dev/vdb"} {
			medium := mountFS(t, disk+"1", "vfat", "fmask=0077,dmask=0077")
			for _, s := range seeders(disk, medium, &FakeKernel{}) {
				res := s.Seed()
				switch {
				case disk == "/dev/vda" && res.CreditedBits != 8*SeedSize:
					t.Errorf("the installer-made stick's first boot, %s: %s; want credited", res.Backend, res.Reason)
				case disk == "/dev/vdb" && (res.CreditedBits != 0 || !res.Mixed):
					t.Errorf("a copy taken before the first boot, on another stick, %s: %s; want mixed only", res.Backend, res.Reason)
				}
			}
		}
	}
}
