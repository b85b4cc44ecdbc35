// SPDX-License-Identifier: GPL-3.0-or-later

package gatestate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/atomicfile"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

// DefaultPath is where the gate service keeps its state.
const DefaultPath = "/run/entropy-gate/state.json"

// Version is the state file format's version; readers reject others.
const Version = 1

// Phase is where the gate is in its life.
type Phase string

// The gate's phases: seeding → waiting → open | timed-out, or stopped if
// the service was stopped while waiting.
const (
	Seeding  Phase = "seeding"
	Waiting  Phase = "waiting"
	Open     Phase = "open"
	TimedOut Phase = "timed-out"
	Stopped  Phase = "stopped"
)

// Outcome is how a finished wait ended.
type Outcome string

// Outcomes: the pool became ready; the timeout expired (the gate opened
// degraded, or stayed shut with OnTimeout=fail); or the wait was cancelled.
const (
	Ready     Outcome = "ready"
	Timeout   Outcome = "timed-out"
	Cancelled Outcome = "cancelled"
)

// State is the content of the state file.
type State struct {
	Version int     `json:"version"`
	Phase   Phase   `json:"state"`
	Outcome Outcome `json:"outcome,omitempty"`
	// Reason explains an outcome or a wait that cannot finish, e.g. why
	// readiness is unknown.
	Reason    string `json:"reason,omitempty"`
	Mode      string `json:"mode"`
	Semantics string `json:"semantics"`
	Threshold int    `json:"threshold"`
	// EntropyAvailStart and EntropyAvail are entropy_avail when the wait
	// began and now (or when it ended); -1 when unknown.
	EntropyAvailStart int       `json:"entropy_avail_start"`
	EntropyAvail      int       `json:"entropy_avail"`
	CRNGInitialized   bool      `json:"crng_initialized"`
	Started           time.Time `json:"started"`
	Updated           time.Time `json:"updated"`
	WaitedMS          int64     `json:"waited_ms"`
	// Seeds is what each seed backend did this boot: at load, and when
	// the seeds were refreshed after the gate opened.
	Seeds []seeders.Result `json:"seeds,omitempty"`
}

// ErrNotRun means there is no state file: the gate has not run this boot.
var ErrNotRun = errors.New("gate has not run")

// Read reads a state file.
func Read(path string) (State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return State{}, ErrNotRun
	}
	if err != nil {
		return State{}, fmt.Errorf("read gate state: %w", err)
	}
	return Parse(b)
}

// Parse decodes a state file's content.
func Parse(b []byte) (State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("parse gate state: %w", err)
	}
	if s.Version != Version {
		return State{}, fmt.Errorf("parse gate state: version %d, want %d", s.Version, Version)
	}
	return s, nil
}

// Write replaces the state file atomically: readers see the old or the new
// state, never a mix.
func Write(path string, s State) error {
	s.Version = Version
	if err := writeJSON(path, s); err != nil {
		return fmt.Errorf("write gate state: %w", err)
	}
	return nil
}

// DefaultSeedsPath is this boot's seed results, kept by every process
// that loads seeds (the initramfs, the seed unit, the gate) under the seed
// lock. It is a file of its own because it is written before the gate
// runs, and State's file existing means the gate has run this boot; the
// gate copies the results into its state.
const DefaultSeedsPath = "/run/entropy-gate/seeds.json"

// WriteSeeds replaces this boot's seed results atomically.
func WriteSeeds(path string, seeds []seeders.Result) error {
	if err := writeJSON(path, seeds); err != nil {
		return fmt.Errorf("save seed results: %w", err)
	}
	return nil
}

// ReadSeeds reads what WriteSeeds wrote; os.ErrNotExist means no seed
// was loaded this boot.
func ReadSeeds(path string) ([]seeders.Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseSeeds(b)
}

// ParseSeeds decodes the seed results file's content.
func ParseSeeds(b []byte) ([]seeders.Result, error) {
	var seeds []seeders.Result
	if err := json.Unmarshal(b, &seeds); err != nil {
		return nil, fmt.Errorf("parse seed results: %w", err)
	}
	return seeds, nil
}

// writeJSON replaces path with v's JSON atomically, world-readable:
// these files hold no secrets.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return atomicfile.Write(path, append(b, '\n'), 0o644)
}
