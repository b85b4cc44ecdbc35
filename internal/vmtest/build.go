// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// guestInitPackage is the guest's /init.
const guestInitPackage = "gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/guestinit"

// Build compiles the Go package pkg into a static linux/amd64 binary in
// dir and returns its path. pkg is what "go build" takes, a relative path
// like ./cmd/entropy-gate meaning a folder of the module root.
func Build(ctx context.Context, pkg, dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out, err := filepath.Abs(filepath.Join(dir, path.Base(pkg)))
	if err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w: %s", pkg, err, strings.TrimSpace(output.String()))
	}
	return out, nil
}

// MakeInstall runs "make install" of the module into destDir, as a
// package build would (PREFIX=/usr), building in buildDir so that runs at
// the same time never share a build. Without make, msgfmt or go-md2man
// the error wraps ErrUnavailable.
func MakeInstall(ctx context.Context, destDir, buildDir string) error {
	if err := needCommands("make", "msgfmt", "go-md2man"); err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if _, err := run(ctx, "", "make", "-s", "-C", root, "install", "DESTDIR="+destDir, "PREFIX=/usr",
		"OUT="+filepath.Join(buildDir, "bin"), "LOCALEOUT="+filepath.Join(buildDir, "locale"), "MANOUT="+filepath.Join(buildDir, "man")); err != nil {
		return fmt.Errorf("make install: %w", err)
	}
	return nil
}

// MakeDeb runs "make deb" of the module into outDir and returns the path of
// the entropy-gate .deb there (the .changes file lies beside it). Without
// the packaging tools the error wraps ErrUnavailable.
func MakeDeb(ctx context.Context, outDir string) (string, error) {
	if err := needCommands("make", "dpkg-buildpackage", "dh", "go-md2man", "msgfmt", "pkg-config"); err != nil {
		return "", err
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	if _, err := run(ctx, "", "make", "-s", "-C", root, "deb", "DEBOUT="+outDir); err != nil {
		return "", fmt.Errorf("make deb: %w", err)
	}
	found, err := filepath.Glob(filepath.Join(outDir, "entropy-gate_*.deb"))
	if err != nil || len(found) != 1 {
		return "", fmt.Errorf("make deb: want one entropy-gate .deb in %s, found %v", outDir, found)
	}
	return found[0], nil
}
