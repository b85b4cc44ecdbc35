// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// liveLayout versions the live system's recipe below; a cached system of
// another layout is built again.
const liveLayout = 2

// livePackages make the Debian root of the live system: what Tails boots
// with (live-boot, initramfs-tools, udev, systemd, Tor, D-Bus, Plymouth),
// the tools of its first-boot repartitioning, and what the assistant's
// documented check runs with (Python's GObject bindings).
var livePackages = []string{
	"live-boot", "initramfs-tools", "busybox", "zstd", "systemd-sysv", "udev", "tor", "dbus", "plymouth",
	"gdisk", "fatresize", "mtools", "parted", "python3-gi", "gir1.2-glib-2.0",
}

// liveModules are the kernel modules the live system keeps, with their
// dependencies: USB and SCSI disks, the CD-ROM, and the file systems of
// the boot medium and of live-boot's root. The rest of the kernel's
// modules would make the initramfs (MODULES=most) several times larger.
var liveModules = []string{
	"xhci_pci", "usb_storage", "uas", "sd_mod", "sr_mod", "ata_piix", "ata_generic",
	"squashfs", "overlay", "loop", "vfat", "nls_cp437", "nls_ascii", "nls_utf8", "isofs",
}

// liveUnits are our units the live system enables.
var liveUnits = []string{"entropy-gate-seed.service", "entropy-gate.service"}

// installerModules are what a vmtest guest loads to see a USB stick.
var installerModules = []string{"xhci_pci", "usb_storage", "sd_mod"}

// PublishedDiskGUID is the disk GUID of Tails' published USB image; the
// live system's first boot replaces it.
const PublishedDiskGUID = "17B81DA0-8B1E-4269-9C39-FE5C7B9B58A3"

// LiveKernelArgs are the boot parameters of Tails' live system, in its
// bootloader configurations and on the lab's kernel command line.
var LiveKernelArgs = []string{"boot=live", "live-media=removable", "nopersistence", "noprompt"}

// liveFiles are the lab's own parts of the live system: an initramfs
// hook for the repartitioning tools, Tails' first-boot repartitioning
// (init-premount), the per-boot overlay (init-bottom) and the
// configuration that enables the sector and FAT seeds.
//
//go:embed livesystem
var liveFiles embed.FS

// liveInstalls maps liveFiles to where they go in the root, with modes.
var liveInstalls = []struct {
	src, dst string
	mode     os.FileMode
}{
	{"livesystem/hook", "etc/initramfs-tools/hooks/vmtest-live", 0o755},
	{"livesystem/first-boot", "etc/initramfs-tools/scripts/init-premount/tails-first-boot", 0o755},
	{"livesystem/overlay", "etc/initramfs-tools/scripts/init-bottom/vmtest-overlay", 0o755},
	{"livesystem/entropy-gate.conf", "etc/entropy-gate/entropy-gate.conf.d/40-live.conf", 0o644},
}

// liveImageMin is the smallest image: mkfs.vfat then makes 4 KiB
// clusters, as on Tails' image, which is larger still. The FAT32 of a
// smaller partition has 512-byte clusters, and libparted (fatresize)
// cannot grow that at the first boot.
const liveImageMin = 300 << 20

// Files of a cached live system.
const (
	liveVmlinuz  = "vmlinuz"
	liveInitrd   = "initrd.img"
	liveSquashfs = "filesystem.squashfs"
	liveImage    = "tails.img"
	liveMeta     = "live.json"
)

// LiveRecipe is what a live system holds besides Debian's packages.
type LiveRecipe struct {
	// Tree is a "make install DESTDIR=" tree copied into the root before
	// the initramfs is made, so its hooks and scripts are in it, and
	// whose units liveUnits are enabled. Empty: a system without
	// entropy-gate, to compare with.
	Tree string
	// Package is entropy-gate's Debian package (make deb), installed with
	// dpkg in the root before the initramfs is made, as a distribution
	// installs it: its maintainer scripts enable its units. It replaces
	// Tree.
	Package string
}

