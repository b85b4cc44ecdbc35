// SPDX-License-Identifier: GPL-3.0-or-later

package seeding

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestLockSerialises(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "seed.lock")
	unlock, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock while held = %v, want ErrLocked", err)
	}
	got := make(chan error, 1)
	go func() {
		u, err := Lock(context.Background(), path)
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(30 * time.Millisecond)
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("Lock after unlock = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lock was not handed over after unlock")
	}
}
