package gatestate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
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
	Seeds []Seed `json:"seeds,omitempty"`
}

// Seed is one seed backend's result, with seeders.Result's names. It holds
// what happened, never seed bytes.
type Seed struct {
	Backend string `json:"backend"`
	// Action is "load" (at boot: credit or mix the old seed, write its
	// replacement), "refresh" (after the gate opened) or "save" (at
	// shutdown).
	Action           string `json:"action"`
	Loaded           bool   `json:"loaded"`
	Content          string `json:"content,omitempty"`
	Creditable       bool   `json:"creditable"`
	Refreshed        bool   `json:"refreshed"`
	StoredCreditable bool   `json:"stored_creditable"`
	CreditedBits     int    `json:"credited_bits"`
	Mixed            bool   `json:"mixed"`
	Reason           string `json:"reason"`
	Error            string `json:"error,omitempty"`
}

// Seed actions.
const (
	SeedLoad    = "load"
	SeedRefresh = "refresh"
	SeedSave    = "save"
)

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
// state, never a mix. The file is world-readable; it holds no secrets.
func Write(path string, s State) error {
	s.Version = Version
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode gate state: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write gate state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".state-*.json")
	if err != nil {
		return fmt.Errorf("write gate state: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write gate state: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write gate state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write gate state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write gate state: %w", err)
	}
	return nil
}
