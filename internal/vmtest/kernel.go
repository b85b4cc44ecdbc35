// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// kernelMeta is the Debian package that depends on the current kernel.
const kernelMeta = "linux-image-amd64"

// cacheLayout versions what a cached kernel folder holds; a folder of
// another layout is extracted again.
const cacheLayout = 2

// Module groups the guest loads for a feature. Their dependencies are
// added from each module's modinfo.
const (
	groupDisk = "disk" // virtio disks and the FAT file system on them
	groupRNG  = "rng"  // virtio-rng
)

var moduleGroups = map[string][]string{
	groupDisk: {"virtio_pci", "virtio_blk", "vfat"},
	groupRNG:  {"virtio_pci", "virtio_rng"},
}

// cachedKernel is a Debian kernel unpacked in the cache: its image and
// the modules the guest may load, without modules.dep (the package has
// none). It is stored as kernel.json in its folder.
type cachedKernel struct {
	Layout  int                 `json:"layout"`
	Package string              `json:"package"` // e.g. linux-image-6.1.0-56-amd64
	Version string              `json:"version"` // the package version, e.g. 6.1.192-2
	Release string              `json:"release"` // uname -r, e.g. 6.1.0-56-amd64
	Image   string              `json:"image"`   // what QEMU boots: vmlinux (PVH entry) or vmlinuz
	Groups  map[string][]string `json:"groups"`  // feature → modules to load, builtins left out
	Modules map[string]kmodule  `json:"modules"` // by name, with underscores
	dir     string
}

type kmodule struct {
	File    string   `json:"file"` // relative to the kernel folder, uncompressed
	Depends []string `json:"depends"`
}

// ImagePath returns the path of the kernel image QEMU boots.
func (k *cachedKernel) ImagePath() string { return filepath.Join(k.dir, k.Image) }

// moduleFiles returns the module files of the groups, each after its
// dependencies and each once.
func (k *cachedKernel) moduleFiles(groups ...string) ([]string, error) {
	var roots []string
	for _, g := range groups {
		roots = append(roots, k.Groups[g]...)
	}
	order, err := dependencyOrder(roots, func(name string) ([]string, bool) {
		m, ok := k.Modules[name]
		return m.Depends, ok
	})
	if err != nil {
		return nil, err
	}
	files := make([]string, len(order))
	for i, name := range order {
		files[i] = filepath.Join(k.dir, k.Modules[name].File)
	}
	return files, nil
}

