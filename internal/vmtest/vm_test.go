// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

// TestEntropyStarvedGuest boots the default guest (qemu64 without RDRAND,
// trust_cpu=off) once and checks the entropy scenarios the gate relies on.
// The scenario ends with a failing step, so the same boot checks how Boot
// reports a guest failure.
func TestEntropyStarvedGuest(t *testing.T) {
	lab := New(t)
	ctx := t.Context()
	tool, err := lab.Build(ctx, "./internal/vmtest/guestinit")
	if err != nil {
		t.Fatal(err)
	}
	res, err := lab.Boot(ctx, Config{
		Files: map[string]string{"/bin/probe-tool": tool},
		Script: `
			probe                              # 1
			run /bin/probe-tool probe          # 2: a binary from Config.Files
			start poller /init waitready 10ms  # 3
			sleep 1s                           # 4
			probe                              # 5
			credit 256                         # 6
			probe                              # 7
			wait poller                        # 8
			run /bin/missing                   # 9: fails and ends the scenario
			probe                              # 10: never runs
		`,
	})
	if err == nil {
		t.Fatal("Boot succeeded although step 9 runs a missing binary")
	}
	if res == nil || !strings.Contains(err.Error(), "step 9") || !strings.Contains(err.Error(), "/bin/missing") {
		t.Fatalf("Boot error does not name the failing step: %v", err)
	}
	t.Logf("boot took %v wall\n%s", res.Wall, res.Timeline())

	t.Run("init reports the kernel uptime", func(t *testing.T) {
		start, err := res.InitStart()
		if err != nil {
			t.Fatal(err)
		}
		if start <= 0 || start > time.Minute {
			t.Errorf("kernel uptime at init = %v", start)
		}
		t.Logf("init started at %v guest uptime", start)
		if init, _ := res.First(protocol.KindInit); !strings.Contains(init.Get("cmdline"), "random.trust_cpu=off") {
			t.Errorf("cmdline = %q, want random.trust_cpu=off", init.Get("cmdline"))
		}
	})
	t.Run("not ready at init", func(t *testing.T) {
		wantProbe(t, res, 1, "false")
	})
	t.Run("extra binary runs", func(t *testing.T) {
		if code, err := res.ExitCode(2); err != nil || code != 0 {
			t.Fatalf("exit code = %d, %v; output %q", code, err, res.Output(2))
		}
		out := res.Output(2)
		if len(out) != 1 || !strings.Contains(out[0], "probe ready=false") {
			t.Errorf("output = %q, want one probe line", out)
		}
	})
	t.Run("idle guest stays not ready", func(t *testing.T) {
		wantProbe(t, res, 5, "false")
	})
	t.Run("credit 256 bits makes it ready", func(t *testing.T) {
		credit, ok := res.Find(6, protocol.KindCredit)
		if !ok || credit.Get("bits") != "256" || credit.Get("bytes") != "32" {
			t.Fatalf("credit event = %v, %v", credit, ok)
		}
		probe := wantProbe(t, res, 7, "true")
		if probe.Time < credit.Time {
			t.Errorf("probe at %v before credit at %v", probe.Time, credit.Time)
		}
	})
	t.Run("background job waits for readiness", func(t *testing.T) {
		if code, err := res.ExitCode(3); err != nil || code != 0 {
			t.Fatalf("poller exit code = %d, %v", code, err)
		}
		exit, _ := res.Find(3, protocol.KindExit)
		credit, _ := res.Find(6, protocol.KindCredit)
		// The kernel turns ready inside the ioctl: the poller may see it
		// before the credit event, which comes after the ioctl returns.
		started, err := credit.CreditStarted()
		if err != nil {
			t.Fatal(err)
		}
		if exit.Get("name") != "poller" || exit.Time < started {
			t.Errorf("poller exit %v, want after the credit began at %v", exit, started)
		}
		if out := res.Output(3); len(out) != 1 || !strings.Contains(out[0], " ready polls=") {
			t.Errorf("poller output = %q", out)
		}
	})
	t.Run("failing step ends the scenario", func(t *testing.T) {
		if e, ok := res.Find(9, protocol.KindError); !ok || !strings.Contains(e.Get("msg"), "/bin/missing") {
			t.Errorf("step 9 error event = %v, %v", e, ok)
		}
		if _, ok := res.Find(10, protocol.KindStep); ok {
			t.Error("step 10 ran after a failing step")
		}
		if _, ok := res.First(protocol.KindDone); ok {
			t.Error("done event after a failing step")
		}
	})
}

