// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loadAndNext is the first half of the seed protocol: what Store gets.
func loadAndNext(t *testing.T, b Backend) (Loaded, Record) {
	t.Helper()
	loaded, err := b.Load()
	if err != nil {
		t.Fatal(err)
	}
	next, err := NextRecord(&FakeKernel{Initialized: true}, Env{}, loaded)
	if err != nil {
		t.Fatal(err)
	}
	return loaded, next
}

// linkedStick is a stick with a creditable seed, a byte-exact copy of it,
// and a link to the stick, as /dev/disk/by-id has.
func linkedStick(t *testing.T) (link, first, second string) {
	t.Helper()
	dir := t.TempDir()
	first = sgdiskStick(t, dir, 8<<20)
	seedInit(t, first)
	second = filepath.Join(dir, "second.img")
	copyImage(t, first, second)
	link = filepath.Join(dir, "by-id-link")
	if err := os.Symlink(first, link); err != nil {
		t.Fatal(err)
	}
	return link, first, second
}

// Issue 13, finding 3: between Load and Store the path may come to name
// another disk (a /dev/disk/by-* link, a device name reused after a stick
// swap), the disk may get new GUIDs, or another writer may replace the
// sector (`seed init` without the seed lock). Store then writes nothing:
// the record Load saw is still on the medium, so it must not be credited.
func TestSectorStoreChecksWhatLoadSaw(t *testing.T) {
	tests := []struct {
		name    string
		between func(t *testing.T, link, first, second string)
	}{
		{name: "link repointed to a byte-exact copy", between: func(t *testing.T, link, _, second string) {
			if err := os.Remove(link); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(second, link); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "disk given new GUIDs", between: func(t *testing.T, _, first, _ string) {
			sgdisk(t, first, "-G")
		}},
		{name: "sector rewritten by another writer", between: func(t *testing.T, _, first, _ string) {
			seedInit(t, first)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			link, first, second := linkedStick(t)

			b := SectorBackend{Path: link}
			_, next := loadAndNext(t, b)
			tt.between(t, link, first, second)
			before := [2][]byte{readSector(t, first, DefaultLBA, 512), readSector(t, second, DefaultLBA, 512)}
			if err := b.Store(next); !errors.Is(err, ErrChanged) {
				t.Fatalf("Store = %v, want %v", err, ErrChanged)
			}
			after := [2][]byte{readSector(t, first, DefaultLBA, 512), readSector(t, second, DefaultLBA, 512)}
			if !bytes.Equal(before[0], after[0]) || !bytes.Equal(before[1], after[1]) {
				t.Fatal("a refused Store wrote a sector")
			}
		})
	}
}

// between runs a function between a backend's Load and its Store.
type between struct {
	Backend
	run func()
}

func (b between) Store(r Record) error {
	b.run()
	return b.Backend.Store(r)
}

// The same through the whole protocol: the seed is not credited.
func TestSeedNotCreditedWhenPathRepointed(t *testing.T) {
	link, _, second := linkedStick(t)
	repoint := func() {
		os.Remove(link)
		if err := os.Symlink(second, link); err != nil {
			t.Error(err)
		}
	}
	k := &FakeKernel{}
	res := Seeder{Backend: between{SectorBackend{Path: link}, repoint}, Kernel: k}.Seed()
	if res.CreditedBits != 0 || res.Refreshed || len(k.CallsOf(OpCredit)) != 0 {
		t.Fatalf("Seed with the path repointed before Store: %s; want no credit and nothing written", res.Reason)
	}
}

// Store holds an exclusive flock on the disk for the whole write, and waits
// for another holder (udev probing, a partitioner) to let go.
func TestSectorStoreTakesTheDiskLock(t *testing.T) {
	path, b := stick(t, testRecord(0x40, 3, true))
	_, next := loadAndNext(t, b)
	holder, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if err := unix.Flock(int(holder.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	old := readSector(t, path, DefaultLBA, 512)
	stored := make(chan error, 1)
	go func() { stored <- b.Store(next) }()
	time.Sleep(200 * time.Millisecond)
	if !bytes.Equal(readSector(t, path, DefaultLBA, 512), old) {
		t.Fatal("Store wrote while another process held the disk's lock")
	}
	select {
	case err := <-stored:
		t.Fatalf("Store returned %v while the disk was locked", err)
	default:
	}
	unix.Flock(int(holder.Fd()), unix.LOCK_UN)
	if err := <-stored; err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(readSector(t, path, DefaultLBA, 512), old) {
		t.Fatal("Store did not write once the lock was free")
	}
}