// LiveSystem is a Tails-shaped live system in the cache: a Debian root
// as live/filesystem.squashfs, the kernel and the initramfs that
// initramfs-tools made in it, and a USB image laid out like Tails'
// published one holding them.
type LiveSystem struct {
	Layout  int    `json:"layout"`
	Key     string `json:"key"`     // hash of the recipe
	Release string `json:"release"` // the kernel's uname -r
	// BuildTime is how long the last build took (the base root's
	// debootstrap included when it was built too), e.g. "3m5s".
	BuildTime string `json:"build_time"`
	// BaseBuilt says whether that build made the base root too.
	BaseBuilt    bool     `json:"base_built"`
	InitrdSize   int64    `json:"initrd_size"`
	SquashfsSize int64    `json:"squashfs_size"`
	USBModules   []string `json:"usb_modules"` // files under modules/, load order
	dir          string
}

// InitrdPath is the initramfs made by update-initramfs in the root.
func (s *LiveSystem) InitrdPath() string { return filepath.Join(s.dir, liveInitrd) }

// ImagePath is the published image, before any boot.
func (s *LiveSystem) ImagePath() string { return filepath.Join(s.dir, liveImage) }

// USBModuleFiles returns the modules a vmtest guest loads, in order, to
// see a USB stick (Config.Modules).
func (s *LiveSystem) USBModuleFiles() []string {
	files := make([]string, len(s.USBModules))
	for i, m := range s.USBModules {
		files[i] = filepath.Join(s.dir, "modules", m)
	}
	return files
}

// PrepareLive returns the live system of recipe from the cache, building
// it when its recipe changed: the base root (debootstrap and the kernel's
// modules, a few minutes) only when the packages or the kernel changed,
// the rest (our tree, update-initramfs, mksquashfs, the image) when any
// part changed. It needs root to build; without root and without a
// current system, the error wraps ErrUnavailable.
func (l *Lab) PrepareLive(ctx context.Context, recipe LiveRecipe) (*LiveSystem, error) {
	if err := os.MkdirAll(l.cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(l.cacheDir, "live.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	baseKey := l.liveBaseKey()
	key, err := liveKey(baseKey, recipe)
	if err != nil {
		return nil, err
	}
	// One folder per recipe: the variants a benchmark compares are kept
	// side by side; those unused for a day are removed.
	dir := filepath.Join(l.cacheDir, liveDirPrefix+key[:16])
	if s, err := readLiveSystem(dir); err == nil && s.Key == key {
		now := time.Now()
		os.Chtimes(dir, now, now)
		return s, nil
	}
	pruneLiveSystems(l.cacheDir, 24*time.Hour)
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: no current live system in %s: building one needs root (sudo make test)", ErrUnavailable, dir)
	}
	if err := needCommands("debootstrap", "mksquashfs", "depmod", "chroot"); err != nil {
		return nil, err
	}
	start := time.Now()
	l.logf("vmtest: building the live system into %s (minutes, once per recipe)", dir)
	base, baseBuilt, err := l.liveBase(ctx, baseKey)
	if err != nil {
		return nil, err
	}
	s, err := l.buildLive(ctx, base, recipe, key)
	if err != nil {
		return nil, err
	}
	s.BuildTime, s.BaseBuilt = time.Since(start).Round(time.Second).String(), baseBuilt
	if err := writeJSON(filepath.Join(s.dir, liveMeta), s); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("replace %s: %w", dir, err)
	}
	if err := os.Rename(s.dir, dir); err != nil {
		return nil, fmt.Errorf("store live system: %w", err)
	}
	os.Remove(filepath.Dir(s.dir))
	s.dir = dir
	l.logf("vmtest: live system built in %s", s.BuildTime)
	return s, nil
}

// liveDirPrefix names the cached live systems, one folder per recipe.
const liveDirPrefix = "live-system-"

// pruneLiveSystems removes the cached live systems unused for longer
// than age.
func pruneLiveSystems(cacheDir string, age time.Duration) {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, liveDirPrefix+"*"))
	for _, dir := range dirs {
		if info, err := os.Stat(dir); err == nil && time.Since(info.ModTime()) > age {
			os.RemoveAll(dir)
		}
	}
}

func readLiveSystem(dir string) (*LiveSystem, error) {
	var s LiveSystem
	if err := readJSON(filepath.Join(dir, liveMeta), &s); err != nil {
		return nil, err
	}
	s.dir = dir
	return &s, nil
}

// liveBaseKey hashes what the base root is made of.
func (l *Lab) liveBaseKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "layout %d\nsuite %s\npackages %q\nmodules %q\nkernel %s %s\n",
		liveLayout, systemSuite, livePackages, liveModules, l.kernel.Package, l.kernel.Version)
	return hex.EncodeToString(h.Sum(nil))
}

