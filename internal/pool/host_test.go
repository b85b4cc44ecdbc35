// SPDX-License-Identifier: GPL-3.0-or-later

package pool

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// These tests run on the machine's own kernel, whose CRNG has long been
// initialized; the uninitialized case is tested in the QEMU lab.

func hostKernel(t *testing.T) *Kernel {
	t.Helper()
	k := NewKernel(Roots{})
	if r, err := k.Ready(); r != Ready {
		t.Skipf("host CRNG not initialized (%v, %v)", r, err)
	}
	return k
}

func TestHostState(t *testing.T) {
	k := NewKernel(Roots{})
	s, err := k.State()
	if err != nil {
		t.Fatal(err)
	}
	if s.EntropyAvail < 0 || s.PoolSize <= 0 {
		t.Fatalf("host counters unknown: %+v", s)
	}
	if s.Semantics == SemanticsUnknown {
		t.Errorf("semantics not detected on the host: %+v", s)
	}
	if !s.PollMeansReady {
		t.Errorf("GRND_INSECURE probe failed on a %s kernel", s.Semantics)
	}
}

func TestHostWaitReturnsAtOnce(t *testing.T) {
	k := hostKernel(t)
	for _, mode := range []WaitMode{Passive, Active} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := k.Wait(ctx, mode); err != nil {
				t.Errorf("Wait(%v) = %v on an initialized kernel", mode, err)
			}
		})
	}
}

func TestHostMix(t *testing.T) {
	k := hostKernel(t)
	if err := k.Mix([]byte("not secret, only stirred in")); err != nil {
		t.Errorf("Mix: %v", err)
	}
}

func TestHostCredit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("RNDADDENTROPY needs root")
	}
	k := hostKernel(t)
	seed := make([]byte, 32)
	if err := k.Credit(seed, 256); err != nil {
		t.Errorf("Credit(256 bits): %v", err)
	}
}

func TestFakeCreditInitializes(t *testing.T) {
	f := NewFake(State{EntropyAvail: 0, PoolSize: 256, Semantics: Modern})
	if err := f.Credit(make([]byte, 16), 128); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.Ready(); r != NotReady {
		t.Fatalf("ready after 128 of 256 bits")
	}
	if err := f.Credit(make([]byte, 32), 256); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.Ready(); r != Ready {
		t.Errorf("not ready after 384 bits on a modern pool")
	}
	if s, _ := f.State(); s.EntropyAvail != 256 {
		t.Errorf("entropy_avail = %d, want capped at the pool size", s.EntropyAvail)
	}
	if got := f.Credits(); len(got) != 2 || got[1] != (Credit{Bytes: 32, Bits: 256}) {
		t.Errorf("Credits() = %v", got)
	}
}

func TestFakeWaitCancels(t *testing.T) {
	f := NewFake(State{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := f.Wait(ctx, Passive); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait = %v, want deadline exceeded", err)
	}
}

func TestHostRandom(t *testing.T) {
	k := NewKernel(Roots{})
	a, b := make([]byte, 64), make([]byte, 64)
	if err := k.Random(a); err != nil {
		t.Fatal(err)
	}
	if err := k.Random(b); err != nil {
		t.Fatal(err)
	}
	if string(a) == string(b) || string(a) == string(make([]byte, 64)) {
		t.Errorf("Random returned repeated or zero bytes")
	}
}

func TestRandomFallsBackToURandom(t *testing.T) {
	k := NewKernel(Roots{})
	buf := make([]byte, 32)
	if err := k.readURandom(buf); err != nil || string(buf) == string(make([]byte, 32)) {
		t.Errorf("readURandom: %v", err)
	}
	if err := NewKernel(Roots{Dev: t.TempDir()}).readURandom(buf); err == nil {
		t.Errorf("readURandom without a device succeeded")
	}
}
