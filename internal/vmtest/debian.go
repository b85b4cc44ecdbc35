// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// debsDir is the cache subfolder of unpacked Debian packages, one folder
// per package and version.
const debsDir = "debs"

// librarySearchPath is where Debian's dynamic loader looks for a library
// without an ld.so.cache, in its order; the guest has no cache.
var librarySearchPath = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"}

// DebianProgram returns the Config.Files entries that run a dynamically
// linked program from Debian packages in the guest: the program at its
// real path (e.g. /usr/sbin/haveged), every shared library it needs,
// transitively, and the dynamic loader. pkgs are the packages that ship
// the program and the libraries the host lacks (haveged needs
// libhavege2); each is downloaded with apt-get and unpacked into the
// cache once per version. The other libraries, such as libc, come from
// the host, which runs the same Debian release.
func (l *Lab) DebianProgram(ctx context.Context, program string, pkgs ...string) (map[string]string, error) {
	var roots []string
	for _, pkg := range pkgs {
		root, err := debianPackage(ctx, filepath.Join(l.cacheDir, debsDir), pkg)
		if err != nil {
			return nil, err
		}
		roots = append(roots, root)
	}
	return programFiles(program, append(roots, "/"))
}

// debianPackage returns the folder the candidate version of pkg is
// unpacked in, downloading and unpacking it the first time. When apt
// cannot name the candidate (offline, no root for an update), a version
// already in the cache is used.
func debianPackage(ctx context.Context, cacheDir, pkg string) (string, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("debian package %s: %w", pkg, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(cacheDir, "debs.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	stanza, err := aptShow(ctx, pkg)
	if err != nil {
		cached, _ := filepath.Glob(filepath.Join(cacheDir, pkg+"_*"))
		if len(cached) == 0 {
			return "", fmt.Errorf("debian package %s: %w", pkg, err)
		}
		return cached[len(cached)-1], nil
	}
	version := fieldValue(stanza, "Version")
	if version == "" {
		return "", fmt.Errorf("debian package %s: apt names no version", pkg)
	}
	dir := filepath.Join(cacheDir, pkg+"_"+version)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}

	scratch, err := os.MkdirTemp(cacheDir, ".fetch-")
	if err != nil {
		return "", fmt.Errorf("debian package %s: %w", pkg, err)
	}
	defer os.RemoveAll(scratch)
	// apt downloads as its unprivileged _apt user where it can write.
	if err := os.Chmod(scratch, 0o755); err != nil {
		return "", fmt.Errorf("debian package %s: %w", pkg, err)
	}
	if _, err := run(ctx, scratch, "apt-get", "download", pkg+"="+version); err != nil {
		return "", fmt.Errorf("download %s: %w", pkg, err)
	}
	debs, _ := filepath.Glob(filepath.Join(scratch, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("download %s: got %d .deb files", pkg, len(debs))
	}
	root := filepath.Join(scratch, "root")
	if _, err := run(ctx, "", "dpkg-deb", "-x", debs[0], root); err != nil {
		return "", fmt.Errorf("unpack %s: %w", pkg, err)
	}
	// The rename makes the folder appear complete or not at all.
	if err := os.Rename(root, dir); err != nil {
		return "", fmt.Errorf("store %s: %w", pkg, err)
	}
	return dir, nil
}

// programFiles maps the guest paths of program, the shared libraries it
// needs (DT_NEEDED, transitively) and its dynamic loader (PT_INTERP) to
// host files. roots are file system trees laid over each other, searched
// in order: the first tree that holds a path provides it.
func programFiles(program string, roots []string) (map[string]string, error) {
	files := map[string]string{}
	host, ok := findIn(roots, program)
	if !ok {
		return nil, fmt.Errorf("program %s: not in %s", program, strings.Join(roots, ", "))
	}
	files[program] = host

	queue := []string{host}
	found := map[string]bool{}
	for len(queue) > 0 {
		obj := queue[0]
		queue = queue[1:]
		interp, needed, err := dynamicInfo(obj)
		if err != nil {
			return nil, fmt.Errorf("program %s: %w", program, err)
		}
		if obj == host && interp != "" {
			if files[interp], ok = findIn(roots, interp); !ok {
				return nil, fmt.Errorf("program %s: dynamic loader %s not found", program, interp)
			}
		}
		for _, lib := range needed {
			if found[lib] {
				continue
			}
			guestPath, hostPath, ok := findLibrary(roots, lib)
			if !ok {
				return nil, fmt.Errorf("program %s: library %s (needed by %s) not found", program, lib, filepath.Base(obj))
			}
			found[lib] = true
			files[guestPath] = hostPath
			queue = append(queue, hostPath)
		}
	}
	return files, nil
}

// findLibrary looks for a library in the loader's search path of each
// root and returns its guest and host paths.
func findLibrary(roots []string, name string) (guestPath, hostPath string, ok bool) {
	for _, root := range roots {
		for _, dir := range librarySearchPath {
			guestPath := path.Join(dir, name)
			if hostPath, ok := findIn([]string{root}, guestPath); ok {
				return guestPath, hostPath, true
			}
		}
	}
	return "", "", false
}

// findIn returns the host path of guestPath in the first root that has
// it as a regular file (or a symbolic link to one).
func findIn(roots []string, guestPath string) (string, bool) {
	for _, root := range roots {
		p := filepath.Join(root, guestPath)
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			return p, true
		}
	}
	return "", false
}

// dynamicInfo returns an ELF file's dynamic loader (PT_INTERP, "" if
// statically linked) and the libraries it needs (DT_NEEDED).
func dynamicInfo(file string) (interp string, needed []string, err error) {
	f, err := elf.Open(file)
	if err != nil {
		return "", nil, fmt.Errorf("read ELF: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", nil, fmt.Errorf("read %s: interpreter: %w", file, err)
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if needed, err = f.ImportedLibraries(); err != nil {
		return "", nil, fmt.Errorf("read %s: libraries: %w", file, err)
	}
	return interp, needed, nil
}