// liveKey hashes the whole recipe: the base, the lab's files and every
// file of the tree with its path and mode.
func liveKey(baseKey string, recipe LiveRecipe) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "base %s\n", baseKey)
	for _, f := range liveInstalls {
		data, err := liveFiles.ReadFile(f.src)
		if err != nil {
			return "", fmt.Errorf("live system: %w", err)
		}
		fmt.Fprintf(h, "lab %s %o %d\n", f.dst, f.mode, len(data))
		h.Write(data)
	}
	if recipe.Tree != "" {
		if err := hashTree(h, recipe.Tree); err != nil {
			return "", fmt.Errorf("live system: hash %s: %w", recipe.Tree, err)
		}
	}
	if recipe.Package != "" {
		data, err := os.ReadFile(recipe.Package)
		if err != nil {
			return "", fmt.Errorf("live system: hash the package: %w", err)
		}
		fmt.Fprintf(h, "package %d\n", len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashTree feeds the paths, modes, link targets and contents under root
// to h, in lexical order.
func hashTree(h hash.Hash, root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "tree %s %v\n", rel, info.Mode())
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			fmt.Fprintf(h, "-> %s\n", target)
			return err
		case d.Type().IsRegular():
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(h, f)
			return err
		}
		return nil
	})
}

// liveBase returns the root folder of the base system (debootstrap, the
// kernel with liveModules), building it if its key changed.
func (l *Lab) liveBase(ctx context.Context, key string) (root string, built bool, err error) {
	dir := filepath.Join(l.cacheDir, "live-base")
	root = filepath.Join(dir, "root")
	if data, err := os.ReadFile(filepath.Join(dir, "key")); err == nil && string(data) == key {
		return root, false, nil
	}
	scratch, err := newScratch(l.cacheDir, ".live-base-")
	if err != nil {
		return "", false, fmt.Errorf("build live base: %w", err)
	}
	defer removeScratch(scratch)
	mirror := aptMirror(systemSuite)
	l.logf("vmtest: debootstrap of the live system's base from %s", mirror)
	stage := filepath.Join(scratch, "base")
	if err := debootstrap(ctx, filepath.Join(stage, "root"), mirror, livePackages); err != nil {
		return "", false, fmt.Errorf("build live base: %w", err)
	}
	if err := l.installKernel(ctx, scratch, filepath.Join(stage, "root")); err != nil {
		return "", false, fmt.Errorf("build live base: %w", err)
	}
	if err := os.WriteFile(filepath.Join(stage, "key"), []byte(key), 0o644); err != nil {
		return "", false, fmt.Errorf("build live base: %w", err)
	}
	if err := removeScratch(dir); err != nil {
		return "", false, fmt.Errorf("replace %s: %w", dir, err)
	}
	if err := os.Rename(stage, dir); err != nil {
		return "", false, fmt.Errorf("store live base: %w", err)
	}
	return root, true, nil
}

