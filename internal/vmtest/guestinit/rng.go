// SPDX-License-Identifier: GPL-3.0-or-later

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

const entropyAvailPath = "/proc/sys/kernel/random/entropy_avail"

// probe reports whether the CRNG is initialized, by getrandom's word: a
// zero-length GRND_NONBLOCK call succeeds once it is and fails with
// EAGAIN before. It also returns entropy_avail as the kernel prints it.
func probe() (ready bool, entropyAvail string, err error) {
	_, _, errno := unix.Syscall(unix.SYS_GETRANDOM, 0, 0, unix.GRND_NONBLOCK)
	switch errno {
	case 0:
		ready = true
	case unix.EAGAIN:
	default:
		return false, "", fmt.Errorf("getrandom: %w", errno)
	}
	avail, err := os.ReadFile(entropyAvailPath)
	if err != nil {
		return false, "", fmt.Errorf("read entropy_avail: %w", err)
	}
	return ready, strings.TrimSpace(string(avail)), nil
}

// credit hands bits/8 bytes to the kernel with RNDADDENTROPY, crediting
// bits, and emits an event as soon as the ioctl returns. The event carries
// the ioctl's start: the kernel turns ready inside the ioctl, so a waiter
// can wake, and its event be stamped, before this one is.
func (g *guest) credit(step, bits int) error {
	if bits <= 0 {
		return errors.New("credit: bits must be positive")
	}
	size := (bits + 7) / 8
	// struct rand_pool_info: int entropy_count (bits), int buf_size
	// (bytes), then the bytes.
	req := make([]byte, 8+size)
	binary.NativeEndian.PutUint32(req[0:4], uint32(bits))
	binary.NativeEndian.PutUint32(req[4:8], uint32(size))
	fillTestBytes(req[8:])

	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("credit: %w", err)
	}
	defer f.Close()
	started := monotonic()
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&req[0])))
	took := monotonic() - started
	runtime.KeepAlive(req)
	if errno != 0 {
		return fmt.Errorf("credit: RNDADDENTROPY: %w", errno)
	}
	g.emit(step, protocol.KindCredit, "bits", strconv.Itoa(bits), "bytes", strconv.Itoa(size), "took", took.String(),
		"started", strconv.FormatInt(int64(started), 10))
	return nil
}

// fillTestBytes fills b with bytes that are good enough for a throwaway
// test VM and do not touch the kernel RNG under test: a ChaCha8 stream
// keyed from the clocks. Never use this for anything real.
func fillTestBytes(b []byte) {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(monotonic()))
	binary.LittleEndian.PutUint64(seed[8:], uint64(time.Now().UnixNano()))
	stream := rand.NewChaCha8(seed)
	_, _ = stream.Read(b)
}

// pollReady blocks in poll(2) on /dev/random until the CRNG is
// initialized (POLLIN, 5.6+), as the smallest possible waiter does. The
// moment it wakes it sends READY=1 when it runs as a systemd notify
// service, as the gate does, so the two are timed the same way; then it
// emits a ready event.
func (g *guest) pollReady(step int) error {
	f, err := os.Open("/dev/random")
	if err != nil {
		return fmt.Errorf("pollready: %w", err)
	}
	defer f.Close()
	fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("pollready: poll: %w", err)
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			break
		}
	}
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		return fmt.Errorf("pollready: notify: %w", err)
	}
	_, avail, err := probe()
	if err != nil {
		return err
	}
	g.emit(step, protocol.KindReady, "polls", "poll(2)", "entropy_avail", avail)
	return nil
}
