// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

// Defaults of Config.
const (
	DefaultCPU      = "qemu64,-rdrand,-rdseed" // no CPU RNG for the kernel to trust
	DefaultMemoryMB = 512
	DefaultTimeout  = 2 * time.Minute
)

// baseKernelArgs come first on the kernel command line; Config.Append
// comes after them and wins where it repeats one.
var baseKernelArgs = []string{
	"console=ttyS0", "random.trust_cpu=off", "random.trust_bootloader=off", "quiet", "panic=-1",
}

// consoleTail is how much of the console an error quotes.
const consoleTail = 3000

// Disk is a raw disk image, attached as a virtio disk unless it is a USB
// stick or a CD-ROM.
type Disk struct {
	Path     string
	ReadOnly bool
	// Serial, if set, is the serial number the guest sees in
	// /sys/block/vdX/serial (letters, digits, '-' and '_' only).
	Serial string
	// USBSerial attaches the image as USB mass storage with this serial
	// number (on an xHCI controller, removable), as a real USB stick is:
	// it appears as /dev/sdX. The guest needs the USB modules: see
	// LiveSystem.USBModules.
	USBSerial string
	// CDROM attaches the image read-only as an IDE CD-ROM (/dev/sr0).
	CDROM bool
}

// Config describes one boot.
type Config struct {
	// Script is the scenario (see the package documentation).
	Script string
	// Files maps guest paths to host files put into the initramfs with
	// their permission bits, e.g. {"/bin/entropy-gate": built}.
	Files map[string]string
	// Disks appear as /dev/vda, /dev/vdb, … in this order; with any disk
	// the virtio block and FAT modules are loaded.
	Disks []Disk
	// VirtioRNG adds a virtio-rng device and loads its driver.
	VirtioRNG bool
	// CPU is QEMU's -cpu model; DefaultCPU if empty. With "max" add
	// random.trust_cpu=on to Append for the kernel to use RDRAND.
	CPU string
	// Append holds kernel arguments after the defaults (console=ttyS0
	// random.trust_cpu=off random.trust_bootloader=off quiet panic=-1);
	// a repeated argument overrides the default.
	Append []string
	// MemoryMB is the guest RAM; DefaultMemoryMB if zero.
	MemoryMB int
	// CPUs is the number of virtual CPUs; one if zero.
	CPUs int
	// Timeout bounds the boot, waiting for another boot not counted;
	// DefaultTimeout if zero.
	Timeout time.Duration
	// Console, if set, receives the serial console as it comes.
	Console io.Writer
	// Modules are more kernel modules (host .ko files) init loads after
	// those of Disks and VirtioRNG, in this order: dependencies first.
	Modules []string
	// Monitor, if set, is the path of a Unix socket where QEMU's human
	// monitor listens during the boot, e.g. for device_del.
	Monitor string
}

// Boot runs the scenario in a fresh VM and returns its events. It fails
// if the scenario does not parse, QEMU fails, the boot times out or the
// guest stops before the scenario's end; the error then quotes the end
// of the console. Boots run one at a time, across processes too.
func (l *Lab) Boot(ctx context.Context, cfg Config) (*Result, error) {
	if _, err := protocol.Parse(cfg.Script); err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(l.workDir, "boot-")
	if err != nil {
		return nil, fmt.Errorf("boot: %w", err)
	}
	defer os.RemoveAll(scratch)
	initrd := filepath.Join(scratch, "initrd.gz")
	if err := l.writeInitramfs(initrd, cfg); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	res, err := l.runQEMU(ctx, initrd, cfg)
	if err != nil {
		return res, err
	}
	if _, ok := res.First(protocol.KindDone); !ok {
		return res, fmt.Errorf("boot: the guest stopped before the end of the scenario%s\n%s", res.guestErrors(), res.tail())
	}
	return res, nil
}