// installKernel puts the lab's kernel package into root: its image in
// /boot and liveModules with their dependencies, then depmod.
func (l *Lab) installKernel(ctx context.Context, scratch, root string) error {
	debs := filepath.Join(scratch, "debs")
	if err := os.Mkdir(debs, 0o755); err != nil {
		return err
	}
	if _, err := run(ctx, debs, "apt-get", "download", l.kernel.Package+"="+l.kernel.Version); err != nil {
		return fmt.Errorf("download kernel: %w", err)
	}
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	if len(files) != 1 {
		return fmt.Errorf("download kernel: got %d .deb files", len(files))
	}
	unpacked := filepath.Join(scratch, "kernel")
	if _, err := run(ctx, "", "dpkg-deb", "-x", files[0], unpacked); err != nil {
		return fmt.Errorf("unpack kernel: %w", err)
	}
	release := l.kernel.Release
	if err := copyTree(ctx, filepath.Join(unpacked, "boot"), filepath.Join(root, "boot")); err != nil {
		return err
	}
	srcMods := filepath.Join(unpacked, "lib", "modules", release)
	dstMods := filepath.Join(root, "usr", "lib", "modules", release)
	index, err := indexModules(filepath.Join(srcMods, "kernel"))
	if err != nil {
		return err
	}
	builtin, err := builtinModules(filepath.Join(srcMods, "modules.builtin"))
	if err != nil {
		return err
	}
	var readErr error
	order, err := dependencyOrder(liveModules, func(name string) ([]string, bool) {
		if builtin[name] {
			return nil, true
		}
		src, ok := index[name]
		if !ok {
			return nil, false
		}
		data, err := readModule(ctx, src)
		if err == nil {
			var deps []string
			if deps, err = modinfoDepends(data); err == nil {
				return deps, true
			}
		}
		readErr = errors.Join(readErr, fmt.Errorf("module %s: %w", name, err))
		return nil, true
	})
	if err = errors.Join(err, readErr); err != nil {
		return err
	}
	for _, name := range order {
		if builtin[name] {
			continue
		}
		rel, _ := filepath.Rel(srcMods, index[name])
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dstMods, rel)), 0o755); err != nil {
			return err
		}
		if err := copyFile(index[name], filepath.Join(dstMods, rel)); err != nil {
			return err
		}
	}
	for _, f := range []string{"modules.builtin", "modules.builtin.modinfo", "modules.order"} {
		if err := copyFile(filepath.Join(srcMods, f), filepath.Join(dstMods, f)); err != nil {
			return err
		}
	}
	if _, err := run(ctx, "", "depmod", "-b", root, release); err != nil {
		return fmt.Errorf("depmod: %w", err)
	}
	return nil
}

// installPackage installs the Debian package deb in root with dpkg, its
// maintainer scripts included, and checks that they enabled liveUnits.
func installPackage(ctx context.Context, root, deb string) error {
	const inRoot = "/tmp/entropy-gate.deb"
	if _, err := run(ctx, "", "cp", deb, filepath.Join(root, inRoot)); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(root, inRoot))
	if err := chrootRun(ctx, root, "dpkg", "-i", inRoot); err != nil {
		return fmt.Errorf("install %s: %w", filepath.Base(deb), err)
	}
	for _, u := range liveUnits {
		if links, _ := filepath.Glob(filepath.Join(root, "etc/systemd/system/*.wants", u)); len(links) == 0 {
			return fmt.Errorf("the package did not enable %s", u)
		}
	}
	return nil
}

// copyTree copies the content of the host folder src into dst with cp -a.
func copyTree(ctx context.Context, src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	_, err := run(ctx, "", "cp", "-a", src+"/.", dst)
	return err
}

// buildLive makes the live system of recipe from the base root in a
// scratch folder and returns it there.
func (l *Lab) buildLive(ctx context.Context, base string, recipe LiveRecipe, key string) (*LiveSystem, error) {
	scratch, err := newScratch(l.cacheDir, ".live-")
	if err != nil {
		return nil, fmt.Errorf("build live system: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			removeScratch(scratch)
		}
	}()
	root := filepath.Join(scratch, "root")
	if err := copyTree(ctx, base, root); err != nil {
		return nil, fmt.Errorf("build live system: %w", err)
	}
	for _, f := range liveInstalls {
		data, err := liveFiles.ReadFile(f.src)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(filepath.Join(root, f.dst)), 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(root, f.dst), data, f.mode)
		}
		if err != nil {
			return nil, fmt.Errorf("build live system: %w", err)
		}
	}
	switch {
	case recipe.Package != "":
		if err := installPackage(ctx, root, recipe.Package); err != nil {
			return nil, fmt.Errorf("build live system: %w", err)
		}
	case recipe.Tree != "":
		if err := copyTree(ctx, recipe.Tree, root); err != nil {
			return nil, fmt.Errorf("build live system: %w", err)
		}
		// As the package's maintainer scripts would.
		if err := chrootRun(ctx, root, append([]string{"systemctl", "enable"}, liveUnits...)...); err != nil {
			return nil, fmt.Errorf("build live system: %w", err)
		}
	}
	release := l.kernel.Release
	if err := chrootRun(ctx, root, "update-initramfs", "-c", "-k", release); err != nil {
		return nil, fmt.Errorf("build live system: %w", err)
	}
	stage := filepath.Join(scratch, "live")
	if err := os.Mkdir(stage, 0o755); err != nil {
		return nil, fmt.Errorf("build live system: %w", err)
	}
	s := &LiveSystem{Layout: liveLayout, Key: key, Release: release, dir: stage}
	for src, dst := range map[string]string{"vmlinuz-" + release: liveVmlinuz, "initrd.img-" + release: liveInitrd} {
		if _, err := run(ctx, "", "mv", filepath.Join(root, "boot", src), filepath.Join(stage, dst)); err != nil {
			return nil, fmt.Errorf("build live system: %w", err)
		}
	}
	// live-boot keeps the kernel and initramfs beside the squashfs, not in it.
	if _, err := run(ctx, "", "mksquashfs", root, filepath.Join(stage, liveSquashfs),
		"-noappend", "-comp", "lz4", "-processors", "2", "-no-progress", "-quiet", "-e", "boot"); err != nil {
		return nil, fmt.Errorf("build live system: %w", err)
	}
	if s.USBModules, err = extractUSBModules(ctx, root, release, stage); err != nil {
		return nil, fmt.Errorf("build live system: %w", err)
	}
	if err := s.writeImage(ctx); err != nil {
		return nil, fmt.Errorf("build live system: %w", err)
	}
	for name, size := range map[string]*int64{liveInitrd: &s.InitrdSize, liveSquashfs: &s.SquashfsSize} {
		info, err := os.Stat(filepath.Join(stage, name))
		if err != nil {
			return nil, fmt.Errorf("build live system: %w", err)
		}
		*size = info.Size()
	}
	removeScratch(root)
	keep = true
	return s, nil
}

