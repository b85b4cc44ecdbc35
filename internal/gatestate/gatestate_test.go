// SPDX-License-Identifier: GPL-3.0-or-later

package gatestate

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	want := State{
		Phase: Open, Outcome: Timeout, Reason: "timeout expired", Mode: "passive", Semantics: "modern",
		Threshold: 256, EntropyAvailStart: 4, EntropyAvail: 17, Started: time.Unix(100, 0).UTC(),
		Updated: time.Unix(105, 0).UTC(), WaitedMS: 5000,
		Seeds: []seeders.Result{{Backend: "sector:/dev/sda@34", Action: seeders.ActionLoad, Loaded: true, Content: seeders.ContentRecord, Creditable: true, Refreshed: true, CreditedBits: 256, Reason: "credited 256 bits"}},
	}
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	want.Version = Version
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Read = %+v, want %+v", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644 so unprivileged readers see it", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestSeedsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "seeds.json")
	if _, err := ReadSeeds(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadSeeds(missing) = %v", err)
	}
	want := []seeders.Result{{Backend: "file:/x", Action: seeders.ActionLoad, Loaded: true, Content: seeders.ContentRecord, CreditedBits: 256, Reason: "credited 256 bits"}}
	if err := WriteSeeds(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSeeds(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ReadSeeds = %+v, %v", got, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
}

// TestStateJSONNames: the state file's field names are public API
// (README, docs/dbus.md), the seed results' included.
func TestStateJSONNames(t *testing.T) {
	b, err := json.Marshal(State{Seeds: []seeders.Result{{Loaded: true, Content: seeders.ContentRecord, Error: "e"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"version", "state", "mode", "semantics", "threshold", "entropy_avail_start", "entropy_avail", "crng_initialized", "started", "updated", "waited_ms",
		"backend", "action", "loaded", "content", "creditable", "refreshed", "stored_creditable", "credited_bits", "mixed", "reason", "error"} {
		if !strings.Contains(string(b), `"`+name+`":`) {
			t.Errorf("state JSON lacks %q: %s", name, b)
		}
	}
	if !strings.Contains(string(b), `"content":"record"`) {
		t.Errorf("content is not its name: %s", b)
	}
}

func TestReadMissingIsNotRun(t *testing.T) {
	if _, err := Read(filepath.Join(t.TempDir(), "state.json")); !errors.Is(err, ErrNotRun) {
		t.Errorf("err = %v, want ErrNotRun", err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tt := range []struct{ name, in string }{
		{name: "garbage", in: "{"},
		{name: "other version", in: `{"version": 2, "state": "open"}`},
		{name: "no version", in: `{"state": "open"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.in)); err == nil {
				t.Errorf("Parse(%q) accepted", tt.in)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"version":1,"state":"open","outcome":"ready","waited_ms":3}`))
	f.Add([]byte(`{"version":1,"state":"open","seeds":[{"backend":"file:/s","action":"load","loaded":true,"content":"record","credited_bits":256}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err == nil && s.Version != Version {
			t.Errorf("accepted version %d", s.Version)
		}
	})
}

func FuzzParseSeeds(f *testing.F) {
	f.Add([]byte(`[{"backend":"file:/s","action":"load","loaded":true,"content":"record","credited_bits":256,"reason":"credited 256 bits"}]`))
	f.Add([]byte(`[{"backend":"sector:/dev/sda@34","content":"torn"},{"content":"nonsense"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		seeds, err := ParseSeeds(b)
		if err != nil {
			return
		}
		// What parses writes back and parses the same.
		again, err := json.Marshal(seeds)
		if err != nil {
			t.Fatalf("marshal parsed seeds: %v", err)
		}
		if back, err := ParseSeeds(again); err != nil || len(back) != len(seeds) {
			t.Errorf("round trip: %d seeds, %v; want %d", len(back), err, len(seeds))
		}
	})
}
