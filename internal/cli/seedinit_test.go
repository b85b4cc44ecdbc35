// SPDX-License-Identifier: GPL-3.0-or-later

package cli

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeding"
)

// Issue 13, finding 3: `seed init` writes under the seed lock, so it never
// replaces a seed between another process's load and store.
func TestSeedInitWaitsForTheSeedLock(t *testing.T) {
	te := newTestEnv(t)
	seed := te.withFileSeed(t)
	te.ready()
	unlock, err := seeding.Lock(context.Background(), te.SeedLock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { done <- te.run("seed", "init", "--backend", "file", "--path", seed) }()
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(seed); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("seed init wrote while another process held the seeds")
	}
	unlock()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("seed init: exit %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("seed init did not go on once the lock was free")
	}
}
