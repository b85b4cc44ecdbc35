package notifier

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

func TestPlanWakeup(t *testing.T) {
	p := Policy{EntropyLow: 128, EntropyHigh: 256}
	preFiveSix := notReady()
	preFiveSix.Kernel = pool.State{EntropyAvail: 20, PoolSize: 4096, WriteWakeupThreshold: 896, Semantics: pool.Legacy}
	legacyNotReady := preFiveSix
	legacyNotReady.Kernel.PollMeansReady = true
	unknown := ready()
	unknown.Readiness = pool.Unknown
	lowThreshold := legacy(3000)
	lowThreshold.Kernel.WriteWakeupThreshold = 64
	for _, tt := range []struct {
		name  string
		facts Facts
		low   bool
		// disabled turns the entropy warning off (EntropyLow=0).
		disabled bool
		want     wakeup
	}{
		{name: "modern not ready: POLLIN means ready", facts: notReady(), want: wakeup{events: unix.POLLIN}},
		{name: "5.6 to 5.17 not ready: POLLIN means ready", facts: legacyNotReady, want: wakeup{events: unix.POLLIN}},
		{name: "before 5.6: POLLIN says nothing", facts: preFiveSix, want: wakeup{periodic: true}},
		{name: "unknown", facts: unknown, want: wakeup{periodic: true}},
		{name: "modern ready: nothing ever changes", facts: ready(), want: wakeup{}},
		{name: "legacy above the write wakeup threshold: POLLOUT on a fall", facts: legacy(3000), want: wakeup{events: unix.POLLOUT}},
		{name: "legacy below the write wakeup threshold: POLLOUT is asserted", facts: legacy(500), want: wakeup{periodic: true}},
		{name: "legacy low: nothing signals a rise", facts: legacy(20), low: true, want: wakeup{periodic: true}},
		{name: "legacy threshold under the low mark signals too late", facts: lowThreshold, want: wakeup{periodic: true}},
		{name: "legacy warning disabled", facts: legacy(3000), disabled: true, want: wakeup{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			policy := p
			if tt.disabled {
				policy.EntropyLow = 0
			}
			if got := planWakeup(tt.facts, policy, tt.low); got != tt.want {
				t.Errorf("planWakeup = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestRandomDeviceHost waits on the host's /dev/random: the CRNG of a
// running test machine is initialized, so POLLIN is asserted at once and
// POLLOUT (modern kernels: "not ready") is not.
func TestRandomDeviceHost(t *testing.T) {
	if r, _ := pool.NewKernel("/proc", "/dev").Ready(); r != pool.Ready {
		t.Skip("host CRNG not initialized")
	}
	st, _ := pool.NewKernel("/proc", "/dev").State()
	if st.Semantics != pool.Modern {
		t.Skip("host kernel has legacy pool semantics")
	}
	r, err := OpenRandom("/dev")
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
	dev := t.TempDir()
	fifo := filepath.Join(dev, "random")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := OpenRandom(dev)
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
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
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
	if _, err := OpenRandom(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenRandom of a missing device = %v, want ErrNotExist", err)
	}
}

func TestOpenRandomNotPollable(t *testing.T) {
	dev := t.TempDir()
	if err := os.WriteFile(filepath.Join(dev, "random"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRandom(dev); !errors.Is(err, ErrNotPollable) {
		t.Errorf("OpenRandom of a regular file = %v, want ErrNotPollable", err)
	}
}
