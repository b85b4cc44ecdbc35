// SPDX-License-Identifier: GPL-3.0-or-later

package integration

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

// creditBoots is how many boots measure the reaction to a credit: the
// kernel initializes once per boot, so each boot gives one sample.
const creditBoots = 5

// BenchmarkGuest boots the real kernel and reports the gate's figures in
// guest time: the active wait, the passive reaction to a credit (p50 over
// creditBoots boots), the passive wait without help (bounded by a
// timeout), peak RSS, and start-up cost (exec to the first progress
// line). Boots are expensive, so it runs once whatever b.N says.
func BenchmarkGuest(b *testing.B) {
	g := newBenchGuest(b)
	var reactions, startups []time.Duration
	var peakKB int64
	for i := 0; i < creditBoots; i++ {
		res := g.boot(b, vmtest.Config{Script: `
			write /tmp/p.conf "[Gate]\nMode=passive\nTimeout=2min\n"
			start gate /bin/entropy-gate run --config /tmp/p.conf
			sleep 1s
			credit 256
			wait gate
		`})
		credit, _ := res.Find(4, "credit")
		started, err := credit.CreditStarted()
		if err != nil {
			b.Fatal(err)
		}
		opened, ok := findLine(res, 2, "Open: CRNG initialized")
		if !ok {
			b.Fatalf("gate did not open:\n%s", res.Timeline())
		}
		reactions = append(reactions, opened.Time-started)
		startups = append(startups, startup(b, res, 2))
		peakKB = max(peakKB, maxRSS(b, res, 2))
	}

	res := g.boot(b, vmtest.Config{Script: `
		write /tmp/a.conf "[Gate]\nMode=active\nTimeout=1min\n"
		run /bin/entropy-gate run --config /tmp/a.conf
	`})
	active := waitOf(b, res, 2)
	startups = append(startups, startup(b, res, 2))

	res = g.boot(b, vmtest.Config{Script: `
		write /tmp/q.conf "[Gate]\nMode=passive\nTimeout=10s\nOnTimeout=open\n"
		run /bin/entropy-gate run --config /tmp/q.conf
	`})
	if _, ok := findLine(res, 2, "Open by timeout after 10"); !ok {
		b.Errorf("passive gate without help did not time out:\n%s", res.Timeline())
	}
	passive := waitOf(b, res, 2)

	slices.Sort(reactions)
	slices.Sort(startups)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(active), "active-wait-ms")
	b.ReportMetric(ms(passive), "passive-wait-ms(timeout)")
	b.ReportMetric(ms(reactions[len(reactions)/2]), "credit-reaction-p50-ms")
	b.ReportMetric(float64(peakKB)/1024, "peak-RSS-MiB")
	b.ReportMetric(ms(startups[len(startups)/2]), "startup-p50-ms")
}

// newBenchGuest is newGuest for a benchmark.
func newBenchGuest(b *testing.B) *guest {
	b.Helper()
	lab := vmtest.New(b)
	bin, err := lab.Build(b.Context(), "./cmd/entropy-gate")
	if err != nil {
		b.Fatal(err)
	}
	return &guest{lab: lab, gate: bin}
}

func findLine(res *vmtest.Result, step int, text string) (vmtest.Event, bool) {
	for _, e := range res.Events {
		if e.Step == step && strings.Contains(e.Get("line"), text) {
			return e, true
		}
	}
	return vmtest.Event{}, false
}

// startup is the time from a step's start (the exec) to the gate's first
// progress line.
func startup(b *testing.B, res *vmtest.Result, step int) time.Duration {
	begin, ok1 := res.Find(step, "step")
	first, ok2 := findLine(res, step, "Loading random seeds")
	if !ok1 || !ok2 {
		b.Fatalf("no start or first line for step %d:\n%s", step, res.Timeline())
	}
	return first.Time - begin.Time
}

func maxRSS(b *testing.B, res *vmtest.Result, step int) int64 {
	exit, _ := res.Find(step, "exit")
	kb, err := strconv.ParseInt(exit.Get("maxrss_kb"), 10, 64)
	if err != nil {
		b.Fatalf("exit event %v: %v", exit, err)
	}
	return kb
}

// waitOf is how long the gate of a step waited: from its first progress
// line to its last.
func waitOf(b *testing.B, res *vmtest.Result, step int) time.Duration {
	first, ok1 := findLine(res, step, "Loading random seeds")
	last, ok2 := findLine(res, step, "Open")
	if !ok1 || !ok2 {
		b.Fatalf("step %d did not open:\n%s", step, res.Timeline())
	}
	return last.Time - first.Time
}