// dependencyOrder lists roots and everything they depend on, each
// module after its dependencies. depends reports a module's dependencies
// and whether it is known at all.
func dependencyOrder(roots []string, depends func(string) ([]string, bool)) ([]string, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var order []string
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(path, name), " → "))
		}
		deps, ok := depends(name)
		if !ok {
			return fmt.Errorf("module %s: not in the kernel package", name)
		}
		state[name] = visiting
		for _, d := range slices.Sorted(slices.Values(deps)) {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = done
		order = append(order, name)
		return nil
	}
	for _, r := range roots {
		if err := visit(r, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// loadKernel returns the current Debian kernel from the cache, fetching
// it the first time. When the current kernel cannot be resolved or
// fetched (offline, no root), a kernel already in the cache is used.
func loadKernel(ctx context.Context, cacheDir string, logf func(string, ...any)) (*cachedKernel, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(cacheDir, "kernel.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	pkg, version, err := candidateKernel(ctx)
	if err == nil {
		dir := filepath.Join(cacheDir, pkg+"_"+version)
		if k, readErr := readKernel(dir); readErr == nil {
			return k, nil
		}
		logf("vmtest: fetching %s %s into %s", pkg, version, cacheDir)
		var k *cachedKernel
		if k, err = fetchKernel(ctx, cacheDir, dir, pkg, version, logf); err == nil {
			removeOtherKernels(cacheDir, dir)
			return k, nil
		}
	}
	if k := newestCachedKernel(cacheDir); k != nil {
		logf("vmtest: using cached %s %s: %v", k.Package, k.Version, err)
		return k, nil
	}
	return nil, err
}

// candidateKernel names the kernel package linux-image-amd64 depends on,
// and its version.
func candidateKernel(ctx context.Context) (pkg, version string, err error) {
	stanza, err := aptShow(ctx, kernelMeta)
	if err != nil {
		return "", "", err
	}
	pkg, version, ok := kernelDependency(fieldValue(stanza, "Depends"))
	if !ok {
		return "", "", fmt.Errorf("%s: no linux-image dependency in %q", kernelMeta, fieldValue(stanza, "Depends"))
	}
	if version == "" {
		if stanza, err = aptShow(ctx, pkg); err != nil {
			return "", "", err
		}
		version = fieldValue(stanza, "Version")
	}
	return pkg, version, nil
}

// aptShow returns the candidate version's stanza of pkg, running
// "apt-get update" first if apt knows no such package yet.
func aptShow(ctx context.Context, pkg string) (string, error) {
	out, err := run(ctx, "", "apt-cache", "show", "--no-all-versions", pkg)
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		if os.Geteuid() != 0 {
			return "", fmt.Errorf("%w: apt-cache show %s: %v (apt lists may need an update as root)", ErrUnavailable, pkg, err)
		}
		if err := aptUpdate(ctx); err != nil {
			return "", err
		}
		if out, err = run(ctx, "", "apt-cache", "show", "--no-all-versions", pkg); err != nil {
			return "", err
		}
	}
	return string(out), nil
}

// fieldValue returns a field of a Debian control stanza.
func fieldValue(stanza, key string) string {
	sc := bufio.NewScanner(strings.NewReader(stanza))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// kernelDependency picks "linux-image-X (= V)" out of a Depends field.
func kernelDependency(depends string) (pkg, version string, ok bool) {
	for _, dep := range strings.Split(depends, ",") {
		name, constraint, _ := strings.Cut(strings.TrimSpace(dep), " ")
		if !strings.HasPrefix(name, "linux-image-") {
			continue
		}
		constraint = strings.Trim(constraint, "() ")
		if v, exact := strings.CutPrefix(constraint, "="); exact {
			version = strings.TrimSpace(v)
		}
		return name, version, true
	}
	return "", "", false
}

func readKernel(dir string) (*cachedKernel, error) {
	var k cachedKernel
	if err := readJSON(filepath.Join(dir, "kernel.json"), &k); err != nil {
		return nil, err
	}
	if k.Layout != cacheLayout {
		return nil, fmt.Errorf("read %s: cache layout %d, want %d", dir, k.Layout, cacheLayout)
	}
	k.dir = dir
	return &k, nil
}

// newestCachedKernel returns the most recently fetched usable kernel in
// the cache, or nil.
func newestCachedKernel(cacheDir string) *cachedKernel {
	entries, _ := os.ReadDir(cacheDir)
	var newest *cachedKernel
	var newestTime int64
	for _, e := range entries {
		k, err := readKernel(filepath.Join(cacheDir, e.Name()))
		if err != nil {
			continue
		}
		if info, err := e.Info(); err == nil && (newest == nil || info.ModTime().UnixNano() > newestTime) {
			newest, newestTime = k, info.ModTime().UnixNano()
		}
	}
	return newest
}

// removeOtherKernels deletes the cached kernels but keep: a new kernel
// replaces the old ones.
func removeOtherKernels(cacheDir, keep string) {
	entries, _ := os.ReadDir(cacheDir)
	for _, e := range entries {
		dir := filepath.Join(cacheDir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "kernel.json")); err == nil && dir != keep {
			os.RemoveAll(dir)
		}
	}
}

// fetchKernel downloads pkg, unpacks it in a scratch folder in the cache
// and moves vmlinuz and the modules the groups need to dir.
func fetchKernel(ctx context.Context, cacheDir, dir, pkg, version string, logf func(string, ...any)) (*cachedKernel, error) {
	scratch, err := os.MkdirTemp(cacheDir, ".fetch-")
	if err != nil {
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	defer os.RemoveAll(scratch)
	// apt downloads as its unprivileged _apt user where it can write.
	if err := os.Chmod(scratch, 0o755); err != nil {
		return nil, fmt.Errorf("fetch kernel: %w", err)
	}
	if _, err := run(ctx, scratch, "apt-get", "download", pkg+"="+version); err != nil {
		return nil, fmt.Errorf("download kernel: %w", err)
	}
	debs, _ := filepath.Glob(filepath.Join(scratch, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("download kernel: got %d .deb files", len(debs))
	}
	root := filepath.Join(scratch, "root")
	if _, err := run(ctx, "", "dpkg-deb", "-x", debs[0], root); err != nil {
		return nil, fmt.Errorf("unpack kernel: %w", err)
	}
	stage := filepath.Join(scratch, "kernel")
	k, err := extractKernel(ctx, root, stage, logf)
	if err != nil {
		return nil, err
	}
	k.Package, k.Version = pkg, version
	if err := writeJSON(filepath.Join(stage, "kernel.json"), k); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("replace %s: %w", dir, err)
	}
	if err := os.Rename(stage, dir); err != nil {
		return nil, fmt.Errorf("store kernel: %w", err)
	}
	k.dir = dir
	return k, nil
}

// extractKernel copies vmlinuz and the module groups' modules, with
// their dependencies and uncompressed, from an unpacked kernel package
// at root to stage.
func extractKernel(ctx context.Context, root, stage string, logf func(string, ...any)) (*cachedKernel, error) {
	images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return nil, fmt.Errorf("kernel package: %d vmlinuz images", len(images))
	}
	k := &cachedKernel{
		Layout:  cacheLayout,
		Release: strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-"),
		Groups:  map[string][]string{},
		Modules: map[string]kmodule{},
	}
	if err := os.MkdirAll(filepath.Join(stage, "modules"), 0o755); err != nil {
		return nil, fmt.Errorf("extract kernel: %w", err)
	}
	// Under software emulation the bzImage spends seconds unpacking itself;
	// its uncompressed ELF boots through the PVH entry point at once.
	k.Image = "vmlinux"
	if err := extractPVHImage(ctx, images[0], filepath.Join(stage, k.Image)); err != nil {
		logf("vmtest: booting the bzImage: %v", err)
		k.Image = "vmlinuz"
		if err := copyFile(images[0], filepath.Join(stage, k.Image)); err != nil {
			return nil, fmt.Errorf("extract kernel: %w", err)
		}
	}
	modDir := filepath.Join(root, "lib", "modules", k.Release)
	files, err := indexModules(filepath.Join(modDir, "kernel"))
	if err != nil {
		return nil, err
	}
	builtin, err := builtinModules(filepath.Join(modDir, "modules.builtin"))
	if err != nil {
		return nil, err
	}
	config, err := os.ReadFile(filepath.Join(root, "boot", "config-"+k.Release))
	if err != nil {
		return nil, fmt.Errorf("read kernel config: %w", err)
	}

	// Read each needed module once, learning its dependencies as we go.
	var readErr error
	depends := func(name string) ([]string, bool) {
		if builtin[name] {
			return nil, true
		}
		if m, ok := k.Modules[name]; ok {
			return m.Depends, true
		}
		src, ok := files[name]
		if !ok {
			return nil, false
		}
		m, err := extractModule(ctx, src, stage, name)
		if err != nil {
			readErr = errors.Join(readErr, err)
			return nil, true
		}
		k.Modules[name] = m
		return m.Depends, true
	}
	for group, roots := range moduleGroups {
		if group == groupDisk {
			roots = append(slices.Clone(roots), fatNLSModules(config)...)
		}
		order, err := dependencyOrder(roots, depends)
		if err != nil {
			return nil, err
		}
		if readErr != nil {
			return nil, readErr
		}
		for _, name := range order {
			if !builtin[name] {
				k.Groups[group] = append(k.Groups[group], name)
			}
		}
	}
	return k, nil
}

// indexModules maps module names (with underscores) to their files,
// compressed or not.
func indexModules(dir string) (map[string]string, error) {
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name, ok := moduleName(d.Name()); ok && d.Type().IsRegular() {
			files[name] = path
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules: %w", err)
	}
	return files, nil
}

// moduleName turns "virtio-rng.ko.xz" into "virtio_rng".
func moduleName(file string) (string, bool) {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if base, ok := strings.CutSuffix(file, ext); ok {
			return strings.ReplaceAll(base, "-", "_"), true
		}
	}
	return "", false
}

// builtinModules reads modules.builtin: the modules compiled into the
// kernel, which need no loading.
func builtinModules(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read modules.builtin: %w", err)
	}
	builtin := map[string]bool{}
	for _, line := range strings.Fields(string(data)) {
		if name, ok := moduleName(filepath.Base(line)); ok {
			builtin[name] = true
		}
	}
	return builtin, nil
}

