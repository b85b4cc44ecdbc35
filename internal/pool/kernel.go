// SPDX-License-Identifier: GPL-3.0-or-later

package pool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernel is the real Pool: getrandom and ioctls on the running kernel, and
// counters read from a proc tree.
type Kernel struct {
	roots Roots

	// insecureWorks reports whether getrandom accepts GRND_INSECURE.
	// It is a field so fixture tests do not depend on the host kernel.
	insecureWorks func() bool
}

var _ Pool = (*Kernel)(nil)

// NewKernel returns the Pool of the running kernel, reading counters under
// the proc root and opening random devices under the dev root.
func NewKernel(roots Roots) *Kernel {
	return &Kernel{
		roots:         roots,
		insecureWorks: sync.OnceValue(probeInsecure),
	}
}

// Ready asks getrandom, without blocking and without GRND_RANDOM (which
// reports "ready" falsely before 5.6), whether the CRNG is initialized.
func (k *Kernel) Ready() (Readiness, error) {
	_, err := unix.Getrandom(nil, unix.GRND_NONBLOCK)
	return readinessFromErr(err)
}

// readinessFromErr maps a zero-length getrandom(GRND_NONBLOCK) result to
// a readiness: only success means ready.
func readinessFromErr(err error) (Readiness, error) {
	switch {
	case err == nil:
		return Ready, nil
	case errors.Is(err, unix.EAGAIN):
		return NotReady, nil
	case errors.Is(err, unix.ENOSYS):
		return Unknown, fmt.Errorf("%w: getrandom not implemented by this kernel", ErrUnknownReadiness)
	case errors.Is(err, unix.EPERM):
		return Unknown, fmt.Errorf("%w: getrandom forbidden (seccomp filter?)", ErrUnknownReadiness)
	default:
		return Unknown, fmt.Errorf("%w: getrandom: %w", ErrUnknownReadiness, err)
	}
}

// probeInsecure tells whether GRND_INSECURE exists (5.6 and later). The
// same kernels made POLLIN on /dev/random mean "CRNG ready".
func probeInsecure() bool {
	var b [1]byte
	_, err := unix.Getrandom(b[:], unix.GRND_INSECURE)
	return err == nil
}

// State reads entropy_avail, poolsize and write_wakeup_threshold. A
// missing file is an unknown counter (-1), not an error.
func (k *Kernel) State() (State, error) {
	var errs []error
	read := func(name string) int {
		n, err := readCounter(k.roots.ProcPath("sys/kernel/random", name))
		if err != nil {
			errs = append(errs, err)
		}
		return n
	}
	s := State{
		EntropyAvail:         read("entropy_avail"),
		PoolSize:             read("poolsize"),
		WriteWakeupThreshold: read("write_wakeup_threshold"),
		PollMeansReady:       k.insecureWorks(),
	}
	s.Semantics = detectSemantics(s.PoolSize, s.PollMeansReady)
	return s, errors.Join(errs...)
}

// detectSemantics decides the accounting from the pool size, and where
// that is unknown from GRND_INSECURE: a kernel without it predates 5.6 and
// so has the legacy pool. A kernel with it may be either.
func detectSemantics(poolSize int, insecureWorks bool) Semantics {
	switch {
	case poolSize == LegacyPoolSize:
		return Legacy
	case poolSize == ModernPoolSize:
		return Modern
	case !insecureWorks:
		return Legacy
	default:
		return SemanticsUnknown
	}
}

// readCounter reads a /proc file holding one non-negative integer. It
// returns -1 and no error when the file does not exist.
func readCounter(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return -1, fmt.Errorf("parse %s: not a non-negative integer: %q", filepath.Base(path), truncate(b, 32))
	}
	return n, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// Wait returns once the CRNG is initialized. See WaitMode for what the
// modes cost. An Active wait that is cancelled leaves a goroutine blocked
// in getrandom until the kernel is ready; that is harmless and unavoidable
// since the system call cannot be interrupted from Go.
func (k *Kernel) Wait(ctx context.Context, mode WaitMode) error {
	if r, err := k.Ready(); r == Ready {
		return nil
	} else if r == Unknown {
		return err
	}
	if mode == Active {
		return k.waitActive(ctx)
	}
	if k.insecureWorks() {
		return k.waitPoll(ctx)
	}
	return k.waitProbing(ctx)
}