// runQEMU boots the lab's kernel with initrd and returns every event of
// the console. It fails if QEMU fails or the guest does not power off
// within cfg.Timeout; the error then quotes the end of the console.
// Boots run one at a time, across processes too.
func (l *Lab) runQEMU(ctx context.Context, initrd string, cfg Config) (*Result, error) {
	qemu, err := toolPath("qemu-system-x86_64")
	if err != nil {
		return nil, err
	}
	unlock, err := lockFile(ctx, filepath.Join(l.cacheDir, "qemu.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	var console, stderr bytes.Buffer
	var out io.Writer = &console
	if cfg.Console != nil {
		out = io.MultiWriter(&console, cfg.Console)
	}
	cmd := exec.CommandContext(ctx, qemu, qemuArgs(l.kernel.ImagePath(), initrd, cfg)...)
	cmd.Stdout, cmd.Stderr = out, &stderr // stdin stays /dev/null: QEMU would eat it
	start := time.Now()
	runErr := cmd.Run()
	res := newResult(console.String(), time.Since(start))

	if runErr != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("boot: no power-off after %v: %w\n%s", res.Wall.Round(time.Millisecond), ctx.Err(), res.tail())
		}
		return res, fmt.Errorf("boot: qemu: %w: %s\n%s", runErr, strings.TrimSpace(stderr.String()), res.tail())
	}
	return res, nil
}

// qemuArgs returns QEMU's command line for one boot.
func qemuArgs(kernel, initrd string, cfg Config) []string {
	cpu := cfg.CPU
	if cpu == "" {
		cpu = DefaultCPU
	}
	mem := cfg.MemoryMB
	if mem == 0 {
		mem = DefaultMemoryMB
	}
	args := []string{
		"-nographic", "-no-reboot", "-nic", "none",
		"-m", strconv.Itoa(mem),
		"-smp", strconv.Itoa(max(cfg.CPUs, 1)),
		"-cpu", cpu,
		"-kernel", kernel,
		"-initrd", initrd,
		"-append", strings.Join(append(slices.Clone(baseKernelArgs), cfg.Append...), " "),
	}
	usb := false
	for i, d := range cfg.Disks {
		file := "file=" + strings.ReplaceAll(d.Path, ",", ",,") + ",format=raw"
		id := "disk" + strconv.Itoa(i)
		switch {
		case d.CDROM:
			args = append(args, "-drive", file+",if=none,id="+id+",media=cdrom,readonly=on", "-device", "ide-cd,drive="+id)
		case d.USBSerial != "":
			if !usb {
				args = append(args, "-device", "qemu-xhci,id=xhci")
				usb = true
			}
			args = append(args, "-drive", file+",if=none,id="+id+readOnly(d),
				"-device", "usb-storage,bus=xhci.0,drive="+id+",id="+id+",removable=on,serial="+strings.ReplaceAll(d.USBSerial, ",", ",,"))
		default:
			// A drive without a bus, and the virtio disk as a device of
			// its own: QEMU takes a serial number only there. The
			// devices get PCI slots, and the guest vda, vdb …, in this
			// order.
			device := "virtio-blk-pci,drive=" + id
			if d.Serial != "" {
				device += ",serial=" + d.Serial
			}
			args = append(args, "-drive", file+",if=none,id="+id+readOnly(d), "-device", device)
		}
	}
	if cfg.Monitor != "" {
		args = append(args, "-monitor", "unix:"+strings.ReplaceAll(cfg.Monitor, ",", ",,")+",server=on,wait=off")
	}
	if cfg.VirtioRNG {
		args = append(args, "-device", "virtio-rng-pci")
	}
	return args
}

// readOnly is the -drive option of a read-only disk.
func readOnly(d Disk) string {
	if d.ReadOnly {
		return ",readonly=on"
	}
	return ""
}

// writeInitramfs packs init, the modules the boot needs, the scenario and
// cfg.Files.
func (l *Lab) writeInitramfs(path string, cfg Config) error {
	r := newInitramfs()
	if err := l.addGuest(r, cfg); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if err := r.writeGzip(f); err != nil {
		f.Close()
		return fmt.Errorf("initramfs: %w", err)
	}
	return f.Close()
}

