// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/unit"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

// Defaults of SystemdConfig.
const (
	DefaultSystemdMemoryMB = 1536 // the unpacked system lives in RAM
	DefaultSystemdTimeout  = 3 * time.Minute
)

// ErrReportUnfinished is wrapped by the errors of boots whose report
// never ran or stopped before its end, as when a test powers the guest
// off on purpose.
var ErrReportUnfinished = errors.New("the report did not finish")

// ReportPath is where the report scenario lies in the guest.
const ReportPath = "/vmtest/report"

// systemdKernelArgs come after the lab's defaults and before
// SystemdConfig.Append.
var systemdKernelArgs = []string{
	// Without udev no device unit for the serial port ever appears: its
	// getty would hold the boot up for 90 s.
	"systemd.mask=serial-getty@ttyS0.service",
}

// reportUnit runs the report once the boot has finished and then powers
// the machine off. It is Type=simple so that its own start job ends at
// once: "is-system-running --wait" waits for every other job, and the
// boot would never finish while a oneshot report waited for it.
const (
	reportUnitName = "vmtest-report.service"
	reportUnit     = `[Unit]
Description=Report to the vmtest host once the boot has finished, then power off
After=multi-user.target

[Service]
Type=simple
ExecStart=/bin/sh -c '/usr/bin/systemctl is-system-running --wait >/dev/null; exec /init --scenario ` + ReportPath + `'
ExecStopPost=/usr/bin/systemctl --no-block poweroff
StandardOutput=tty
TTYPath=/dev/console

[Install]
WantedBy=multi-user.target
`
)

// unitDirs are where Enable looks for a unit file, first match wins.
var unitDirs = []string{"/etc/systemd/system", "/usr/lib/systemd/system"}

// SystemdConfig describes a boot of the cached Debian system (see
// PrepareSystemd) with systemd as PID 1.
type SystemdConfig struct {
	// Config's Script runs in init before it hands over to systemd
	// ("exec /sbin/init" is appended), after the modules for Disks and
	// VirtioRNG are loaded: this is the initramfs's part of a boot.
	// Files, Disks, VirtioRNG, CPU, Append and Console work as in Boot;
	// MemoryMB defaults to DefaultSystemdMemoryMB and Timeout to
	// DefaultSystemdTimeout.
	Config
	// Trees are host folders laid over the system in order, such as a
	// "make install DESTDIR=" tree; folders become 0755, everything is
	// owned by root. Files and Texts override them.
	Trees []string
	// Texts are files to create: guest path → content (mode 0644), e.g.
	// units and drop-ins under /etc/systemd/system, configuration, or
	// scenarios that units run with ScenarioCommand.
	Texts map[string]string
	// Enable names units to enable as "systemctl enable" would: a link
	// in /etc/systemd/system/TARGET.wants (or .requires) for each target
	// of their [Install] WantedBy= (RequiredBy=). The unit file is looked
	// up in /etc/systemd/system and /usr/lib/systemd/system of Texts and
	// Trees.
	Enable []string
	// Report is the scenario that runs once the boot has finished
	// ("systemctl is-system-running --wait"), at ReportPath; the machine
	// powers off after it.
	Report string
}

// SystemdResult is what a boot under systemd produced.
type SystemdResult struct {
	// Report holds the events of the report scenario.
	Report *Result
	// Runs holds the events of every scenario run that printed to the
	// console, by its file in the guest: ReportPath, the scenarios that
	// units ran with ScenarioCommand, and protocol.ScenarioPath for
	// init's own run before systemd (kernel uptime, modules).
	Runs      map[string]*Result
	Malformed []string      // console lines with the event prefix that did not parse
	Console   string        // the whole serial console, for diagnostics
	Wall      time.Duration // host time QEMU ran
}

// ScenarioCommand returns the command line that runs the scenario file
// at guestPath in the booted system, for a unit's ExecStart= or
// ExecStop=. Its events reach the host in SystemdResult.Runs when the
// unit writes to the console (StandardOutput=tty, TTYPath=/dev/console);
// otherwise they go to the journal.
func ScenarioCommand(guestPath string) string {
	return "/init --scenario " + guestPath
}

// BootSystemd boots the cached Debian system with systemd as PID 1, runs
// cfg.Report once the boot has finished and returns what the scenarios
// printed. It fails if a scenario does not parse, the system cannot be
// had (wrapping ErrUnavailable when it needs root), QEMU fails, the boot
// times out or the report does not finish; the error then quotes the end
// of the console. Boots run one at a time, with Boot's too.
func (l *Lab) BootSystemd(ctx context.Context, cfg SystemdConfig) (*SystemdResult, error) {
	cfg.Script += "\nexec /sbin/init"
	for name, script := range map[string]string{"init script": cfg.Script, "report": cfg.Report} {
		if _, err := protocol.Parse(script); err != nil {
			return nil, fmt.Errorf("boot: %s: %w", name, err)
		}
	}
	system, err := l.system(ctx)
	if err != nil {
		return nil, err
	}
	overlay, err := l.systemOverlay(cfg)
	if err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(l.workDir, "boot-")
	if err != nil {
		return nil, fmt.Errorf("boot: %w", err)
	}
	defer os.RemoveAll(scratch)
	initrd := filepath.Join(scratch, "initrd")
	if err := writeSystemInitrd(initrd, system.archivePath(), overlay); err != nil {
		return nil, err
	}

	cfg.Append = append(slices.Clone(systemdKernelArgs), cfg.Append...)
	return l.runSystemd(ctx, initrd, cfg.Config)
}

