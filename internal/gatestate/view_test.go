// SPDX-License-Identifier: GPL-3.0-or-later

package gatestate

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

func TestReadView(t *testing.T) {
	for _, tt := range []struct {
		name string
		// content of the state file; "" leaves it missing.
		content       string
		wantOutcome   Outcome
		wantSeeds     int
		wantGateErr   error
		wantGateState string
	}{
		{name: "missing", wantGateErr: ErrNotRun, wantGateState: NotRun},
		{name: "without seeds", content: `{"version":1,"state":"open","outcome":"timed-out"}`, wantOutcome: Timeout, wantGateState: "open"},
		{
			name:        "with seeds",
			content:     `{"version":1,"state":"open","outcome":"ready","seeds":[{"backend":"sector","action":"load","loaded":true,"refreshed":true,"credited_bits":256,"reason":"credited 256 bits"}]}`,
			wantOutcome: Ready, wantSeeds: 1, wantGateState: "open",
		},
		{name: "garbage", content: "{", wantGateErr: errAny, wantGateState: Unknown},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			fake := pool.NewFake(pool.State{EntropyAvail: 7, PoolSize: 256, Semantics: pool.Modern})
			v := ReadView(fake, path, 4096)
			if v.Readiness != pool.NotReady || v.Kernel.EntropyAvail != 7 || v.Threshold != 256 || v.Ready() {
				t.Errorf("kernel view = %v, %+v, threshold %d", v.Readiness, v.Kernel, v.Threshold)
			}
			switch {
			case errors.Is(tt.wantGateErr, errAny) && v.GateErr == nil:
				t.Errorf("GateErr = nil, want an error")
			case !errors.Is(tt.wantGateErr, errAny) && !errors.Is(v.GateErr, tt.wantGateErr):
				t.Errorf("GateErr = %v, want %v", v.GateErr, tt.wantGateErr)
			}
			if (v.StateFileProblem() != nil) != errors.Is(tt.wantGateErr, errAny) {
				t.Errorf("StateFileProblem = %v", v.StateFileProblem())
			}
			if v.Gate.Outcome != tt.wantOutcome || len(v.Gate.Seeds) != tt.wantSeeds || v.GateState() != tt.wantGateState {
				t.Errorf("Outcome %q, %d seeds, state %q; want %q, %d, %q", v.Gate.Outcome, len(v.Gate.Seeds), v.GateState(), tt.wantOutcome, tt.wantSeeds, tt.wantGateState)
			}
		})
	}
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")

func TestOpens(t *testing.T) {
	for _, tt := range []struct {
		name                    string
		initialized             bool
		entropyAvail, threshold int
		want                    bool
	}{
		{name: "not initialized never opens", entropyAvail: 256, threshold: 0},
		{name: "initialized, threshold met", initialized: true, entropyAvail: 256, threshold: 256, want: true},
		{name: "initialized, below threshold", initialized: true, entropyAvail: 100, threshold: 256},
		{name: "threshold 0: readiness only", initialized: true, entropyAvail: 0, threshold: 0, want: true},
		{name: "entropy_avail unknown: readiness decides", initialized: true, entropyAvail: -1, threshold: 256, want: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Opens(tt.initialized, tt.entropyAvail, tt.threshold); got != tt.want {
				t.Errorf("Opens = %t, want %t", got, tt.want)
			}
		})
	}
}

func TestViewSeeds(t *testing.T) {
	v := View{Gate: State{Seeds: []seeders.Result{
		{Backend: "sector:/dev/sda@34", Action: seeders.ActionLoad, Loaded: true, Content: seeders.ContentRecord, CreditedBits: 256, Refreshed: true},
		{Backend: "file:/p/seed", Action: seeders.ActionLoad, Loaded: true, Content: seeders.ContentEmpty, Refreshed: true},
		{Backend: "sector:/dev/sda@34", Action: seeders.ActionRefresh, Loaded: true, Refreshed: false, Error: "store replacement: input/output error"},
	}}}
	want := map[string]SeedSummary{
		"sector:/dev/sda@34": {Loaded: true, CreditedBits: 256, Refreshed: false, Error: "store replacement: input/output error"},
		"file:/p/seed":       {Loaded: false, Refreshed: true},
	}
	if got := v.Seeds(); !maps.Equal(got, want) {
		t.Errorf("Seeds = %+v\nwant %+v", got, want)
	}
}
