// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

// systemdLab returns a lab with the Debian system prepared, or skips.
func systemdLab(b *testing.B) *Lab {
	b.Helper()
	lab := New(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := lab.PrepareSystemd(ctx); errors.Is(err, ErrUnavailable) {
		b.Skip(err)
	} else if err != nil {
		b.Fatal(err)
	}
	return lab
}

// BenchmarkSystemdInitrd measures what each systemd boot spends before
// QEMU starts: collecting the overlay (here the guest init and a 10 MB
// stand-in for the installed binaries) and writing the initrd.
func BenchmarkSystemdInitrd(b *testing.B) {
	lab := systemdLab(b)
	system, err := lab.system(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	tree := b.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "usr/sbin"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "usr/sbin/tool"), make([]byte, 10<<20), 0o755); err != nil {
		b.Fatal(err)
	}
	initrd := filepath.Join(b.TempDir(), "initrd")
	cfg := SystemdConfig{Trees: []string{tree}, Report: "probe"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		overlay, err := lab.systemOverlay(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := writeSystemInitrd(initrd, system.archivePath(), overlay); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if info, err := os.Stat(initrd); err == nil {
		b.ReportMetric(float64(info.Size())/(1<<20), "initrd-MB")
	}
	b.ReportMetric(float64(system.Size)/(1<<20), "system-MB")
}

// BenchmarkSystemdBoot boots the Debian system until its report runs:
// host wall time per boot, and the guest's uptime when the report started
// (the boot had finished).
func BenchmarkSystemdBoot(b *testing.B) {
	lab := systemdLab(b)
	var wall, uptime time.Duration
	for i := 0; i < b.N; i++ {
		res, err := lab.BootSystemd(context.Background(), SystemdConfig{Report: "probe"})
		if err != nil {
			b.Fatal(err)
		}
		start, _ := res.Report.First(protocol.KindInit)
		ns, err := strconv.ParseInt(start.Get("boottime"), 10, 64)
		if err != nil {
			b.Fatalf("report init event %v: %v", start, err)
		}
		wall += res.Wall
		uptime += time.Duration(ns)
	}
	b.ReportMetric(wall.Seconds()/float64(b.N), "wall-s/boot")
	b.ReportMetric(uptime.Seconds()/float64(b.N), "guest-s-to-report")
}
