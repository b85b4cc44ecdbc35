// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var firstBootStep = flag.String("first-boot-step", "", "for TestGuestFirstBoot in the QEMU lab: install (seed init on /dev/vda) or boot (load /dev/vda, the stick, and /dev/vdb, its copy)")

// TestGuestFirstBoot runs in the guest of internal/integration's
// TestLabInstallerStickFirstBoot.
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
		t.Skip("runs in the QEMU lab's guest: go test -run TestLabInstallerStickFirstBoot ./internal/integration")
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
