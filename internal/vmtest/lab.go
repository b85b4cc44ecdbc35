// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// Options configure Prepare.
type Options struct {
	// CacheDir holds the kernel between runs; default
	// $ENTROPY_GATE_CACHE/vmtest, or .cache/vmtest in the module root.
	CacheDir string
	// Logf, if set, hears about slow preparation steps (downloads, the
	// first build of BootSystemd's Debian system).
	Logf func(format string, args ...any)
}

// Lab boots guests. It holds a cached Debian kernel, the guest init and
// a scratch folder for the binaries it builds.
type Lab struct {
	kernel    *cachedKernel
	cacheDir  string
	workDir   string
	guestInit string
	logf      func(format string, args ...any)

	mu    sync.Mutex
	built map[string]string // package → binary

	systemMu     sync.Mutex
	debianSystem *cachedSystem // BootSystemd's, once prepared
}

// Prepare makes a lab outside tests: it checks the host commands, fetches
// the kernel into the cache once and builds the guest init. Close removes the lab's scratch folder.
func Prepare(ctx context.Context, opts Options) (*Lab, error) {
	workDir, err := os.MkdirTemp("", "vmtest-")
	if err != nil {
		return nil, fmt.Errorf("prepare lab: %w", err)
	}
	kernel, cacheDir, err := prepareKernel(ctx, opts)
	if err == nil {
		var lab *Lab
		if lab, err = newLab(ctx, kernel, cacheDir, workDir, opts.Logf); err == nil {
			return lab, nil
		}
	}
	os.RemoveAll(workDir)
	return nil, err
}

// Close removes the lab's scratch folder.
func (l *Lab) Close() error {
	return os.RemoveAll(l.workDir)
}

// shared is the kernel preparation of New, done once per test process.
var shared struct {
	once     sync.Once
	kernel   *cachedKernel
	cacheDir string
	err      error
}

// New returns a lab for a test, preparing the kernel once per process.
// It skips the test in -short mode and when the lab is unavailable here
// (ErrUnavailable), and fails it on any other error.
func New(t testing.TB) *Lab {
	t.Helper()
	if testing.Short() {
		t.Skip("vmtest: boots a VM: skipped in -short mode")
	}
	shared.once.Do(func() {
		shared.kernel, shared.cacheDir, shared.err = prepareKernel(context.Background(), Options{Logf: t.Logf})
	})
	if errors.Is(shared.err, ErrUnavailable) {
		t.Skip(shared.err)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	lab, err := newLab(context.Background(), shared.kernel, shared.cacheDir, t.TempDir(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	return lab
}

// prepareKernel checks the host tools and loads the kernel.
func prepareKernel(ctx context.Context, opts Options) (*cachedKernel, string, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		var err error
		if cacheDir, err = defaultCacheDir(); err != nil {
			return nil, "", err
		}
	}
	if err := CheckTools(); err != nil {
		return nil, "", err
	}
	kernel, err := loadKernel(ctx, cacheDir, logf)
	if err != nil {
		return nil, "", err
	}
	return kernel, cacheDir, nil
}

func newLab(ctx context.Context, kernel *cachedKernel, cacheDir, workDir string, logf func(string, ...any)) (*Lab, error) {
	guestInit, err := Build(ctx, guestInitPackage, workDir)
	if err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Lab{kernel: kernel, cacheDir: cacheDir, workDir: workDir, guestInit: guestInit, logf: logf, built: map[string]string{}}, nil
}

// Kernel names the Debian kernel a lab boots.
type Kernel struct {
	Package string // e.g. linux-image-6.1.0-56-amd64
	Version string // the package version, e.g. 6.1.192-2
	Release string // uname -r, e.g. 6.1.0-56-amd64
	Image   string // the file QEMU boots
}

// Kernel returns the kernel the lab boots.
func (l *Lab) Kernel() Kernel {
	return Kernel{Package: l.kernel.Package, Version: l.kernel.Version, Release: l.kernel.Release, Image: l.kernel.ImagePath()}
}

// Build compiles a Go package (see Build) into the lab's scratch folder,
// once per lab, and returns the binary's path for Config.Files.
func (l *Lab) Build(ctx context.Context, pkg string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if bin, ok := l.built[pkg]; ok {
		return bin, nil
	}
	dir, err := os.MkdirTemp(l.workDir, "bin-")
	if err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	bin, err := Build(ctx, pkg, dir)
	if err != nil {
		return "", err
	}
	l.built[pkg] = bin
	return bin, nil
}
