package notifier

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// Waiter sleeps until the kernel RNG may have changed in the way that
// matters next.
type Waiter interface {
	// Wait returns nil once /dev/random asserts events (unix.POLLIN or
	// unix.POLLOUT), or ctx's error once ctx is done.
	Wait(ctx context.Context, events int16) error
}

// wakeup is what can end the wait for the next change that would alter
// the verdict about the kernel.
type wakeup struct {
	// events are the poll events on /dev/random that signal it, 0 if
	// none does.
	events int16
	// periodic: no event signals it, so re-check every fallback interval.
	periodic bool
}

// planWakeup chooses what to wait for, per DESIGN.md's table of what poll
// on /dev/random means. low is the Decider's hysteresis state.
//
//   - Not initialized: POLLIN means "ready" where GRND_INSECURE exists
//     (5.6+); before, POLLIN only means entropy_avail reached
//     read_wakeup_threshold, so only re-checking tells.
//   - Initialized: the CRNG never goes back, so a modern kernel needs no
//     wake-up at all. A legacy pool's entropy_avail can still fall: POLLOUT
//     means it is below write_wakeup_threshold, which signals a fall below
//     the low mark only if that threshold is at or above the mark and not
//     already crossed; nothing signals a rise.
func planWakeup(f Facts, p Policy, low bool) wakeup {
	switch f.Readiness {
	case pool.NotReady:
		if f.Kernel.PollMeansReady {
			return wakeup{events: unix.POLLIN}
		}
		return wakeup{periodic: true}
	case pool.Unknown:
		return wakeup{periodic: true}
	}
	k := f.Kernel
	if k.Semantics != pool.Legacy || p.EntropyLow <= 0 || k.EntropyAvail < 0 {
		return wakeup{}
	}
	if !low && k.WriteWakeupThreshold >= p.EntropyLow && k.EntropyAvail >= k.WriteWakeupThreshold {
		return wakeup{events: unix.POLLOUT}
	}
	return wakeup{periodic: true}
}

// RandomDevice waits for poll events on /dev/random in the Go runtime's
// netpoller (epoll): no thread sleeps in poll and no timer runs.
type RandomDevice struct {
	f   *os.File
	raw syscall.RawConn
}

var _ Waiter = (*RandomDevice)(nil)

// ErrNotPollable means the device cannot be waited on without a thread of
// its own; callers fall back to periodic checks.
var ErrNotPollable = errors.New("not pollable")

// OpenRandom opens devRoot/random (devRoot is normally "/dev").
func OpenRandom(devRoot string) (*RandomDevice, error) {
	f, err := os.OpenFile(filepath.Join(devRoot, "random"), os.O_RDONLY|unix.O_NONBLOCK, 0)
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

// Wait implements Waiter. The netpoller is edge-triggered, so Wait checks
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
