// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// sgdisk runs the real sgdisk on an image file, as Tails' first boot and
// the reproductions of issue 13 do.
func sgdisk(t *testing.T, path string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("sgdisk"); err != nil {
		t.Skip("sgdisk not installed: apt-get install gdisk")
	}
	if out, err := exec.Command("sgdisk", append(args, path)...).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk %v: %v\n%s", args, err, out)
	}
}

// sgdiskStick makes a Tails-like image with the real sgdisk: partition 1 at
// LBA 2048, an ESP; extra arguments (a disk GUID) go to the same call.
func sgdiskStick(t *testing.T, dir string, size int64, args ...string) string {
	t.Helper()
	path := filepath.Join(dir, "stick.img")
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	sgdisk(t, path, append([]string{"-o", "-n", "1:2048:+3M", "-t", "1:ef00"}, args...)...)
	return path
}

func copyImage(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// seedInit writes a first, creditable seed, as `seed init` does.
func seedInit(t *testing.T, path string) {
	t.Helper()
	res := Seeder{Backend: SectorBackend{Path: path}, Kernel: &FakeKernel{Initialized: true}}.Refresh()
	if !res.Refreshed || !res.StoredCreditable {
		t.Fatalf("seed init on %s: %s", path, res.Reason)
	}
}

// bootLoad runs the boot-time load and reports how many bits it credited.
func bootLoad(t *testing.T, path string) Result {
	t.Helper()
	res := Seeder{Backend: SectorBackend{Path: path}, Kernel: &FakeKernel{}}.Seed()
	if !res.Loaded || res.Content != ContentRecord {
		t.Fatalf("seed load on %s: %s", path, res.Reason)
	}
	return res
}

// Issue 13, finding 1: `seed init` on a stick, copy the image, give the copy
// new GUIDs (sgdisk -G), and `seed load` on both: only one may credit the
// seed, whichever boots first.
func TestCopyWithNewGUIDsIsNotCredited(t *testing.T) {
	for _, copyFirst := range []bool{false, true} {
		name := "original boots first"
		if copyFirst {
			name = "copy boots first"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			original := sgdiskStick(t, dir, 8<<20)
			seedInit(t, original)
			copied := filepath.Join(dir, "copy.img")
			copyImage(t, original, copied)
			sgdisk(t, copied, "-G")

			var fromCopy, fromOriginal Result
			if copyFirst {
				fromCopy, fromOriginal = bootLoad(t, copied), bootLoad(t, original)
			} else {
				fromOriginal, fromCopy = bootLoad(t, original), bootLoad(t, copied)
			}
			if fromOriginal.CreditedBits != 8*SeedSize {
				t.Errorf("original: %s; want its seed credited", fromOriginal.Reason)
			}
			if fromCopy.CreditedBits != 0 || !fromCopy.Mixed || !fromCopy.Refreshed {
				t.Errorf("copy: %s; want its seed mixed, not credited, and replaced", fromCopy.Reason)
			}
			// The copy's replacement is bound to the copy: its next boot
			// credits it (once the CRNG was ready when it was made).
			seedInit(t, copied)
			if again := bootLoad(t, copied); again.CreditedBits != 8*SeedSize {
				t.Errorf("copy after its own seed was written: %s; want it credited", again.Reason)
			}
		})
	}
}

// A byte-exact copy onto a disk of another size (dd onto a bigger stick
// leaves the backup GPT where it was) is caught by the size.
func TestByteCopyOntoAnotherSizeIsNotCredited(t *testing.T) {
	dir := t.TempDir()
	original := sgdiskStick(t, dir, 8<<20)
	seedInit(t, original)
	bigger := filepath.Join(dir, "bigger.img")
	copyImage(t, original, bigger)
	if err := os.Truncate(bigger, 16<<20); err != nil {
		t.Fatal(err)
	}
	if res := bootLoad(t, bigger); res.CreditedBits != 0 || !res.Mixed {
		t.Fatalf("copy onto a bigger disk: %s; want mixed only", res.Reason)
	}
	if res := bootLoad(t, original); res.CreditedBits != 8*SeedSize {
		t.Fatalf("original: %s; want credited", res.Reason)
	}
}

