// SPDX-License-Identifier: GPL-3.0-or-later

// Command guestinit is /init of the vmtest guest. As PID 1 it mounts the
// kernel file systems, loads the kernel modules the host packed, runs the
// scenario from protocol.ScenarioPath, prints every result as an event
// line on the console and powers the machine off, also after an error or
// a panic.
//
// Run as any other PID it executes one scenario step given as arguments
// (for example "/init waitready 10ms") and prints that step's events on
// standard output, so a scenario can run a step as a background job.
// With the arguments "--scenario FILE" it runs a whole scenario file that
// way, from an init event to a done event; a systemd unit in the guest
// uses this to report what it finds.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

// errStopped reports that a step failed and the scenario was abandoned;
// the step's own error event says why.
var errStopped = errors.New("scenario stopped")

func main() {
	if os.Getpid() != 1 {
		os.Exit(runTool(os.Args[1:], os.Stdout, os.Stderr))
	}
	g := newGuest(os.Stdout)
	defer powerOff(g)
	defer func() {
		if r := recover(); r != nil {
			g.emit(0, protocol.KindPanic, "msg", fmt.Sprint(r))
		}
	}()
	if err := g.runInit(); err != nil {
		if !errors.Is(err, errStopped) {
			g.emit(0, protocol.KindError, "msg", err.Error())
		}
		return
	}
	g.emit(0, protocol.KindDone)
}

// runInit prepares the machine and runs the scenario.
func (g *guest) runInit() error {
	if err := mountKernelFilesystems(); err != nil {
		return err
	}
	g.emitInit(protocol.ScenarioPath)
	if err := g.loadModules(); err != nil {
		return err
	}
	return g.runScenario(protocol.ScenarioPath)
}

// runScenario runs the steps of a scenario file. It returns errStopped
// after a step failed that may not.
func (g *guest) runScenario(path string) error {
	script, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read scenario: %w", err)
	}
	steps, err := protocol.Parse(string(script))
	if err != nil {
		return err
	}
	for _, step := range steps {
		g.emit(step.Index, protocol.KindStep, "text", step.String())
		if err := g.do(step); err != nil {
			g.emit(step.Index, protocol.KindError, "msg", err.Error())
			if !step.MayFail {
				return errStopped
			}
		}
	}
	return nil
}

// runTool executes one step, or a scenario file after --scenario,
// outside PID 1 and returns the exit code.
func runTool(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: init OPERATION [ARG...] | init --scenario FILE")
		return 2
	}
	if args[0] == "--scenario" {
		if len(args) != 2 {
			fmt.Fprintln(stderr, "usage: init --scenario FILE")
			return 2
		}
		return runScenarioTool(args[1], stdout)
	}
	step, err := protocol.NewStep(args[0], args[1:])
	if err == nil && (step.Op == "start" || step.Op == "wait" || step.Op == "env") {
		err = fmt.Errorf("%s only works in a scenario", step.Op)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if err := newGuest(stdout).do(step); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// runScenarioTool runs a scenario file outside PID 1, framed by an init
// and a done event like a boot's scenario, and returns the exit code.
func runScenarioTool(path string, stdout io.Writer) int {
	g := newGuest(stdout)
	g.emitInit(path)
	if err := g.runScenario(path); err != nil {
		if !errors.Is(err, errStopped) {
			g.emit(0, protocol.KindError, "msg", err.Error())
		}
		return 1
	}
	g.emit(0, protocol.KindDone)
	return 0
}

func mountKernelFilesystems() error {
	const hardened = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	for _, m := range []struct {
		fstype, target string
		flags          uintptr
	}{
		{"proc", "/proc", hardened},
		{"sysfs", "/sys", hardened},
		{"devtmpfs", "/dev", unix.MS_NOSUID},
		{"tmpfs", "/run", unix.MS_NOSUID | unix.MS_NODEV},
		{"tmpfs", "/tmp", unix.MS_NOSUID | unix.MS_NODEV},
	} {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return fmt.Errorf("mount %s: %w", m.target, err)
		}
		if err := unix.Mount(m.fstype, m.target, m.fstype, m.flags, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

// emitInit reports that init, or a scenario run, starts, with the
// kernel's uptime (the guest's CLOCK_BOOTTIME, which starts with the
// kernel) and the scenario file it runs.
func (g *guest) emitInit(scenario string) {
	var boot unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot)
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	cmdline, _ := os.ReadFile("/proc/cmdline")
	g.emit(0, protocol.KindInit,
		"boottime", fmt.Sprint(boot.Nano()),
		"kernel", unix.ByteSliceToString(uts.Release[:]),
		"cmdline", strings.TrimSpace(string(cmdline)),
		"scenario", scenario)
}

// loadModules loads the modules in protocol.ModulesDir in name order.
func (g *guest) loadModules() error {
	entries, err := os.ReadDir(protocol.ModulesDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list modules: %w", err)
	}
	for _, e := range entries {
		_, name, _ := strings.Cut(strings.TrimSuffix(e.Name(), ".ko"), "-")
		if err := loadModule(protocol.ModulesDir + "/" + e.Name()); err != nil {
			return fmt.Errorf("load module %s: %w", name, err)
		}
		g.emit(0, protocol.KindModule, "name", name)
	}
	return nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

// powerOff flushes the disks and switches the machine off. If that fails,
// init returns and the kernel panics, which with panic=-1 and QEMU's
// -no-reboot ends the VM as well.
func powerOff(g *guest) {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		g.emit(0, protocol.KindError, "msg", fmt.Sprintf("power off: %v", err))
	}
}
