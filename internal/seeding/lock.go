// SPDX-License-Identifier: GPL-3.0-or-later

package seeding

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultLockPath serialises seed operations of every process this boot:
// two loads at once (the initramfs script and a manual `seed load`, the
// seed unit and the gate) could each credit the same seed before either
// wrote its replacement.
const DefaultLockPath = "/run/entropy-gate/seed.lock"

// ErrLocked means another process kept the seeds locked until ctx was done.
var ErrLocked = errors.New("another entropy-gate process is using the seeds")

// Lock takes the seed lock at path, waiting until ctx is done; an empty
// path takes no lock. The lock goes with the process: unlock, or exit.
func Lock(ctx context.Context, path string) (unlock func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("seed lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("seed lock: %w", err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("seed lock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ErrLocked
		case <-tick.C:
		}
	}
}
