// SPDX-License-Identifier: GPL-3.0-or-later

package pool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRandomDeviceHost waits on the host's /dev/random: the CRNG of a
// running test machine is initialized, so POLLIN is asserted at once and
// POLLOUT (modern kernels: "not ready") is not.
func TestRandomDeviceHost(t *testing.T) {
	if r, _ := NewKernel(Roots{}).Ready(); r != Ready {
		t.Skip("host CRNG not initialized")
	}
	st, _ := NewKernel(Roots{}).State()
	if st.Semantics != Modern {
		t.Skip("host kernel has legacy pool semantics")
	}
	r, err := OpenRandom(Roots{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Wait(ctx, unix.POLLIN); err != nil {
		t.Errorf("Wait(POLLIN) on a ready kernel: %v", err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	if err := r.Wait(short, unix.POLLOUT); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait(POLLOUT) on a ready modern kernel = %v, want the context's deadline", err)
	}
	// The expired deadline of the cancelled wait must not leak into the
	// next one.
	if err := r.Wait(ctx, unix.POLLIN); err != nil {
		t.Errorf("Wait(POLLIN) after a cancelled wait: %v", err)
	}
}

// TestRandomDeviceWakes stands a FIFO in for the device, so the test can
// assert POLLIN while Wait sleeps.
func TestRandomDeviceWakes(t *testing.T) {
	k, fifo := devWithFIFO(t)
	r, err := OpenRandom(k.roots)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	woke := make(chan error, 1)
	go func() { woke <- r.Wait(context.Background(), unix.POLLIN) }()
	select {
	case err := <-woke:
		t.Fatalf("Wait returned before the event: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	assertPOLLIN(t, fifo)
	select {
	case err := <-woke:
		if err != nil {
			t.Errorf("Wait = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake on POLLIN")
	}
}

func TestOpenRandomMissing(t *testing.T) {
	if _, err := OpenRandom(Roots{Dev: t.TempDir()}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenRandom of a missing device = %v, want ErrNotExist", err)
	}
}

func TestOpenRandomNotPollable(t *testing.T) {
	dev := t.TempDir()
	if err := os.WriteFile(filepath.Join(dev, "random"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRandom(Roots{Dev: dev}); !errors.Is(err, ErrNotPollable) {
		t.Errorf("OpenRandom of a regular file = %v, want ErrNotPollable", err)
	}
}