// fatNLSModules names the code page and character set modules vfat loads
// by default, from the kernel config, plus nls_utf8 for iocharset=utf8.
func fatNLSModules(config []byte) []string {
	mods := []string{"nls_utf8"}
	sc := bufio.NewScanner(bytes.NewReader(config))
	for sc.Scan() {
		key, value, _ := strings.Cut(sc.Text(), "=")
		value = strings.Trim(value, `"`)
		switch key {
		case "CONFIG_FAT_DEFAULT_CODEPAGE":
			mods = append(mods, "nls_cp"+value)
		case "CONFIG_FAT_DEFAULT_IOCHARSET":
			mods = append(mods, "nls_"+strings.ReplaceAll(value, "-", "_"))
		}
	}
	slices.Sort(mods)
	return slices.Compact(mods)
}

// extractModule writes the module at src, uncompressed, to
// stage/modules/name.ko and reads its dependencies.
func extractModule(ctx context.Context, src, stage, name string) (kmodule, error) {
	data, err := readModule(ctx, src)
	if err != nil {
		return kmodule{}, fmt.Errorf("module %s: %w", name, err)
	}
	deps, err := modinfoDepends(data)
	if err != nil {
		return kmodule{}, fmt.Errorf("module %s: %w", name, err)
	}
	rel := filepath.Join("modules", name+".ko")
	if err := os.WriteFile(filepath.Join(stage, rel), data, 0o644); err != nil {
		return kmodule{}, fmt.Errorf("module %s: %w", name, err)
	}
	return kmodule{File: rel, Depends: deps}, nil
}

