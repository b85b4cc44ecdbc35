// SPDX-License-Identifier: GPL-3.0-or-later

// Command demo boots Debian's real kernel under QEMU with entropy-gate
// inside and prints, for people, how each boot waits for the kernel's
// random number generator: without any help, and with a hardware RNG;
// then it boots a Tails-shaped live system from a USB stick prepared
// by the installer.
// It is `make demo`, the project's first command, which installs the
// Debian packages it needs first (`make deps`, as root); the demo caches
// the kernel and the live system.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/history"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

func main() {
	log.SetFlags(0)
	if err := run(os.Args[1:], os.Stdout); err != nil {
		log.Fatalf("demo: %v", err)
	}
}

// scenario is one boot of the demo.
type scenario struct {
	title     string
	virtioRNG bool
	// stick is the USB stick attached: "" none, "new" a fresh one,
	// "same" the previous boot's, "seeded" a fresh one prepared with
	// `entropy-gate seed init` as an installer would.
	stick string
}

var scenarios = []scenario{
	{title: "A new USB stick, no seed yet: the gate waits actively while the kernel gathers CPU jitter entropy,\n             then saves a seed that the next boot may credit", stick: "new"},
	{title: "The same stick, second boot: its seed is credited, the kernel is ready at once", stick: "same"},
	{title: "A new stick prepared by the installer with `entropy-gate seed init`: ready at its first boot", stick: "seeded"},
	{title: "No stick, a hardware RNG (virtio-rng): the kernel is ready before the gate starts", virtioRNG: true},
}

// script runs the gate service as a boot would, with the configuration
// conf (a quoted string), then shows its record.
func script(conf string) string {
	return `
		probe
		write /tmp/entropy-gate.conf ` + conf + `
		run /bin/entropy-gate run --config /tmp/entropy-gate.conf
		cat /var/lib/entropy-gate/history.jsonl
	`
}

// Configurations: a stick's sector seed, or no seed.
const (
	stickConf  = `"[Seed.Sector]\nEnable=yes\nDevice=/dev/vda\n"`
	noSeedConf = `""`
)

// the script's steps
const (
	stepProbe   = 1
	stepGate    = 3
	stepHistory = 4
)

// readyByText explains history's ReadyBy names.
var readyByText = map[string]string{
	history.BySeed:    "a seed from the boot medium",
	history.ByHWRNG:   "the hardware RNG",
	history.ByCPU:     "the CPU's RNG",
	history.ByJitter:  "the kernel's own jitter entropy, started by the active wait",
	history.ByEntropy: "entropy from interrupts and devices",
	history.ByAlready: "something before the gate (bootloader seed, hardware or CPU RNG)",
	history.ByTimeout: "nothing: the timeout expired",
}

