// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"bytes"
	"context"
	"encoding/json"
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

	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
)

// ErrUnavailable is wrapped by the errors of a lab that cannot run on this
// machine as it is (a package is missing, no kernel can be had). Tests
// skip on it; everything else is a failure.
var ErrUnavailable = errors.New("vm lab unavailable")

// CacheEnv names the environment variable that moves the project's cache
// folder; the lab keeps its files in its vmtest subfolder.
const CacheEnv = "ENTROPY_GATE_CACHE"

// hostTools are the commands the lab runs; .ci/test-deps installs their
// Debian packages. xz unpacks the kernel ELF from Debian's bzImage.
var hostTools = []string{"qemu-system-x86_64", "cpio", "sgdisk", "mkfs.vfat", "mcopy", "xz"}

// CheckTools returns an error wrapping ErrUnavailable, naming what to
// install, when a host command of the lab is missing. The lab never
// installs packages itself.
func CheckTools() error {
	return needCommands(hostTools...)
}

// RequireTools skips the test when a host command of the lab is missing.
func RequireTools(t testing.TB) {
	t.Helper()
	if err := CheckTools(); err != nil {
		t.Skip(err)
	}
}

// needCommands is testenv.Missing as a lab error.
func needCommands(commands ...string) error {
	if err := testenv.Missing(commands...); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// toolPath finds a host command (see testenv.LookCommand); a missing one
// is an error wrapping ErrUnavailable that says how to install it.
func toolPath(name string) (string, error) {
	path, err := testenv.LookCommand(name)
	if err != nil {
		return "", needCommands(name)
	}
	return path, nil
}

// apt remembers whether this process ran "apt-get update" already.
var apt struct {
	mu      sync.Mutex
	updated bool
}

// aptUpdate runs "apt-get update" once per process, when root, so that
// apt knows the current kernel package to download.
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

// readJSON reads the JSON file path, a cache's record, into v.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// writeJSON writes v, indented, to the file path.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
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
