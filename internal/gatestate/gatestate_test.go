package gatestate

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	want := State{
		Phase: Open, Outcome: Timeout, Reason: "timeout expired", Mode: "passive", Semantics: "modern",
		Threshold: 256, EntropyAvailStart: 4, EntropyAvail: 17, Started: time.Unix(100, 0).UTC(),
		Updated: time.Unix(105, 0).UTC(), WaitedMS: 5000,
		Seeds: []Seed{{Backend: "sector:/dev/sda@34", Action: SeedLoad, Loaded: true, Content: "record", Creditable: true, Refreshed: true, CreditedBits: 256, Reason: "credited 256 bits"}},
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
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err == nil && s.Version != Version {
			t.Errorf("accepted version %d", s.Version)
		}
	})
}