func run(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("no arguments expected, got %q", args)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	lab, err := vmtest.Prepare(ctx, vmtest.Options{Logf: log.Printf})
	if err != nil {
		return err
	}
	defer lab.Close()
	gate, err := lab.Build(ctx, "./cmd/entropy-gate")
	if err != nil {
		return err
	}
	k := lab.Kernel()
	fmt.Fprintf(stdout, "entropy-gate on Debian's kernel %s (%s) under QEMU: no RDRAND, random.trust_cpu=off, random.trust_bootloader=off\n", k.Release, k.Version)

	dir, err := os.MkdirTemp("", "entropy-gate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var stick string
	var waits []string
	for i, sc := range scenarios {
		cfg := vmtest.Config{Files: map[string]string{"/bin/entropy-gate": gate}, VirtioRNG: sc.virtioRNG, Script: script(noSeedConf)}
		switch sc.stick {
		case "new", "seeded":
			stick = filepath.Join(dir, fmt.Sprintf("stick-%d.img", i+1))
			if _, err := vmtest.NewStick(ctx, stick, vmtest.MinStickSize); err != nil {
				return err
			}
			if sc.stick == "seeded" {
				if out, err := exec.CommandContext(ctx, gate, "seed", "init", "--device", stick).CombinedOutput(); err != nil {
					return fmt.Errorf("seed init: %w: %s", err, out)
				}
			}
		}
		if sc.stick != "" {
			cfg.Disks, cfg.Script = []vmtest.Disk{{Path: stick}}, script(stickConf)
		}
		res, err := lab.Boot(ctx, cfg)
		if err != nil {
			return fmt.Errorf("boot %d: %w", i+1, err)
		}
		fmt.Fprintf(stdout, "\nBoot %d — %s\n", i+1, sc.title)
		r, err := printTimeline(stdout, res)
		if err != nil {
			return fmt.Errorf("boot %d: %w", i+1, err)
		}
		waits = append(waits, fmt.Sprintf("boot %d: %d ms (%s)", i+1, r.WaitedMS, r.ReadyBy))
	}
	fmt.Fprintf(stdout, "\nWaited: %s.\n", strings.Join(waits, "; "))
	return bootLive(ctx, lab, dir, stdout)
}

// liveTimeline are the journal entries boot 5 shows, by sender and text.
var liveTimeline = []struct{ ident, text, label string }{
	{"tails-first-boot", "done", "Tails' first-boot repartitioning of the stick done"},
	{"kernel", "squashfs: version", "live-boot mounted the stick's live/filesystem.squashfs"},
	{"entropy-gate", "seed load", ""},
	{"kernel", "random: crng init done", "kernel: crng init done"},
	{"systemd", "running in system mode", "systemd started"},
	{"entropy-gate", "Open:", ""},
	{"systemd", "Starting tor@default.service", "Tor starting"},
	{"systemd", "Started tor@default.service", "Tor started"},
}

// bootLive is boot 5: the live system (built once, cached) from a stick
// written with the published image and prepared by the installer with
// `entropy-gate seed init`, booted as Tails boots.
func bootLive(ctx context.Context, lab *vmtest.Lab, dir string, stdout io.Writer) error {
	tree := filepath.Join(dir, "tree")
	if err := vmtest.MakeInstall(ctx, tree, filepath.Join(dir, "build")); err != nil {
		return err
	}
	live, err := lab.PrepareLive(ctx, vmtest.LiveRecipe{Tree: tree})
	if err != nil {
		return err
	}
	stick := vmtest.Disk{Path: filepath.Join(dir, "live-stick.img"), USBSerial: "4C530001230517104394"}
	if _, err := live.NewStick(ctx, stick.Path, 1<<30); err != nil {
		return err
	}
	if err := lab.InstallerSeedInit(ctx, live, stick, filepath.Join(tree, "usr/sbin/entropy-gate")); err != nil {
		return err
	}
	const stepJournal = 1
	res, err := lab.BootLive(ctx, live, vmtest.LiveConfig{SystemdConfig: vmtest.SystemdConfig{
		Config: vmtest.Config{Disks: []vmtest.Disk{stick}},
		Report: "run /usr/bin/journalctl --boot --output=short-monotonic --no-pager\n",
	}})
	if err != nil {
		return fmt.Errorf("boot 5: %w", err)
	}
	fmt.Fprintf(stdout, "\nBoot 5 — the Tails-shaped live system: live-boot, initramfs-tools with our hook, the stick as USB storage,\n"+
		"             written with the published image and prepared by the installer with `entropy-gate seed init`\n")
	journal := vmtest.ParseJournal(res.Report.Output(stepJournal))
	type entry struct {
		at    time.Duration
		label string
	}
	var entries []entry
	for _, want := range liveTimeline {
		e, ok := vmtest.FindJournal(journal, want.ident, want.text)
		if !ok {
			return fmt.Errorf("boot 5: no journal entry of %s with %q", want.ident, want.text)
		}
		label := want.label
		if label == "" {
			label = "entropy-gate: " + e.Message
		}
		entries = append(entries, entry{e.Time, label})
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return cmp.Compare(a.at, b.at) })
	for _, e := range entries {
		line(stdout, e.at, e.label)
	}
	return nil
}

func line(w io.Writer, at time.Duration, text string) {
	fmt.Fprintf(w, "  %8.3f s  %s\n", at.Seconds(), text)
}

// printTimeline tells one boot's story from its events and returns the
// gate's record of it.
func printTimeline(w io.Writer, res *vmtest.Result) (history.Record, error) {
	line(w, 0, "kernel started")
	if init, ok := res.First("init"); ok {
		line(w, init.Time, "init started")
	}
	if p, ok := res.Find(stepProbe, "probe"); ok {
		state := "initialized"
		if p.Get("ready") != "true" {
			state = "not initialized"
		}
		line(w, p.Time, fmt.Sprintf("kernel random number generator %s, entropy_avail %s bits", state, p.Get("entropy_avail")))
	}
	for _, e := range res.Events {
		if e.Step == stepGate && (e.Kind == "stdout" || e.Kind == "stderr") {
			line(w, e.Time, "entropy-gate: "+e.Get("line"))
		}
	}
	code, err := res.ExitCode(stepGate)
	if err != nil || code != 0 {
		return history.Record{}, fmt.Errorf("entropy-gate run exited %d (%v)", code, err)
	}
	var records []history.Record
	for _, e := range res.All("cat") {
		var r history.Record
		if e.Step == stepHistory && json.Unmarshal([]byte(e.Get("text")), &r) == nil {
			records = append(records, r)
		}
	}
	if len(records) != 1 {
		return history.Record{}, fmt.Errorf("want the gate's one history record, got %d", len(records))
	}
	r := records[0]
	fmt.Fprintf(w, "  %10s  made ready by %s; the gate waited %d ms\n", "", readyByText[r.ReadyBy], r.WaitedMS)
	return r, nil
}
