// SPDX-License-Identifier: GPL-3.0-or-later

package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/atomicfile"
)

// DefaultPath is the history file on a persistent system.
const DefaultPath = "/var/lib/entropy-gate/history.jsonl"

// MaxRecords bounds the history file: appending beyond twice this keeps
// the newest MaxRecords.
const MaxRecords = 500

// Record is one boot's wait.
type Record struct {
	Time      time.Time `json:"time"`
	BootID    string    `json:"boot_id,omitempty"`
	Kernel    string    `json:"kernel,omitempty"`
	Semantics string    `json:"semantics"`
	Mode      string    `json:"mode"`
	Threshold int       `json:"threshold"`
	// Outcome is the gate's: ready, timed-out or cancelled.
	Outcome  string `json:"outcome"`
	WaitedMS int64  `json:"waited_ms"`
	// ReadyBy says what made the pool ready: seed, hwrng, cpu, jitter,
	// entropy (other credited sources, e.g. interrupts), already (it was
	// ready before the gate started), or timeout.
	ReadyBy           string `json:"ready_by"`
	EntropyAvailStart int    `json:"entropy_avail_start"`
	EntropyAvailEnd   int    `json:"entropy_avail_end"`
	SeedsLoaded       int    `json:"seeds_loaded"`
	SeedsCredited     int    `json:"seeds_credited"`
}

// Append adds r to the history file, creating it (and its directory) if
// needed, and trims it to the newest MaxRecords once it has twice that.
func Append(path string, r Record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	// One write of a whole line: a crash leaves at most one torn line,
	// which Parse skips.
	_, werr := f.Write(append(line, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	return trim(path)
}

// trim rewrites the file with its newest MaxRecords records once it holds
// more than twice as many, so appends stay cheap and the file bounded.
func trim(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("trim history: %w", err)
	}
	if bytes.Count(b, []byte("\n")) <= 2*MaxRecords {
		return nil
	}
	records, _ := Parse(b)
	records = records[max(0, len(records)-MaxRecords):]
	var out bytes.Buffer
	for _, r := range records {
		line, _ := json.Marshal(r)
		out.Write(append(line, '\n'))
	}
	if err := atomicfile.Write(path, out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("trim history: %w", err)
	}
	return nil
}

// Read reads a history file; a missing file is an empty history.
func Read(path string) ([]Record, int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read history: %w", err)
	}
	records, skipped := Parse(b)
	return records, skipped, nil
}

// Parse reads JSON lines, skipping (and counting) lines that are not a
// record, such as one torn by a power cut.
func Parse(b []byte) (records []Record, skipped int) {
	lines := bufio.NewScanner(bytes.NewReader(b))
	lines.Buffer(nil, 64*1024)
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		if line == "" {
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Time.IsZero() || r.Outcome == "" || r.WaitedMS < 0 {
			skipped++
			continue
		}
		records = append(records, r)
	}
	if lines.Err() != nil {
		skipped++
	}
	return records, skipped
}

// Stats summarizes wait times.
type Stats struct {
	Boots    int   `json:"boots"`
	TimedOut int   `json:"timed_out"`
	MedianMS int64 `json:"median_ms"`
	P90MS    int64 `json:"p90_ms"`
	MaxMS    int64 `json:"max_ms"`
}

// Summarize computes Stats; percentiles are nearest-rank.
func Summarize(records []Record) Stats {
	s := Stats{Boots: len(records)}
	if len(records) == 0 {
		return s
	}
	waits := make([]int64, 0, len(records))
	for _, r := range records {
		waits = append(waits, r.WaitedMS)
		if r.Outcome == "timed-out" {
			s.TimedOut++
		}
	}
	slices.Sort(waits)
	rank := func(p float64) int64 {
		i := int(p*float64(len(waits))+0.999999) - 1
		return waits[min(max(i, 0), len(waits)-1)]
	}
	s.MedianMS, s.P90MS, s.MaxMS = rank(0.5), rank(0.9), waits[len(waits)-1]
	return s
}
