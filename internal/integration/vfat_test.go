// SPDX-License-Identifier: GPL-3.0-or-later

package integration

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

// labVfatTests must each pass in the guest; a skip there is a failure.
var labVfatTests = []string{
	"TestVfatFATBackend",
	"TestVfatStoreFailureLeavesReadOnly",
	"TestVfatReadOnlyDevice",
	"TestVfatCmdline",
	"TestVfatWritesThroughTheDevice",
	"TestVfatFindBootDisk",
}

// labFATDisks is how many fresh FAT disks the guest gets: one per
// freshFAT call of labVfatTests, one for the benchmark.
const labFATDisks = 7

// TestLabVfat runs internal/seeders' TestVfat tests and
// BenchmarkVfatFATStore in the QEMU lab, on Debian's kernel with virtio
// disks and vfat, which the host's kernel may lack. That package's test
// binary, built static, is the guest's program; the disks are formatted
// on the host, as the guest has no mkfs.vfat: /dev/vda is a Tails-like
// stick (GPT, FAT partition 1), /dev/vdb… are FAT file systems of 2 MiB.
func TestLabVfat(t *testing.T) {
	lab := vmtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()

	bin := buildTestBinary(ctx, t, "./internal/seeders")

	stick := filepath.Join(dir, "stick.img")
	if _, err := vmtest.NewStick(ctx, stick, vmtest.MinStickSize); err != nil {
		t.Fatal(err)
	}
	disks := []vmtest.Disk{{Path: stick}}
	var devices []string
	for i := range labFATDisks {
		img := filepath.Join(dir, fmt.Sprintf("fat%d.img", i))
		if out, err := exec.CommandContext(ctx, "mkfs.vfat", "-C", img, "2048").CombinedOutput(); err != nil {
			t.Fatalf("mkfs.vfat: %v: %s", err, out)
		}
		disks = append(disks, vmtest.Disk{Path: img})
		devices = append(devices, fmt.Sprintf("/dev/vd%c", 'b'+i))
	}

	res, err := lab.Boot(ctx, vmtest.Config{
		Files: map[string]string{"/bin/seeders.test": bin},
		Disks: disks,
		Script: fmt.Sprintf("run /bin/seeders.test -test.v -test.run ^TestVfat -test.bench ^BenchmarkVfat -test.benchtime 20x "+
			"-vfat-stick /dev/vda -vfat-disks %s", strings.Join(devices, ",")),
	})
	if err != nil {
		t.Fatal(err)
	}
	out := res.Output(1)
	transcript := strings.Join(out, "\n")
	if code, err := res.ExitCode(1); err != nil || code != 0 {
		t.Fatalf("the tests failed in the guest (exit %d, %v):\n%s", code, err, transcript)
	}
	for _, name := range labVfatTests {
		if !strings.Contains(transcript, "--- PASS: "+name+" (") {
			t.Errorf("%s did not pass in the guest", name)
		}
	}
	if strings.Contains(transcript, "--- SKIP") || strings.Contains(transcript, "--- FAIL") {
		t.Errorf("a test was skipped or failed in the guest")
	}
	bench := map[string]float64{}
	for _, line := range out {
		fields := strings.Fields(line)
		if len(fields) >= 6 && strings.HasPrefix(fields[0], "BenchmarkVfatFATStore/") && fields[5] == "ms/store" {
			name, _, _ := strings.Cut(strings.TrimPrefix(fields[0], "BenchmarkVfatFATStore/"), "-")
			bench[name], _ = strconv.ParseFloat(fields[4], 64)
			t.Logf("in the guest: %s", line)
		}
	}
	if bench["remount"] <= 0 || bench["device"] <= 0 {
		t.Errorf("no benchmark results from the guest: %v", bench)
	}
	if t.Failed() {
		t.Fatalf("guest transcript:\n%s", transcript)
	}
	t.Logf("a FAT seed refresh through the block device takes %.2f× the time of a store with a remount", bench["device"]/bench["remount"])
	for _, line := range out {
		if strings.Contains(line, "one token refresh wrote") {
			t.Logf("in the guest: %s", strings.TrimSpace(line))
		}
	}
}
