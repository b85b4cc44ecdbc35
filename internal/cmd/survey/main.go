// SPDX-License-Identifier: GPL-3.0-or-later

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/doctor"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/history"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

func main() {
	log.SetFlags(0)
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		log.Fatalf("survey: %v", err)
	}
}

// stickUse says whether a boot has the seeded stick and how.
type stickUse int

const (
	noStick stickUse = iota
	stickWritable
	stickReadOnly
)

// daemon is an entropy daemon from Debian, run in the guest.
type daemon struct {
	program string   // its path, in the package and in the guest
	args    []string // to stay in the foreground
	pkgs    []string // the packages of the program and of the libraries the host lacks
}

// configuration is one row of the survey.
type configuration struct {
	name      string // for -only
	title     string
	mode      string // the gate's Mode
	virtioRNG bool
	cpu       string   // QEMU -cpu; the lab's default if empty
	append    []string // kernel arguments
	stick     stickUse
	daemon    *daemon
	// oneBoot: nothing here credits entropy, so a boot waits until the
	// timeout; one such boot shows it, more would only cost minutes.
	oneBoot bool
}

var configurations = []configuration{
	{name: "none-passive", title: "no help, passive gate", mode: "passive", oneBoot: true},
	{name: "none-active", title: "no help, active gate (in-kernel jitter)", mode: "active"},
	{name: "virtio-rng", title: "virtio-rng", mode: "passive", virtioRNG: true},
	{name: "rdrand", title: "-cpu max, random.trust_cpu=on (RDRAND)", mode: "passive",
		cpu: "max", append: []string{"random.trust_cpu=on"}},
	{name: "seed", title: "seed credited (stick from seed init)", mode: "passive", stick: stickWritable},
	{name: "seed-mixed", title: "seed mixed only (same stick, read-only)", mode: "passive", stick: stickReadOnly, oneBoot: true},
	{name: "haveged", title: "haveged in the guest", mode: "passive", daemon: &daemon{
		program: "/usr/sbin/haveged", args: []string{"--Foreground", "--verbose=1"}, pkgs: []string{"haveged", "libhavege2"}}},
	{name: "jitterentropy-rngd", title: "jitterentropy-rngd in the guest", mode: "passive", daemon: &daemon{
		program: "/usr/sbin/jitterentropy-rngd", args: []string{"-v"}, pkgs: []string{"jitterentropy-rngd"}}},
}

// Guest paths of the survey's boots.
const (
	gateBinary  = "/bin/entropy-gate"
	configPath  = "/tmp/entropy-gate.conf"
	historyPath = history.DefaultPath
)

// measurement is what one boot showed.
type measurement struct {
	record history.Record // the gate's, from its history file
	// initMS is the kernel uptime when init started.
	initMS int64
	// crngInitMS is the kernel uptime of "random: crng init done" (-1:
	// not logged).
	crngInitMS int64
	// cpuBusyPct is the share of time, in percent, the guest's CPU was
	// not idle from before the daemon (or the gate) started until the
	// gate exited.
	cpuBusyPct int64
	// daemonFailure says why the daemon did not run to the end, "" if
	// it did.
	daemonFailure string
}

// row is a configuration's result: its boots, or why it was not measured.
type row struct {
	config  configuration
	boots   []measurement
	skipped string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("survey", flag.ContinueOnError)
	fs.SetOutput(stderr)
	boots := fs.Int("boots", 3, "boots per configuration (one where nothing credits entropy)")
	timeout := fs.Duration("timeout", time.Minute, "the gate's timeout: how long a boot may wait")
	verbose := fs.Bool("v", false, "print each boot's guest timeline")
	only := fs.String("only", "", "comma-separated configurations to run (default all): "+strings.Join(configNames(), ","))
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if fs.NArg() > 0 || *boots < 1 || *timeout <= 0 {
		return fmt.Errorf("want -boots ≥ 1, -timeout > 0 and no arguments (got %q)", fs.Args())
	}
	selected, err := selectConfigurations(*only)
	if err != nil {
		return err
	}
	logf := log.New(stderr, "", 0).Printf

	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Hour)
	defer cancel()
	lab, err := vmtest.Prepare(ctx, vmtest.Options{Logf: logf})
	if err != nil {
		return err
	}
	defer lab.Close()
	gate, err := lab.Build(ctx, "./cmd/entropy-gate")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "entropy-gate-survey-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s := &survey{lab: lab, gate: gate, dir: dir, timeout: *timeout}
	if *verbose {
		s.timeline = stderr
	}

	var rows []row
	for _, c := range selected {
		r := row{config: c}
		for i := range *boots {
			m, err := s.boot(ctx, c)
			var notRunnable *notRunnableError
			if errors.As(err, &notRunnable) {
				r.skipped = notRunnable.Error()
				logf("%s: not measured: %v", c.name, err)
				break
			}
			if err != nil {
				return fmt.Errorf("%s, boot %d: %w", c.name, i+1, err)
			}
			logf("%s, boot %d: waited %d ms, ready by %s, entropy_avail %d at the end", c.name, i+1, m.record.WaitedMS, m.record.ReadyBy, m.record.EntropyAvailEnd)
			r.boots = append(r.boots, m)
			if c.oneBoot {
				break
			}
		}
		rows = append(rows, r)
	}
	writeSetup(ctx, stdout, lab.Kernel(), *timeout, rows)
	writeTable(stdout, rows, *timeout)
	fmt.Fprintf(stdout, "\nThe survey took %s.\n", time.Since(start).Round(time.Second))
	return nil
}