// An installer-made stick: the image written with the published disk GUID,
// `seed init` on the stick itself. Booting it before Tails' first-boot
// repartitioning (or any copy of it as it is) never credits; once the
// first boot has given the disk GUIDs of its own, the seed is credited
// once, and its replacement is bound to the new GUIDs.
func TestInstallerMadeStickFirstBoot(t *testing.T) {
	dir := t.TempDir()
	stick := sgdiskStick(t, dir, 8<<20, "-U", TailsImageDiskGUID.String())
	seedInit(t, stick)
	b := SectorBackend{Path: stick}
	loaded, err := b.Load()
	if err != nil || !loaded.Record.Binding.FirstBoot || loaded.NoCredit == "" {
		t.Fatalf("Load on the installer-made stick = %v (no credit: %q), %v; want a first-boot record, not creditable yet", loaded.Record, loaded.NoCredit, err)
	}

	// A copy taken now and booted as it is (no repartitioning) never
	// credits: every copy of the image would.
	asIs := filepath.Join(dir, "as-is.img")
	copyImage(t, stick, asIs)
	if res := bootLoad(t, asIs); res.CreditedBits != 0 {
		t.Fatalf("copy with the published GUID: %s; want no credit", res.Reason)
	}

	// Tails' first boot, before our step: new GUIDs, backup header moved.
	sgdisk(t, stick, "--move-second-header", "--randomize-guids")
	if res := bootLoad(t, stick); res.CreditedBits != 8*SeedSize {
		t.Fatalf("first boot: %s; want the installer's seed credited", res.Reason)
	}
	loaded, err = b.Load()
	if err != nil || loaded.Record.Binding.FirstBoot || loaded.Record.Binding.DiskGUID == TailsImageDiskGUID {
		t.Fatalf("after the first boot the record is %v, %v; want it bound to the new disk GUID", loaded.Record, err)
	}

	// A copy of the first-booted stick given new GUIDs is caught, once
	// the gate's refresh has left a creditable seed on it.
	seedInit(t, stick)
	copied := filepath.Join(dir, "copy.img")
	copyImage(t, stick, copied)
	sgdisk(t, copied, "-G")
	if res := bootLoad(t, copied); res.CreditedBits != 0 {
		t.Fatalf("copy of the first-booted stick with new GUIDs: %s; want no credit", res.Reason)
	}
}

// TestWhyNotBound is the crediting rule for every kind of copy, with the
// serial numbers image files cannot have.
func TestWhyNotBound(t *testing.T) {
	stick := testBinding() // after its first boot
	firstBoot := Binding{DiskGUID: TailsImageDiskGUID, PartitionGUID: stick.PartitionGUID, DiskSize: stick.DiskSize, Serial: stick.Serial, FirstBoot: true}
	noSerial := firstBoot
	noSerial.Serial = [32]byte{}
	other := func(f func(b *Binding)) Binding {
		b := stick
		f(&b)
		return b
	}
	configured := mustParseGUID("11111111-2222-3333-4444-555555555555")
	tests := []struct {
		name       string
		written    Binding
		here       Binding
		images     []GUID
		wantCredit bool
	}{
		{name: "same stick", written: stick, here: stick, wantCredit: true},
		{name: "new disk GUID (sgdisk -G)", written: stick, here: other(func(b *Binding) { b.DiskGUID[0]++ })},
		{name: "new partition GUID", written: stick, here: other(func(b *Binding) { b.PartitionGUID[0]++ })},
		{name: "byte copy onto a stick with another serial", written: stick, here: other(func(b *Binding) { b.Serial = SerialDigest("OTHER") })},
		{name: "byte copy onto a device without a serial", written: stick, here: other(func(b *Binding) { b.Serial = [32]byte{} })},
		{name: "byte copy onto a bigger stick", written: stick, here: other(func(b *Binding) { b.DiskSize *= 2 })},
		{name: "file copied to another inode", written: Binding{FileSystem: 7, Inode: 12}, here: Binding{FileSystem: 7, Inode: 13}},
		{name: "file on a restored file system", written: Binding{FileSystem: 7, Inode: 12}, here: Binding{FileSystem: 8, Inode: 12}},
		{name: "same file", written: Binding{FileSystem: 7, Inode: 12}, here: Binding{FileSystem: 7, Inode: 12}, wantCredit: true},
		{name: "installer-made stick before its first boot", written: firstBoot, here: other(func(b *Binding) { b.DiskGUID = TailsImageDiskGUID })},
		{name: "installer-made stick at its first boot", written: firstBoot, here: stick, wantCredit: true},
		{name: "copy before first boot, onto another serial, first-booted", written: firstBoot, here: other(func(b *Binding) { b.Serial = SerialDigest("OTHER") })},
		{name: "copy before first boot, onto a device without serial", written: firstBoot, here: other(func(b *Binding) { b.Serial = [32]byte{} })},
		{name: "copy before first boot, onto another size", written: firstBoot, here: other(func(b *Binding) { b.DiskSize++ })},
		{name: "stick without serial at its first boot", written: noSerial, here: other(func(b *Binding) { b.Serial = [32]byte{} }), wantCredit: true},
		{name: "configured image GUID", written: stick, here: other(func(b *Binding) { b.DiskGUID = configured }), images: []GUID{configured}},
		{name: "record bound to nothing", written: Binding{}, here: stick},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := whyNotBound(boundRecord(1, 1, true, tt.written), tt.here, tt.images)
			if (why == "") != tt.wantCredit {
				t.Fatalf("whyNotBound = %q, want credit %t", why, tt.wantCredit)
			}
		})
	}
}

// bind marks a record written on a published image's disk as a first-boot
// record, and no other.
func TestBindMarksFirstBoot(t *testing.T) {
	if b := bind(Binding{DiskGUID: TailsImageDiskGUID}, nil); !b.FirstBoot {
		t.Fatal("a record written on the Tails image GUID is not a first-boot record")
	}
	if b := bind(testBinding(), nil); b.FirstBoot {
		t.Fatal("a record written on a stick's own GUID is a first-boot record")
	}
}
