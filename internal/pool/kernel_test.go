// SPDX-License-Identifier: GPL-3.0-or-later

package pool

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func fixtureKernel(root string, insecureWorks bool) *Kernel {
	k := NewKernel(Roots{Proc: root, Dev: filepath.Join(root, "dev")})
	k.insecureWorks = func() bool { return insecureWorks }
	return k
}

func TestState(t *testing.T) {
	tests := []struct {
		name     string
		root     string
		insecure bool
		want     State
		wantErr  bool
	}{
		{
			name: "legacy pool",
			root: "testdata/legacy",
			want: State{EntropyAvail: 3012, PoolSize: 4096, WriteWakeupThreshold: 896, Semantics: Legacy},
		},
		{
			name:     "modern pool",
			root:     "testdata/modern",
			insecure: true,
			want:     State{EntropyAvail: 256, PoolSize: 256, WriteWakeupThreshold: 256, Semantics: Modern, PollMeansReady: true},
		},
		{
			name:     "no proc at all is unknown, not an error",
			root:     "testdata/does-not-exist",
			insecure: true,
			want:     State{EntropyAvail: -1, PoolSize: -1, WriteWakeupThreshold: -1, Semantics: SemanticsUnknown, PollMeansReady: true},
		},
		{
			name:     "missing poolsize without GRND_INSECURE is a pre-5.6 legacy kernel",
			root:     "testdata/partial",
			insecure: false,
			want:     State{EntropyAvail: 17, PoolSize: -1, WriteWakeupThreshold: -1, Semantics: Legacy},
		},
		{
			name:     "garbage counters are unknown and reported",
			root:     "testdata/garbage",
			insecure: true,
			want:     State{EntropyAvail: -1, PoolSize: -1, WriteWakeupThreshold: -1, Semantics: SemanticsUnknown, PollMeansReady: true},
			wantErr:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fixtureKernel(tt.root, tt.insecure).State()
			if (err != nil) != tt.wantErr {
				t.Fatalf("State() error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("State() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStateGarbageErrorNamesEachFile(t *testing.T) {
	_, err := fixtureKernel("testdata/garbage", true).State()
	for _, name := range []string{"entropy_avail", "poolsize", "write_wakeup_threshold"} {
		if err == nil || !strings.Contains(err.Error(), "parse "+name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

func TestReadinessFromErr(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		want    Readiness
		wantErr error
	}{
		{name: "success is ready", err: nil, want: Ready},
		{name: "EAGAIN is not ready", err: unix.EAGAIN, want: NotReady},
		{name: "ENOSYS is unknown", err: unix.ENOSYS, want: Unknown, wantErr: ErrUnknownReadiness},
		{name: "EPERM is unknown", err: unix.EPERM, want: Unknown, wantErr: ErrUnknownReadiness},
		{name: "anything else is unknown", err: unix.EFAULT, want: Unknown, wantErr: ErrUnknownReadiness},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readinessFromErr(tt.err)
			if got != tt.want {
				t.Errorf("readiness = %v, want %v", got, tt.want)
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestRandPoolInfoLayout(t *testing.T) {
	seed := []byte{0xaa, 0xbb, 0xcc}
	info, err := randPoolInfo(seed, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(info) != 8+len(seed) {
		t.Fatalf("len = %d, want two 32-bit ints and the bytes (%d)", len(info), 8+len(seed))
	}
	if got := binary.NativeEndian.Uint32(info[0:4]); got != 20 {
		t.Errorf("entropy_count = %d, want 20 bits", got)
	}
	if got := binary.NativeEndian.Uint32(info[4:8]); got != 3 {
		t.Errorf("buf_size = %d, want 3 bytes", got)
	}
	if string(info[8:]) != string(seed) {
		t.Errorf("buffer does not follow the header")
	}
}

func TestRandPoolInfoRejectsOvercredit(t *testing.T) {
	for _, tt := range []struct {
		name string
		seed []byte
		bits int
	}{
		{name: "more bits than bytes hold", seed: make([]byte, 4), bits: 33},
		{name: "negative bits", seed: make([]byte, 4), bits: -1},
		{name: "empty seed", seed: nil, bits: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := randPoolInfo(tt.seed, tt.bits); !errors.Is(err, ErrBadCredit) {
				t.Errorf("err = %v, want ErrBadCredit", err)
			}
		})
	}
}

func TestParseWaitMode(t *testing.T) {
	for in, want := range map[string]WaitMode{"active": Active, "passive": Passive} {
		if got, err := ParseWaitMode(in); err != nil || got != want {
			t.Errorf("ParseWaitMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseWaitMode("Active"); !errors.Is(err, ErrBadMode) {
		t.Errorf("ParseWaitMode(Active) err = %v, want ErrBadMode", err)
	}
}

// devWithFIFO makes a dev root whose "random" is a FIFO nobody writes to:
// poll on it blocks like /dev/random on a kernel whose CRNG is not ready.
func devWithFIFO(t *testing.T) (k *Kernel, fifo string) {
	t.Helper()
	root := t.TempDir()
	fifo = filepath.Join(root, "random")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	return NewKernel(Roots{Proc: root, Dev: root}), fifo
}

// assertPOLLIN makes a FIFO from devWithFIFO readable, as the kernel
// makes /dev/random once the CRNG is ready.
func assertPOLLIN(t *testing.T, fifo string) {
	t.Helper()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
}

func TestWaitPollCancels(t *testing.T) {
	k, _ := devWithFIFO(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.waitPoll(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("waitPoll returned %v before anything happened", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("waitPoll = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waitPoll did not return after cancel")
	}
}

func TestWaitPollWakesOnPOLLIN(t *testing.T) {
	if r, _ := NewKernel(Roots{}).Ready(); r != Ready {
		t.Skip("needs a host kernel whose CRNG is initialized")
	}
	k, fifo := devWithFIFO(t)
	done := make(chan error, 1)
	go func() { done <- k.waitPoll(context.Background()) }()
	assertPOLLIN(t, fifo)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("waitPoll = %v, want nil once POLLIN and getrandom agree", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waitPoll did not wake on POLLIN")
	}
}

func TestRoots(t *testing.T) {
	root := t.TempDir()
	r := Roots{Proc: root}
	if got := r.KernelRelease(); got != "" {
		t.Errorf("KernelRelease without the file = %q, want empty", got)
	}
	if _, err := r.BootID(); err == nil {
		t.Error("BootID without the file: no error")
	}
	dir := filepath.Join(root, "sys", "kernel", "random")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "sys", "kernel", "osrelease"), []byte("6.1.0-28-amd64\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "boot_id"), []byte("5d1c8a4e-0000-4000-8000-000000000000\n"), 0o644)
	if got := r.KernelRelease(); got != "6.1.0-28-amd64" {
		t.Errorf("KernelRelease = %q", got)
	}
	if id, err := r.BootID(); err != nil || len(id) != 37 {
		t.Errorf("BootID = %q, %v", id, err)
	}
	if got := (Roots{}).DevPath("random"); got != "/dev/random" {
		t.Errorf("default dev root: %q", got)
	}
}