func configNames() []string {
	var names []string
	for _, c := range configurations {
		names = append(names, c.name)
	}
	return names
}

// selectConfigurations returns the configurations -only names, in the
// survey's order; all of them for "".
func selectConfigurations(only string) ([]configuration, error) {
	if only == "" {
		return configurations, nil
	}
	wanted := strings.Split(only, ",")
	for _, name := range wanted {
		if !slices.Contains(configNames(), name) {
			return nil, fmt.Errorf("-only: unknown configuration %q (have %s)", name, strings.Join(configNames(), ", "))
		}
	}
	var out []configuration
	for _, c := range configurations {
		if slices.Contains(wanted, c.name) {
			out = append(out, c)
		}
	}
	return out, nil
}

// survey holds what the boots share.
type survey struct {
	lab     *vmtest.Lab
	gate    string
	dir     string
	timeout time.Duration
	// timeline, if set, receives each boot's guest events.
	timeline io.Writer
	stick    string // the seeded stick, made on first use
}

// notRunnableError says a configuration cannot run here; the table says
// so instead of a measurement.
type notRunnableError struct{ err error }

func (e *notRunnableError) Error() string { return e.err.Error() }
func (e *notRunnableError) Unwrap() error { return e.err }

// seededStick returns the stick an installer would make: a fresh image
// with `entropy-gate seed init` run on it, on the host.
func (s *survey) seededStick(ctx context.Context) (string, error) {
	if s.stick != "" {
		return s.stick, nil
	}
	path := filepath.Join(s.dir, "stick.img")
	if _, err := vmtest.NewStick(ctx, path, vmtest.MinStickSize); err != nil {
		return "", err
	}
	if out, err := exec.CommandContext(ctx, s.gate, "seed", "init", "--device", path).CombinedOutput(); err != nil {
		return "", fmt.Errorf("seed init: %w: %s", err, out)
	}
	s.stick = path
	return path, nil
}

// gateConfig is the configuration file of the gate in a boot of c.
func (s *survey) gateConfig(c configuration) string {
	// OnTimeout=fail: the gate exits at once when it gives up, where
	// "open" would keep its degraded notice up for a few seconds more.
	conf := fmt.Sprintf("[Gate]\nMode=%s\nTimeout=%dms\nOnTimeout=fail\n", c.mode, s.timeout.Milliseconds())
	if c.stick != noStick {
		conf += "[Seed.Sector]\nEnable=yes\nDevice=/dev/vda\n"
	}
	return conf
}

// steps numbers the lines of a scenario as they are added.
type steps []string

func (s *steps) add(line string) int {
	*s = append(*s, line)
	return len(*s)
}