func (k *Kernel) waitActive(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		var b [1]byte
		for {
			_, err := unix.Getrandom(b[:], 0)
			if !errors.Is(err, unix.EINTR) {
				done <- err
				return
			}
		}
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: blocking getrandom: %w", ErrUnknownReadiness, err)
		}
		return nil
	}
}

// waitPoll sleeps on /dev/random, where POLLIN means the CRNG is ready,
// in the runtime's netpoller, so cancellation wakes it.
func (k *Kernel) waitPoll(ctx context.Context) error {
	random, err := OpenRandom(k.roots)
	if err != nil {
		// No device node (a minimal container), or one epoll cannot
		// wait on: probing still works.
		return k.waitProbing(ctx)
	}
	defer random.Close()
	if err := random.Wait(ctx, unix.POLLIN); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("poll /dev/random: %w", err)
	}
	// POLLIN is the kernel's hint; getrandom has the final word. If they
	// ever disagree, fall back to probing rather than spinning in poll.
	if r, _ := k.Ready(); r == Ready {
		return nil
	}
	return k.waitProbing(ctx)
}

// Backoff bounds for probing readiness where poll cannot tell it.
const (
	probeFirstDelay = 10 * time.Millisecond
	probeMaxDelay   = time.Second
)

func (k *Kernel) waitProbing(ctx context.Context) error {
	delay := probeFirstDelay
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		switch r, err := k.Ready(); r {
		case Ready:
			return nil
		case Unknown:
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		delay = min(2*delay, probeMaxDelay)
		timer.Reset(delay)
	}
}

// Credit adds seed to the pool with RNDADDENTROPY, crediting bits.
func (k *Kernel) Credit(seed []byte, bits int) error {
	info, err := randPoolInfo(seed, bits)
	if err != nil {
		return err
	}
	defer clear(info)
	f, err := os.OpenFile(k.roots.DevPath("urandom"), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("credit: %w", err)
	}
	defer f.Close()
	raw, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("credit: %w", err)
	}
	var errno unix.Errno
	if err := raw.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&info[0])))
	}); err != nil {
		return fmt.Errorf("credit: %w", err)
	}
	runtime.KeepAlive(info)
	if errno != 0 {
		if errno == unix.EPERM {
			return fmt.Errorf("credit: RNDADDENTROPY: %w (needs CAP_SYS_ADMIN)", errno)
		}
		return fmt.Errorf("credit: RNDADDENTROPY: %w", errno)
	}
	return nil
}

// ErrBadCredit is returned when a credit claims more bits than the seed
// holds, or none of them.
var ErrBadCredit = errors.New("bad credit")

// randPoolInfo lays out struct rand_pool_info: int entropy_count (bits),
// int buf_size (bytes), then the bytes. Both counts are C ints, 32 bits on
// every Linux architecture, in native byte order.
func randPoolInfo(seed []byte, bits int) ([]byte, error) {
	if len(seed) == 0 || bits < 0 || bits > 8*len(seed) {
		return nil, fmt.Errorf("%w: %d bits for %d bytes", ErrBadCredit, bits, len(seed))
	}
	info := make([]byte, 8+len(seed))
	binary.NativeEndian.PutUint32(info[0:4], uint32(bits))
	binary.NativeEndian.PutUint32(info[4:8], uint32(len(seed)))
	copy(info[8:], seed)
	return info, nil
}

// Random fills buf with getrandom(GRND_INSECURE), which never blocks, or
// from /dev/urandom on kernels before 5.6 that lack the flag.
func (k *Kernel) Random(buf []byte) error {
	for filled := 0; filled < len(buf); {
		n, err := unix.Getrandom(buf[filled:], unix.GRND_INSECURE)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EINVAL):
			return k.readURandom(buf[filled:])
		case err != nil:
			return fmt.Errorf("getrandom: %w", err)
		}
		filled += n
	}
	return nil
}

func (k *Kernel) readURandom(buf []byte) error {
	f, err := os.Open(k.roots.DevPath("urandom"))
	if err != nil {
		return fmt.Errorf("random: %w", err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, buf); err != nil {
		return fmt.Errorf("random: %w", err)
	}
	return nil
}

// Mix writes seed to /dev/urandom, which stirs it into the pool without
// crediting any entropy. Any user may do this.
func (k *Kernel) Mix(seed []byte) error {
	f, err := os.OpenFile(k.roots.DevPath("urandom"), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("mix: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(seed); err != nil {
		return fmt.Errorf("mix: %w", err)
	}
	return nil
}