// TestVirtioDevices boots once with virtio-rng and three disks: a
// read-only one, a writable one and a Tails-like stick.
func TestVirtioDevices(t *testing.T) {
	lab := New(t)
	ctx := t.Context()
	dir := t.TempDir()
	const seedOffset = 34 * SectorSize

	readOnly := filepath.Join(dir, "ro.img")
	roSector := bytes.Repeat([]byte("read-only disk sector. "), 23)[:SectorSize]
	writeImage(t, readOnly, 1<<20, seedOffset, roSector)
	writable := filepath.Join(dir, "rw.img")
	writeImage(t, writable, 1<<20, seedOffset, nil)

	stick, err := NewStick(ctx, filepath.Join(dir, "stick.img"), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := stick.WriteFile(ctx, "/live/hello.txt", []byte("written by the host")); err != nil {
		t.Fatal(err)
	}

	res, err := lab.Boot(ctx, Config{
		VirtioRNG: true,
		Disks:     []Disk{{Path: readOnly, ReadOnly: true}, {Path: writable}, {Path: stick.Path}},
		Script: `
			waitready                                        # 1: no credit: only virtio-rng can do it
			cat /sys/class/misc/hw_random/rng_current         # 2
			cat /sys/block/vda/ro                            # 3
			hash /dev/vda 17408 512                          # 4
			-pwrite /dev/vda 17408 overwritten               # 5: may fail, and must
			pwrite /dev/vdb 17408 "written by the guest"     # 6
			cat /sys/class/block/vdc1/start                  # 7
			hash /dev/vdc 17408 512                          # 8
			mount /dev/vdc1 /run/live/medium vfat            # 9
			cat /run/live/medium/live/hello.txt              # 10
			write /run/live/medium/live/guest.txt "from the guest"  # 11
		`,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot took %v wall\n%s", res.Wall, res.Timeline())

	t.Run("virtio-rng makes it ready by itself", func(t *testing.T) {
		// The hwrng thread feeds the kernel shortly after its driver
		// loads; an idle guest without it is not ready for minutes.
		if _, ok := res.Find(1, protocol.KindReady); !ok {
			t.Errorf("never ready:\n%s", res.Timeline())
		}
		wantCat(t, res, 2, "virtio_rng.0")
	})
	t.Run("read-only disk", func(t *testing.T) {
		wantCat(t, res, 3, "1")
		wantHash(t, res, 4, roSector)
		if _, ok := res.Find(5, protocol.KindError); !ok {
			t.Error("writing to the read-only disk did not fail")
		}
		data, err := os.ReadFile(readOnly)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data[seedOffset:seedOffset+SectorSize], roSector) {
			t.Error("the read-only image changed")
		}
	})
	t.Run("writable disk", func(t *testing.T) {
		data, err := os.ReadFile(writable)
		if err != nil {
			t.Fatal(err)
		}
		want := "written by the guest"
		if got := string(data[seedOffset : seedOffset+len(want)]); got != want {
			t.Errorf("image at LBA 34 = %q, want %q", got, want)
		}
	})
	t.Run("stick", func(t *testing.T) {
		wantCat(t, res, 7, "2048")
		wantHash(t, res, 8, make([]byte, SectorSize))
		wantCat(t, res, 10, "written by the host")
		got, err := stick.ReadFile(ctx, "/live/guest.txt")
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "from the guest" {
			t.Errorf("file the guest wrote = %q", got)
		}
	})
}

// TestBootTimeout checks that a guest that does not power off in time
// ends in an error that quotes the console.
func TestBootTimeout(t *testing.T) {
	lab := New(t)
	res, err := lab.Boot(t.Context(), Config{Script: "sleep 10m", Timeout: 2 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Boot = %v, want a deadline error", err)
	}
	if res == nil || !strings.Contains(err.Error(), "console tail:") {
		t.Errorf("error does not quote the console: %v", err)
	}
}

func BenchmarkBoot(b *testing.B) {
	lab := New(b)
	var initStart time.Duration
	for i := 0; i < b.N; i++ {
		res, err := lab.Boot(context.Background(), Config{Script: "probe"})
		if err != nil {
			b.Fatal(err)
		}
		start, err := res.InitStart()
		if err != nil {
			b.Fatal(err)
		}
		initStart += start
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "wall-s/boot")
	b.ReportMetric(initStart.Seconds()/float64(b.N), "guest-init-s")
}

func BenchmarkPrepareCached(b *testing.B) {
	New(b) // the first preparation may download; this measures the cached one
	for i := 0; i < b.N; i++ {
		lab, err := Prepare(context.Background(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		lab.Close()
	}
}

// writeImage creates a raw image of size bytes with data at offset.
func writeImage(t *testing.T, path string, size int64, offset int, data []byte) {
	t.Helper()
	img := make([]byte, size)
	copy(img[offset:], data)
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantProbe(t *testing.T, res *Result, step int, ready string) Event {
	t.Helper()
	e, ok := res.Find(step, protocol.KindProbe)
	if !ok {
		t.Fatalf("step %d: no probe event", step)
	}
	if e.Get("ready") != ready {
		t.Errorf("step %d: ready = %s, want %s (entropy_avail %s)", step, e.Get("ready"), ready, e.Get("entropy_avail"))
	}
	return e
}

func wantCat(t *testing.T, res *Result, step int, text string) {
	t.Helper()
	if e, ok := res.Find(step, protocol.KindCat); !ok || e.Get("text") != text {
		t.Errorf("step %d: cat %s = %q, want %q", step, e.Get("path"), e.Get("text"), text)
	}
}

func wantHash(t *testing.T, res *Result, step int, data []byte) {
	t.Helper()
	sum := sha256.Sum256(data)
	if e, ok := res.Find(step, protocol.KindHash); !ok || e.Get("sha256") != hex.EncodeToString(sum[:]) {
		t.Errorf("step %d: guest read other bytes than the host wrote (event %v)", step, e)
	}
}