// boot boots the guest once in configuration c.
func (s *survey) boot(ctx context.Context, c configuration) (measurement, error) {
	cfg := vmtest.Config{
		Files:     map[string]string{gateBinary: s.gate},
		VirtioRNG: c.virtioRNG,
		CPU:       c.cpu,
		Append:    c.append,
		// Booting and doctor come on top.
		Timeout: s.timeout + 2*time.Minute,
	}
	if c.stick != noStick {
		stick, err := s.seededStick(ctx)
		if err != nil {
			return measurement{}, err
		}
		cfg.Disks = []vmtest.Disk{{Path: stick, ReadOnly: c.stick == stickReadOnly}}
	}
	var script steps
	script.add("write " + configPath + " " + strconv.Quote(s.gateConfig(c)))
	cpuBefore := script.add("cat /proc/stat")
	daemonStep := 0
	if d := c.daemon; d != nil {
		files, err := s.lab.DebianProgram(ctx, d.program, d.pkgs...)
		if err != nil {
			return measurement{}, &notRunnableError{err}
		}
		for guest, host := range files {
			cfg.Files[guest] = host
		}
		// May fail: a daemon that cannot start is a finding, not an error.
		daemonStep = script.add("-start daemon " + strings.Join(append([]string{d.program}, d.args...), " "))
	}
	gateStep := script.add("run " + gateBinary + " run --config " + configPath)
	cpuAfter := script.add("cat /proc/stat")
	historyStep := script.add("cat " + historyPath)
	doctorStep := script.add("run " + gateBinary + " doctor --json")
	cfg.Script = strings.Join(script, "\n")

	res, err := s.lab.Boot(ctx, cfg)
	if s.timeline != nil && res != nil {
		io.WriteString(s.timeline, res.Timeline())
	}
	if err != nil {
		return measurement{}, err
	}
	initStart, err := res.InitStart()
	if err != nil {
		return measurement{}, err
	}
	m := measurement{initMS: initStart.Milliseconds(), crngInitMS: -1}
	if m.record, err = gateRecord(res, historyStep); err != nil {
		return measurement{}, err
	}
	// The gate exits 0 when it opened, 1 when it timed out.
	wantCode := 0
	if m.record.Outcome == string(gatestate.Timeout) {
		wantCode = 1
	}
	if code, err := res.ExitCode(gateStep); err != nil || code != wantCode {
		return measurement{}, fmt.Errorf("entropy-gate run: exit %d (%v), want %d: %q", code, err, wantCode, res.Output(gateStep))
	}
	var report struct{ Facts doctor.Facts }
	if out := res.Output(doctorStep); len(out) > 0 {
		if err := json.Unmarshal([]byte(out[len(out)-1]), &report); err != nil {
			return measurement{}, fmt.Errorf("doctor --json: %w", err)
		}
		m.crngInitMS = report.Facts.CRNGInitMS
	}
	if m.cpuBusyPct, err = cpuBusyPercent(res, cpuBefore, cpuAfter); err != nil {
		return measurement{}, err
	}
	if daemonStep > 0 {
		m.daemonFailure = daemonFailure(res, daemonStep)
	}
	return m, nil
}

// gateRecord returns the one record the gate added to its history.
func gateRecord(res *vmtest.Result, step int) (history.Record, error) {
	var lines []string
	for _, e := range res.All("cat") {
		if e.Step == step {
			lines = append(lines, e.Get("text"))
		}
	}
	records, _ := history.Parse([]byte(strings.Join(lines, "\n")))
	if len(records) != 1 {
		return history.Record{}, fmt.Errorf("want the gate's one history record, got %d", len(records))
	}
	return records[0], nil
}

// cpuBusyPercent returns the share of non-idle CPU time between two cat
// steps of /proc/stat, in percent, from their first line: "cpu user nice
// system idle iowait irq softirq steal …" in clock ticks.
func cpuBusyPercent(res *vmtest.Result, before, after int) (int64, error) {
	var idle, total [2]int64
	for i, step := range []int{before, after} {
		e, ok := res.Find(step, "cat")
		fields := strings.Fields(e.Get("text"))
		if !ok || len(fields) < 9 || fields[0] != "cpu" {
			return 0, fmt.Errorf("/proc/stat at step %d: %q is not its cpu line", step, e.Get("text"))
		}
		for j, f := range fields[1:9] {
			ticks, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat at step %d: %w", step, err)
			}
			total[i] += ticks
			if j == 3 || j == 4 { // idle, iowait
				idle[i] += ticks
			}
		}
	}
	elapsed := total[1] - total[0]
	if elapsed <= 0 {
		return 0, nil
	}
	return int64(math.Round(100 * float64(elapsed-(idle[1]-idle[0])) / float64(elapsed))), nil
}

// daemonFailure says why a daemon's job did not run until power-off: it
// could not start, or it exited. "" if it ran throughout.
func daemonFailure(res *vmtest.Result, step int) string {
	if e, ok := res.Find(step, "error"); ok {
		return "could not start: " + e.Get("msg")
	}
	e, ok := res.Find(step, "exit")
	if !ok {
		return ""
	}
	why := "exited with code " + e.Get("code")
	if out := res.Output(step); len(out) > 0 {
		why += ": " + out[len(out)-1]
	}
	return why
}