// readModule reads a .ko, uncompressing .ko.gz in Go and .ko.xz and
// .ko.zst with the xz and zstd tools.
func readModule(ctx context.Context, path string) ([]byte, error) {
	switch {
	case strings.HasSuffix(path, ".gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(path, ".xz"):
		return decompressWith(ctx, "xz", path)
	case strings.HasSuffix(path, ".zst"):
		return decompressWith(ctx, "zstd", path)
	default:
		return os.ReadFile(path)
	}
}

// decompressWith runs "tool -dc [args] path".
func decompressWith(ctx context.Context, tool, path string, args ...string) ([]byte, error) {
	if err := needCommands(tool); err != nil {
		return nil, err
	}
	return run(ctx, "", tool, append(append([]string{"-dc"}, args...), path)...)
}

// modinfoDepends reads the depends= entry of a module's .modinfo section.
func modinfoDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, fmt.Errorf("parse ELF: %w", err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	info, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo: %w", err)
	}
	for _, entry := range bytes.Split(info, []byte{0}) {
		if v, ok := bytes.CutPrefix(entry, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			deps := strings.Split(string(v), ",")
			for i, d := range deps {
				deps[i] = strings.ReplaceAll(d, "-", "_")
			}
			return deps, nil
		}
	}
	return nil, nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}