// runSystemd boots initrd with systemd's defaults and collects what the
// scenarios of the boot printed; the report must have run to its end.
func (l *Lab) runSystemd(ctx context.Context, initrd string, cfg Config) (*SystemdResult, error) {
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = DefaultSystemdMemoryMB
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultSystemdTimeout
	}
	res, err := l.runQEMU(ctx, initrd, cfg)
	if res == nil {
		return nil, err
	}
	out := &SystemdResult{Runs: splitRuns(res), Malformed: res.Malformed, Console: res.Console, Wall: res.Wall}
	if err != nil {
		return out, err
	}
	out.Report = out.Runs[ReportPath]
	if out.Report == nil {
		return out, fmt.Errorf("boot: %w: it never ran%s\n%s", ErrReportUnfinished, res.guestErrors(), res.tail())
	}
	if _, ok := out.Report.First(protocol.KindDone); !ok {
		return out, fmt.Errorf("boot: %w: it stopped before its end%s\n%s", ErrReportUnfinished, out.Report.guestErrors(), res.tail())
	}
	return out, nil
}

// systemOverlay collects what a boot adds to the cached system: the
// trees, init with its scenario and modules, cfg.Files and cfg.Texts, the
// report and its unit, and the links that enable units.
func (l *Lab) systemOverlay(cfg SystemdConfig) (*initramfs, error) {
	r := newInitramfs()
	for _, tree := range cfg.Trees {
		if err := r.addTree(tree); err != nil {
			return nil, err
		}
	}
	if err := l.addGuest(r, cfg.Config); err != nil {
		return nil, err
	}
	texts := maps.Clone(cfg.Texts)
	if texts == nil {
		texts = map[string]string{}
	}
	texts[ReportPath] = cfg.Report
	texts[path.Join(unitDirs[0], reportUnitName)] = reportUnit
	for _, name := range slices.Sorted(maps.Keys(texts)) {
		r.addFile(name, 0o644, []byte(texts[name]))
	}
	links, err := enableLinks(append(slices.Clone(cfg.Enable), reportUnitName), func(guestPath string) (string, error) {
		if text, ok := texts[guestPath]; ok {
			return text, nil
		}
		for _, tree := range slices.Backward(cfg.Trees) {
			if data, err := os.ReadFile(filepath.Join(tree, guestPath)); err == nil {
				return string(data), nil
			}
		}
		return "", os.ErrNotExist
	})
	if err != nil {
		return nil, err
	}
	for _, link := range slices.Sorted(maps.Keys(links)) {
		r.addSymlink(link, links[link])
	}
	return r, nil
}

// enableLinks returns the links "systemctl enable" makes for units, link
// → unit file, reading each unit's [Install] section. read returns the
// text of a guest file.
func enableLinks(units []string, read func(guestPath string) (string, error)) (map[string]string, error) {
	links := map[string]string{}
	for _, name := range units {
		var file, text string
		for _, dir := range unitDirs {
			if t, err := read(path.Join(dir, name)); err == nil {
				file, text = path.Join(dir, name), t
				break
			}
		}
		if file == "" {
			return nil, fmt.Errorf("enable %s: no unit file in %s", name, strings.Join(unitDirs, " or "))
		}
		opts, err := unit.DeserializeOptions(strings.NewReader(text))
		if err != nil {
			return nil, fmt.Errorf("enable %s: %w", name, err)
		}
		before := len(links)
		for _, o := range opts {
			suffix := map[string]string{"WantedBy": ".wants", "RequiredBy": ".requires"}[o.Name]
			if o.Section != "Install" || suffix == "" {
				continue
			}
			for _, target := range strings.Fields(o.Value) {
				links[path.Join(unitDirs[0], target+suffix, name)] = file
			}
		}
		if len(links) == before {
			return nil, fmt.Errorf("enable %s: no WantedBy= or RequiredBy= in its [Install] section", name)
		}
	}
	return links, nil
}

// writeSystemInitrd writes the initrd of a systemd boot: the cached
// system's compressed archive, then the overlay uncompressed. The kernel
// unpacks archives one after the other, later files replacing earlier
// ones, and takes an uncompressed one only at a 4-byte boundary: zero
// bytes pad the way there, which the kernel skips.
func writeSystemInitrd(dst, system string, overlay *initramfs) error {
	src, err := os.Open(system)
	if err != nil {
		return fmt.Errorf("initrd: %w", err)
	}
	defer src.Close()
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("initrd: %w", err)
	}
	n, err := io.Copy(f, src)
	if err == nil {
		_, err = f.Write(make([]byte, padding(int(n))))
	}
	if err == nil {
		err = writeNewc(f, overlay.entries)
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("initrd: %w", err)
	}
	return nil
}

// splitRuns groups the events of a boot by the scenario run that printed
// them. Each run begins with an init event that names its scenario file.
func splitRuns(res *Result) map[string]*Result {
	runs := map[string]*Result{}
	var current *Result
	for _, e := range res.Events {
		if e.Kind == protocol.KindInit {
			name := e.Get("scenario")
			if current = runs[name]; current == nil {
				current = &Result{Console: res.Console, Wall: res.Wall}
				runs[name] = current
			}
		}
		if current != nil {
			current.Events = append(current.Events, e)
		}
	}
	return runs
}