// addGuest adds init, the modules the boot needs, the scenario and
// cfg.Files to r.
func (l *Lab) addGuest(r *initramfs, cfg Config) error {
	var groups []string
	if len(cfg.Disks) > 0 {
		groups = append(groups, groupDisk)
	}
	if cfg.VirtioRNG {
		groups = append(groups, groupRNG)
	}
	modules, err := l.kernel.moduleFiles(groups...)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}

	if err := r.addHostFile("/init", l.guestInit); err != nil {
		return err
	}
	r.addFile(protocol.ScenarioPath, 0o644, []byte(cfg.Script))
	for i, m := range append(modules, cfg.Modules...) {
		name := fmt.Sprintf("%s/%02d-%s", protocol.ModulesDir, i, filepath.Base(m))
		if err := r.addHostFile(name, m); err != nil {
			return err
		}
	}
	for _, guestPath := range slices.Sorted(maps.Keys(cfg.Files)) {
		if err := r.addHostFile(guestPath, cfg.Files[guestPath]); err != nil {
			return err
		}
	}
	return nil
}

// Result is what a boot produced.
type Result struct {
	Events    []Event       // parsed event lines, in console order
	Malformed []string      // console lines with the event prefix that did not parse
	Console   string        // the whole serial console, for diagnostics
	Wall      time.Duration // host time QEMU ran
}

// Event is one thing that happened in the guest; see package protocol.
type Event = protocol.Event

func newResult(console string, wall time.Duration) *Result {
	events, malformed := protocol.Scan(console)
	return &Result{Events: events, Malformed: malformed, Console: console, Wall: wall}
}

// First returns the first event of a kind.
func (r *Result) First(kind string) (Event, bool) {
	for _, e := range r.Events {
		if e.Kind == kind {
			return e, true
		}
	}
	return Event{}, false
}

// Find returns the first event of a kind that step emitted.
func (r *Result) Find(step int, kind string) (Event, bool) {
	for _, e := range r.Events {
		if e.Step == step && e.Kind == kind {
			return e, true
		}
	}
	return Event{}, false
}

// All returns the events of a kind.
func (r *Result) All(kind string) []Event {
	var out []Event
	for _, e := range r.Events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// ExitCode returns the exit code of the command a run or start step ran.
// A command killed by a signal has -1.
func (r *Result) ExitCode(step int) (int, error) {
	e, ok := r.Find(step, protocol.KindExit)
	if !ok {
		return 0, fmt.Errorf("step %d: no exit event", step)
	}
	code, err := strconv.Atoi(e.Get("code"))
	if err != nil {
		return 0, fmt.Errorf("step %d: exit code: %w", step, err)
	}
	return code, nil
}

// Output returns the standard output and error lines of a run or start
// step, interleaved as they came.
func (r *Result) Output(step int) []string {
	var lines []string
	for _, e := range r.Events {
		if e.Step == step && (e.Kind == protocol.KindStdout || e.Kind == protocol.KindStderr) {
			lines = append(lines, e.Get("line"))
		}
	}
	return lines
}

// InitStart returns the kernel's uptime when init started.
func (r *Result) InitStart() (time.Duration, error) {
	e, ok := r.First(protocol.KindInit)
	if !ok {
		return 0, errors.New("no init event")
	}
	ns, err := strconv.ParseInt(e.Get("boottime"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("init event boottime: %w", err)
	}
	return time.Duration(ns), nil
}

// Timeline renders the events one per line, for people. A boot that never
// started (Boot's nil Result, e.g. when waiting for the lab timed out) has
// none.
func (r *Result) Timeline() string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	for _, e := range r.Events {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// guestErrors summarises the guest's error and panic events.
func (r *Result) guestErrors() string {
	var msgs []string
	for _, e := range r.Events {
		if e.Kind == protocol.KindError || e.Kind == protocol.KindPanic {
			msgs = append(msgs, fmt.Sprintf("step %d: %s", e.Step, e.Get("msg")))
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	return ": " + strings.Join(msgs, "; ")
}

func (r *Result) tail() string {
	return "console tail:\n" + lastBytes(r.Console, consoleTail)
}