// chrootRun runs a command in root with /proc, /sys and /dev mounted,
// as initramfs-tools expects them.
func chrootRun(ctx context.Context, root string, args ...string) error {
	var mounted []string
	defer func() {
		for _, m := range slices.Backward(mounted) {
			unix.Unmount(m, unix.MNT_DETACH)
		}
	}()
	for _, m := range []struct{ source, target, fstype string }{
		{"proc", "proc", "proc"}, {"sysfs", "sys", "sysfs"}, {"/dev", "dev", ""},
	} {
		target := filepath.Join(root, m.target)
		flags := uintptr(0)
		if m.fstype == "" {
			flags = unix.MS_BIND
		}
		if err := unix.Mount(m.source, target, m.fstype, flags, ""); err != nil {
			return fmt.Errorf("mount %s in %s: %w", m.target, root, err)
		}
		mounted = append(mounted, target)
	}
	_, err := run(ctx, "", "chroot", append([]string{root}, args...)...)
	return err
}

// extractUSBModules copies installerModules and their dependencies from
// the root's kernel modules to stage/modules, uncompressed and numbered
// in load order, and returns their file names.
func extractUSBModules(ctx context.Context, root, release, stage string) ([]string, error) {
	modDir := filepath.Join(root, "usr", "lib", "modules", release)
	index, err := indexModules(filepath.Join(modDir, "kernel"))
	if err != nil {
		return nil, err
	}
	builtin, err := builtinModules(filepath.Join(modDir, "modules.builtin"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(stage, "modules"), 0o755); err != nil {
		return nil, err
	}
	extracted := map[string]kmodule{}
	var readErr error
	order, err := dependencyOrder(installerModules, func(name string) ([]string, bool) {
		if builtin[name] {
			return nil, true
		}
		if m, ok := extracted[name]; ok {
			return m.Depends, true
		}
		src, ok := index[name]
		if !ok {
			return nil, false
		}
		m, err := extractModule(ctx, src, stage, name)
		readErr = errors.Join(readErr, err)
		extracted[name] = m
		return m.Depends, true
	})
	if err = errors.Join(err, readErr); err != nil {
		return nil, err
	}
	var files []string
	for _, name := range order {
		if m, ok := extracted[name]; ok {
			files = append(files, filepath.Base(m.File))
		}
	}
	return files, nil
}

// liveBootFiles are the bootloader configurations of the image, which
// hold the kernel command line (and where the Cmdline seed backend
// looks).
func liveBootFiles() map[string]string {
	args := strings.Join(LiveKernelArgs, " ")
	return map[string]string{
		"syslinux/live64.cfg": "label live\n\tkernel /live/vmlinuz\n\tappend initrd=/live/initrd.img " + args + "\n",
		"EFI/debian/grub.cfg": "menuentry 'Tails' {\n\tlinux /live/vmlinuz " + args + "\n\tinitrd /live/initrd.img\n}\n",
	}
}

// writeImage lays out the published USB image: a GPT with the published
// disk GUID, partition 1 from LBA 2048 as a FAT32 EFI system partition
// named Tails with the attributes of Tails' image (0 system, 2 legacy
// BIOS bootable, 60 read-only, 62 hidden, 63 no automount), holding
// live/ and the bootloader configurations. It is just large enough.
func (s *LiveSystem) writeImage(ctx context.Context) error {
	var payload int64
	for _, name := range []string{liveVmlinuz, liveInitrd, liveSquashfs} {
		info, err := os.Stat(filepath.Join(s.dir, name))
		if err != nil {
			return err
		}
		payload += info.Size()
	}
	// FAT32 overhead and the first and last MiB of the disk; and at least
	// liveImageMin.
	size := max((payload+payload/20+(16<<20))>>20<<20, liveImageMin)
	path := s.ImagePath()
	stick, err := NewStick(ctx, path, size)
	if err != nil {
		return err
	}
	if _, err := run(ctx, "", "sgdisk", "--disk-guid="+PublishedDiskGUID,
		"--attributes=1:set:0", "--attributes=1:set:2", "--attributes=1:set:60",
		"--attributes=1:set:62", "--attributes=1:set:63", path); err != nil {
		return err
	}
	for name, dst := range map[string]string{liveVmlinuz: "live/vmlinuz", liveInitrd: "live/initrd.img", liveSquashfs: "live/filesystem.squashfs"} {
		if err := stick.CopyIn(ctx, dst, filepath.Join(s.dir, name)); err != nil {
			return err
		}
	}
	files := liveBootFiles()
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := stick.WriteFile(ctx, name, []byte(files[name])); err != nil {
			return err
		}
	}
	return nil
}