// writeSetup describes the machine the table was measured on.
func writeSetup(ctx context.Context, w io.Writer, k vmtest.Kernel, timeout time.Duration, rows []row) {
	var initStarts []int64
	for _, r := range rows {
		for _, m := range r.boots {
			initStarts = append(initStarts, m.initMS)
		}
	}
	qemu := "QEMU (version unknown)"
	if out, err := exec.CommandContext(ctx, "qemu-system-x86_64", "--version").Output(); err == nil {
		qemu, _, _ = strings.Cut(string(out), "\n")
	}
	fmt.Fprintf(w, "Measured %s on a host with %d CPUs.\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU())
	fmt.Fprintf(w, "Guest kernel: Debian %s %s (%s), booted through its PVH entry point.\n", k.Package, k.Version, k.Release)
	fmt.Fprintf(w, "%s, software emulation (TCG, no KVM), -m %d, no network, one vCPU;\n", qemu, vmtest.DefaultMemoryMB)
	fmt.Fprintf(w, "unless a row says otherwise: -cpu %s, random.trust_cpu=off random.trust_bootloader=off,\n", vmtest.DefaultCPU)
	fmt.Fprintf(w, "no virtio-rng, no disk. The gate is `entropy-gate run` with Mode=passive (unless a row says active),\n")
	fmt.Fprintf(w, "Timeout=%s, OnTimeout=fail, started right after init", seconds(timeout.Milliseconds()))
	if len(initStarts) > 0 {
		fmt.Fprintf(w, " (init started at %s of kernel uptime)", spreadText(initStarts, seconds))
	}
	fmt.Fprintf(w, ".\n\n")
}

// columns of the survey table.
var columns = []string{"configuration", "boots", "gate wait: median (min–max)", "ready by (gate's record)",
	"CRNG initialized at (uptime)", "entropy_avail when the gate stopped", "guest CPU busy", "notes"}

func writeTable(w io.Writer, rows []row, timeout time.Duration) {
	cells := [][]string{columns}
	for _, r := range rows {
		cells = append(cells, rowCells(r, timeout))
	}
	width := make([]int, len(columns))
	for _, line := range cells {
		for i, cell := range line {
			width[i] = max(width[i], len([]rune(cell)))
		}
	}
	var b bytes.Buffer
	for n, line := range cells {
		b.WriteString("|")
		for i, cell := range line {
			fmt.Fprintf(&b, " %s%s |", cell, strings.Repeat(" ", width[i]-len([]rune(cell))))
		}
		b.WriteString("\n")
		if n == 0 {
			b.WriteString("|")
			for i := range line {
				fmt.Fprintf(&b, "%s|", strings.Repeat("-", width[i]+2))
			}
			b.WriteString("\n")
		}
	}
	w.Write(b.Bytes())
}

// rowCells summarises a configuration's boots as a table row.
func rowCells(r row, timeout time.Duration) []string {
	if len(r.boots) == 0 {
		return []string{r.config.title, "0", "—", "—", "—", "—", "—", "not measured: " + r.skipped}
	}
	var waits, entropy, crngInit, busy []int64
	var readyBy, notes []string
	timedOutBoots := 0
	for _, m := range r.boots {
		if !slices.Contains(readyBy, m.record.ReadyBy) {
			readyBy = append(readyBy, m.record.ReadyBy)
		}
		entropy = append(entropy, int64(m.record.EntropyAvailEnd))
		busy = append(busy, m.cpuBusyPct)
		if m.crngInitMS >= 0 {
			crngInit = append(crngInit, m.crngInitMS)
		}
		if m.daemonFailure != "" && !slices.Contains(notes, m.daemonFailure) {
			notes = append(notes, m.daemonFailure)
		}
		if m.record.Outcome == string(gatestate.Timeout) {
			timedOutBoots++
			continue
		}
		waits = append(waits, m.record.WaitedMS)
	}
	wait := "—"
	if len(waits) > 0 {
		wait = spreadText(waits, seconds)
	}
	notReady := fmt.Sprintf("not ready after %s", seconds(timeout.Milliseconds()))
	switch {
	case timedOutBoots == len(r.boots):
		wait = notReady
	case timedOutBoots > 0:
		notes = append(notes, fmt.Sprintf("%d of %d boots %s", timedOutBoots, len(r.boots), notReady))
	}
	ready := "never"
	if len(crngInit) > 0 {
		ready = spreadText(crngInit, seconds)
	}
	return []string{r.config.title, strconv.Itoa(len(r.boots)), wait, strings.Join(readyBy, ", "), ready,
		spreadText(entropy, func(n int64) string { return strconv.FormatInt(n, 10) }),
		spreadText(busy, func(n int64) string { return strconv.FormatInt(n, 10) + " %" }),
		strings.Join(notes, "; ")}
}

// spreadText formats the median of values and, if they differ, their
// range.
func spreadText(values []int64, format func(int64) string) string {
	med, lo, hi := spread(values)
	if lo == hi {
		return format(med)
	}
	return fmt.Sprintf("%s (%s–%s)", format(med), format(lo), format(hi))
}

// spread returns the median (the lower one of an even count), the
// minimum and the maximum of values, which must not be empty.
func spread(values []int64) (median, lo, hi int64) {
	sorted := slices.Sorted(slices.Values(values))
	return sorted[(len(sorted)-1)/2], sorted[0], sorted[len(sorted)-1]
}

// seconds formats milliseconds as seconds to two decimals, without
// trailing zeros: "1.32 s", "60 s".
func seconds(ms int64) string {
	return strconv.FormatFloat(math.Round(float64(ms)/10)/100, 'f', -1, 64) + " s"
}
