// SPDX-License-Identifier: GPL-3.0-or-later

package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RandomDevice waits for poll events on /dev/random in the Go runtime's
// netpoller (epoll): no thread sleeps in poll and no timer runs.
type RandomDevice struct {
	f   *os.File
	raw syscall.RawConn
}

// ErrNotPollable means the device cannot be waited on without a thread of
// its own; callers fall back to periodic checks.
var ErrNotPollable = errors.New("not pollable")

// OpenRandom opens the random device under the dev root.
func OpenRandom(roots Roots) (*RandomDevice, error) {
	f, err := os.OpenFile(roots.DevPath("random"), os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open random device: %w", err)
	}
	// Deadlines work only on files in the netpoller.
	if err := f.SetDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("open random device: %w: %w", ErrNotPollable, err)
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open random device: %w", err)
	}
	return &RandomDevice{f: f, raw: raw}, nil
}

// Close closes the device.
func (r *RandomDevice) Close() error { return r.f.Close() }

// Wait returns nil once the device asserts any of events (unix.POLLIN
// or unix.POLLOUT), or ctx's error once ctx is done. The netpoller is edge-triggered, so Wait checks
// the level with a zero-timeout poll before every sleep and after every
// wake-up: an event asserted before the call returns at once, and a stale
// edge does not end the wait.
func (r *RandomDevice) Wait(ctx context.Context, events int16) error {
	if err := r.f.SetDeadline(time.Time{}); err != nil {
		return fmt.Errorf("wait on random device: %w", err)
	}
	expired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		// A deadline in the past wakes the waiting goroutine.
		r.f.SetDeadline(time.Unix(1, 0))
		close(expired)
	})
	asserted := func(fd uintptr) bool { return pollNow(int(fd), events) }
	var err error
	if events&unix.POLLOUT != 0 {
		err = r.raw.Write(asserted)
	} else {
		err = r.raw.Read(asserted)
	}
	if !stop() {
		<-expired // the next Wait must not see this deadline
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("wait on random device: %w", err)
	}
	return nil
}

// pollNow reports whether fd asserts any of events right now.
func pollNow(fd int, events int16) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n > 0 && fds[0].Revents&events != 0
	}
}