// NewStick makes a stick of size bytes at path as Tails' image written to
// it: the published image, then zeros to the end (a stick larger than
// the image, so its backup GPT header is not at the end).
func (s *LiveSystem) NewStick(ctx context.Context, path string, size int64) (*Stick, error) {
	imageSize, err := s.imageSize()
	if err != nil {
		return nil, fmt.Errorf("new stick: %w", err)
	}
	if size < imageSize {
		return nil, fmt.Errorf("new stick: %d bytes is smaller than the image's %d", size, imageSize)
	}
	if _, err := run(ctx, "", "cp", "--sparse=always", s.ImagePath(), path); err != nil {
		return nil, fmt.Errorf("new stick: %w", err)
	}
	if err := os.Truncate(path, size); err != nil {
		return nil, fmt.Errorf("new stick: %w", err)
	}
	return &Stick{Path: path}, nil
}

// imageSize returns the size of the published image.
func (s *LiveSystem) imageSize() (int64, error) {
	info, err := os.Stat(s.ImagePath())
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

// String describes the cached system, for logs.
func (s *LiveSystem) String() string {
	return "live system " + s.Key[:12] + " (kernel " + s.Release + ", initrd " + strconv.FormatInt(s.InitrdSize>>10, 10) +
		" KiB, squashfs " + strconv.FormatInt(s.SquashfsSize>>20, 10) + " MiB, built in " + s.BuildTime + ")"
}

// NewISO writes an ISO 9660 image of the live system to path, as Tails'
// ISO holds it (live/ and the bootloader configurations), for booting
// from a CD-ROM (Disk.CDROM).
func (s *LiveSystem) NewISO(ctx context.Context, path string) error {
	if err := needCommands("xorriso"); err != nil {
		return err
	}
	args := []string{"-as", "mkisofs", "-quiet", "-o", path, "-V", "TAILS", "-R", "-J", "-graft-points"}
	for name, dst := range map[string]string{liveVmlinuz: "live/vmlinuz", liveInitrd: "live/initrd.img", liveSquashfs: "live/filesystem.squashfs"} {
		args = append(args, dst+"="+filepath.Join(s.dir, name))
	}
	scratch, err := os.MkdirTemp("", "live-iso-")
	if err != nil {
		return fmt.Errorf("new iso: %w", err)
	}
	defer os.RemoveAll(scratch)
	for name, text := range liveBootFiles() {
		file := filepath.Join(scratch, strings.ReplaceAll(name, "/", "_"))
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			return fmt.Errorf("new iso: %w", err)
		}
		args = append(args, name+"="+file)
	}
	if _, err := run(ctx, "", "xorriso", args...); err != nil {
		return fmt.Errorf("new iso: %w", err)
	}
	return nil
}
