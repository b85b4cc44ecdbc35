// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

// overlayRoot is where the per-boot files lie in the live initramfs; its
// init-bottom script lays them over the root (livesystem/overlay).
const overlayRoot = "vmtest/root"

// initramfsConfDir holds configuration the initramfs hook copies into the
// initramfs: a boot's texts there reach the initramfs too, as if it had
// been made again with them.
const initramfsConfDir = "/etc/entropy-gate/"

// LiveConfig describes a boot of a live system.
type LiveConfig struct {
	// SystemdConfig works as in BootLive.
	SystemdConfig
	// Initramfs are files added to the initramfs itself, guest path →
	// content (mode 0755), replacing what initramfs-tools put there: e.g.
	// a boot script in place of ours, for a benchmark.
	Initramfs map[string]string
}

// BootLive boots the live system the way Tails boots: QEMU's -kernel
// (the lab's kernel, the one in the live system) with the initramfs that
// initramfs-tools made in it, the boot parameters of Tails' bootloader
// (LiveKernelArgs) and the medium in cfg.Disks: a stick (Disk.USBSerial)
// or an ISO image (Disk.CDROM), where live-boot finds
// live/filesystem.squashfs. What cfg adds (Trees, Files, Texts, Enable,
// the report and its unit, the guest's /init for scenarios) is appended
// to the initramfs and laid over the root before systemd starts; texts
// under /etc/entropy-gate/ go into the initramfs too. cfg.Script must be
// empty: initramfs-tools' own init runs the initramfs. cfg.Initramfs
// adds to the initramfs. The result and
// errors are those of BootSystemd.
func (l *Lab) BootLive(ctx context.Context, live *LiveSystem, cfg LiveConfig) (*SystemdResult, error) {
	if cfg.Script != "" {
		return nil, errors.New("boot live: no init script: initramfs-tools' init runs the initramfs")
	}
	if live.Release != l.kernel.Release {
		return nil, fmt.Errorf("boot live: the live system has kernel %s, the lab boots %s", live.Release, l.kernel.Release)
	}
	if _, err := protocol.Parse(cfg.Report); err != nil {
		return nil, fmt.Errorf("boot live: report: %w", err)
	}
	// The medium is live-boot's business; the guest's modules are not needed.
	overlayCfg := cfg.SystemdConfig
	overlayCfg.Disks, overlayCfg.VirtioRNG, overlayCfg.Modules = nil, false, nil
	overlay, err := l.systemOverlay(overlayCfg)
	if err != nil {
		return nil, err
	}
	appended := overlay.under(overlayRoot)
	for _, name := range slices.Sorted(maps.Keys(cfg.Texts)) {
		if strings.HasPrefix(name, initramfsConfDir) {
			appended.addFile(name, 0o644, []byte(cfg.Texts[name]))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Initramfs)) {
		appended.addFile(name, 0o755, []byte(cfg.Initramfs[name]))
	}
	scratch, err := os.MkdirTemp(l.workDir, "boot-")
	if err != nil {
		return nil, fmt.Errorf("boot live: %w", err)
	}
	defer os.RemoveAll(scratch)
	initrd := filepath.Join(scratch, "initrd")
	if err := writeSystemInitrd(initrd, live.InitrdPath(), appended); err != nil {
		return nil, err
	}
	cfg.Append = slices.Concat(LiveKernelArgs, systemdKernelArgs, cfg.Append)
	return l.runSystemd(ctx, initrd, cfg.Config)
}

// InstallerSeedInit runs "entropy-gate seed init" on a stick the way
// Tails Installer would right after writing the image: on a computer
// whose CRNG is initialized (virtio-rng here), on the stick itself,
// attached as USB storage with its serial (stick.USBSerial), so that a
// seed bound to the medium is bound to what the live system will see.
// gate is the entropy-gate binary.
func (l *Lab) InstallerSeedInit(ctx context.Context, live *LiveSystem, stick Disk, gate string) error {
	if stick.USBSerial == "" {
		return errors.New("installer seed init: the stick needs its USB serial")
	}
	const stepInit = 3
	res, err := l.Boot(ctx, Config{
		Files:     map[string]string{"/bin/entropy-gate": gate},
		Disks:     []Disk{stick},
		Modules:   live.USBModuleFiles(),
		VirtioRNG: true,
		Script: `
			waitpath /dev/sda 30s
			waitready
			run /bin/entropy-gate seed init --device /dev/sda
		`,
	})
	if err != nil {
		return fmt.Errorf("installer seed init: %w", err)
	}
	if code, err := res.ExitCode(stepInit); code != 0 || err != nil {
		return fmt.Errorf("installer seed init: exit %d (%v): %s", code, err, strings.Join(res.Output(stepInit), "; "))
	}
	return nil
}
