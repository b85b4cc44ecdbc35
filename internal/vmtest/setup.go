package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by the errors of a lab that cannot run on this
// machine as it is (a package is missing and we are not root, no kernel
// can be had). Tests skip on it; everything else is a failure.
var ErrUnavailable = errors.New("vm lab unavailable")

// CacheEnv names the environment variable that moves the project's cache
// folder; the lab keeps its files in its vmtest subfolder.
const CacheEnv = "ENTROPY_GATE_CACHE"

// hostTools are the commands the lab runs and the Debian packages that
// ship them.
var hostTools = []struct{ command, pkg string }{
	{"qemu-system-x86_64", "qemu-system-x86"},
	{"cpio", "cpio"},
	{"sgdisk", "gdisk"},
	{"mkfs.vfat", "dosfstools"},
	{"mcopy", "mtools"},
	{"xz", "xz-utils"}, // unpacks the kernel ELF from Debian's bzImage
}

// apt remembers whether this process ran "apt-get update" already.
var apt struct {
	mu      sync.Mutex
	updated bool
}

// InstallTools makes sure the lab's host commands are installed,
// installing the missing Debian packages when running as root. A missing
// package without root gives an error wrapping ErrUnavailable.
func InstallTools(ctx context.Context) error {
	var missing []string
	for _, tool := range hostTools {
		if _, err := toolPath(tool.command); err != nil {
			missing = append(missing, tool.pkg)
		}
	}
	return installPackages(ctx, missing...)
}

// RequireTools is InstallTools for tests: it skips the test when the
// tools cannot be had and fails it on any other error.
func RequireTools(t testing.TB) {
	t.Helper()
	if err := InstallTools(context.Background()); errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
}

// ensureCommand installs the Debian package pkg if command is missing.
func ensureCommand(ctx context.Context, command, pkg string) error {
	if _, err := toolPath(command); err == nil {
		return nil
	}
	return installPackages(ctx, pkg)
}

// installPackages installs Debian packages without their recommends,
// updating the package lists first, once per process. It needs root.
func installPackages(ctx context.Context, pkgs ...string) error {
	if len(pkgs) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: missing Debian packages %s: installing them needs root",
			ErrUnavailable, strings.Join(pkgs, " "))
	}
	if err := aptUpdate(ctx); err != nil {
		return err
	}
	// Wait for dpkg's lock: test processes of other packages may install too.
	args := append([]string{"-o", "DPkg::Lock::Timeout=300", "install", "-y", "--no-install-recommends"}, pkgs...)
	if _, err := run(ctx, "", "apt-get", args...); err != nil {
		return fmt.Errorf("install %s: %w", strings.Join(pkgs, " "), err)
	}
	return nil
}

// aptUpdate runs "apt-get update" once per process, when root.
func aptUpdate(ctx context.Context) error {
	apt.mu.Lock()
	defer apt.mu.Unlock()
	if apt.updated || os.Geteuid() != 0 {
		return nil
	}
	if _, err := run(ctx, "", "apt-get", "update"); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	apt.updated = true
	return nil
}

// toolPath finds a command in PATH or in the sbin folders, which are not
// in an ordinary user's PATH but hold sgdisk and mkfs.vfat.
func toolPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: command %s not found", ErrUnavailable, name)
}

// run runs a host command in dir and returns its standard output. The
// error holds the command's standard error.
func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	path, err := toolPath(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C", "MTOOLS_SKIP_CHECK=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err,
			strings.TrimSpace(lastBytes(stderr.String(), 2000)))
	}
	return stdout.Bytes(), nil
}

// moduleRoot returns the folder of the go.mod that holds the working
// directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// defaultCacheDir is $ENTROPY_GATE_CACHE/vmtest, or .cache/vmtest in the
// module root (git-ignored).
func defaultCacheDir() (string, error) {
	if dir := os.Getenv(CacheEnv); dir != "" {
		return filepath.Join(dir, "vmtest"), nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "vmtest"), nil
}

// lockFile takes an exclusive flock on path, polling so ctx can cancel
// the wait. Locks on different open files conflict within one process as
// well as across processes. The file is opened read-only, which is all
// flock needs, so a user can share a cache another user filled.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lastBytes returns the end of s, at most n bytes, starting at a line.
func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