// seedBenchBoots is how many boots measure the seed backends' cost.
const seedBenchBoots = 3

// BenchmarkGuestSeeds reports, in guest time, what loading (at boot) and
// saving (at shutdown) each seed backend costs on the real kernel with a
// virtio disk and a real vfat mount (median of seedBenchBoots boots), and
// how long a passive gate waits with a credited seed (without one, it
// waits for its timeout: BenchmarkGuest's passive-wait).
func BenchmarkGuestSeeds(b *testing.B) {
	g := newBenchGuest(b)
	cost := map[string][]time.Duration{}
	var seededWaits []time.Duration
	for i := 0; i < seedBenchBoots; i++ {
		stick := filepath.Join(b.TempDir(), "stick.img")
		s, err := vmtest.NewStick(b.Context(), stick, vmtest.MinStickSize)
		if err != nil {
			b.Fatal(err)
		}
		// The token file syslinux/live64.cfg includes (docs/seed-format.md).
		token := "linux /live/vmlinuz entropy_gate.seed=" + strings.Repeat("0", 32) + "\n"
		if err := s.WriteFile(b.Context(), "/syslinux/entropy-gate.cfg", []byte(token+strings.Repeat("#", 512-len(token)))); err != nil {
			b.Fatal(err)
		}
		if out, err := exec.Command(g.gate, "seed", "init", "--device", stick).CombinedOutput(); err != nil {
			b.Fatalf("seed init: %v: %s", err, out)
		}
		res := g.boot(b, vmtest.Config{Disks: []vmtest.Disk{{Path: stick}}, Script: `
			mount /dev/vda1 /run/live/medium vfat ro,fmask=0077,dmask=0077
			write /tmp/sector.conf "[Gate]\nMode=passive\nTimeout=1min\n[Seed.Sector]\nEnable=yes\nDevice=/dev/vda\n"
			write /tmp/fat.conf "[Seed.FAT]\nEnable=yes\n"
			write /tmp/cmdline.conf "[Seed.Cmdline]\nEnable=yes\nFiles=syslinux/entropy-gate.cfg\n"
			run /bin/entropy-gate run --config /tmp/sector.conf
			run /bin/entropy-gate seed load --config /tmp/fat.conf
			run /bin/entropy-gate seed load --config /tmp/cmdline.conf
			run /bin/entropy-gate seed save --config /tmp/sector.conf
			run /bin/entropy-gate seed save --config /tmp/fat.conf
			run /bin/entropy-gate seed save --config /tmp/cmdline.conf
			cat /run/entropy-gate/state.json
		`})
		for step, name := range map[int]string{6: "fat-load", 7: "cmdline-load", 8: "sector-save", 9: "fat-save", 10: "cmdline-save"} {
			if code, err := res.ExitCode(step); err != nil || code != 0 {
				b.Fatalf("%s: exit %d, %v\n%s", name, code, err, res.Timeline())
			}
			cost[name] = append(cost[name], stepTime(b, res, step))
		}
		// The sector's load happened inside the gate's run, as at boot.
		loaded, ok1 := findLine(res, 5, "seed load sector")
		seeding, ok2 := findLine(res, 5, "Loading random seeds")
		if !ok1 || !ok2 || !strings.Contains(loaded.Get("line"), "credited 256 bits") {
			b.Fatalf("the sector seed was not credited:\n%s", res.Timeline())
		}
		cost["sector-load"] = append(cost["sector-load"], loaded.Time-seeding.Time)
		seededWaits = append(seededWaits, time.Duration(stateAt(b, res, 11).WaitedMS)*time.Millisecond)
	}
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2]) / float64(time.Millisecond)
	}
	for _, name := range []string{"sector-load", "sector-save", "fat-load", "fat-save", "cmdline-load", "cmdline-save"} {
		b.ReportMetric(median(cost[name]), name+"-ms")
	}
	b.ReportMetric(median(seededWaits), "passive-wait-with-seed-ms")
}

// stepTime is how long a run step took, from its start to its exit.
func stepTime(b *testing.B, res *vmtest.Result, step int) time.Duration {
	begin, ok1 := res.Find(step, "step")
	end, ok2 := res.Find(step, "exit")
	if !ok1 || !ok2 {
		b.Fatalf("step %d did not run:\n%s", step, res.Timeline())
	}
	return end.Time - begin.Time
}
