// SPDX-License-Identifier: GPL-3.0-or-later

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

// guestSeedersTest boots the lab with internal/seeders' test binary as the
// guest's program, runs the one test named there with args, and fails
// unless it passed.
func guestSeedersTest(ctx context.Context, t *testing.T, lab *vmtest.Lab, bin, test, args string, disks ...vmtest.Disk) {
	t.Helper()
	res, err := lab.Boot(ctx, vmtest.Config{
		Files:  map[string]string{"/bin/seeders.test": bin},
		Disks:  disks,
		Script: fmt.Sprintf("run /bin/seeders.test -test.v -test.run ^%s$ %s", test, args),
	})
	if err != nil {
		t.Fatal(err)
	}
	transcript := strings.Join(res.Output(1), "\n")
	if code, err := res.ExitCode(1); err != nil || code != 0 || !strings.Contains(transcript, "--- PASS: "+test+" (") {
		t.Fatalf("%s failed in the guest (exit %d, %v):\n%s", test, code, err, transcript)
	}
}

// hostCommand runs a command on the host, as the image tools do.
func hostCommand(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// TestLabCopies boots the real kernel with virtio disks that have serial
// numbers, as USB sticks do, and runs internal/seeders' TestGuestCopies
// there: copies of a stick's seeds, on real block devices and a real vfat,
// are never credited.
func TestLabCopies(t *testing.T) {
	lab := vmtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := buildTestBinary(ctx, t, "./internal/seeders")
	var disks []vmtest.Disk
	for i, serial := range []string{"STICK-A", "STICK-B", "", "STICK-C"} {
		path := filepath.Join(dir, fmt.Sprintf("disk%d.img", i))
		if i == 1 || i == 2 {
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, vmtest.MinStickSize); err != nil {
				t.Fatal(err)
			}
		} else if _, err := vmtest.NewStick(ctx, path, vmtest.MinStickSize); err != nil {
			t.Fatal(err)
		}
		disks = append(disks, vmtest.Disk{Path: path, Serial: serial})
	}
	guestSeedersTest(ctx, t, lab, bin, "TestGuestCopies", "-copies-disks /dev/vda,/dev/vdb,/dev/vdc,/dev/vdd", disks...)
}

// TestLabInstallerStickFirstBoot follows an installer-made stick through
// Tails' first boot on the real kernel: the image written with the
// published disk GUID, `seed init` on the stick itself (sector and FAT
// seed); then, as Tails' init-premount does before our step, new random
// GUIDs, the backup header moved and a new FAT serial; then the load. The
// stick's seeds are credited. A byte copy taken before the first boot, put
// on a stick with another serial and first-booted the same way, is not
// (internal/seeders' TestGuestFirstBoot, in the guest).
func TestLabInstallerStickFirstBoot(t *testing.T) {
	lab := vmtest.New(t)
	testenv.NeedCommands(t, "sgdisk", "mlabel")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := buildTestBinary(ctx, t, "./internal/seeders")
	stick := filepath.Join(dir, "stick.img")
	if _, err := vmtest.NewStick(ctx, stick, vmtest.MinStickSize); err != nil {
		t.Fatal(err)
	}
	hostCommand(t, nil, "sgdisk", "-U", seeders.TailsImageDiskGUID.String(), stick)

	guestSeedersTest(ctx, t, lab, bin, "TestGuestFirstBoot", "-first-boot-step install", vmtest.Disk{Path: stick, Serial: "STICK-A"})

	copied := filepath.Join(dir, "copy.img")
	if err := copyStick(stick, copied); err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{stick, copied} {
		// Tails' first boot, before our init-bottom step.
		hostCommand(t, nil, "sgdisk", "--move-second-header", "--randomize-guids", img)
		hostCommand(t, []string{"MTOOLS_SKIP_CHECK=1"}, "mlabel", "-i", img+"@@1M", "-n", "::TAILS")
	}
	guestSeedersTest(ctx, t, lab, bin, "TestGuestFirstBoot", "-first-boot-step boot",
		vmtest.Disk{Path: stick, Serial: "STICK-A"}, vmtest.Disk{Path: copied, Serial: "STICK-B"})
}
