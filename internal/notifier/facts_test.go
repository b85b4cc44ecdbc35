package notifier

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

func TestGather(t *testing.T) {
	for _, tt := range []struct {
		name string
		// content of the state file; "" leaves it missing.
		content     string
		wantOutcome gatestate.Outcome
		wantSeeds   int
		wantGateErr error
	}{
		{name: "missing", wantGateErr: gatestate.ErrNotRun},
		{name: "without seeds", content: `{"version":1,"state":"open","outcome":"timed-out"}`, wantOutcome: gatestate.Timeout},
		{
			name:        "with seeds",
			content:     `{"version":1,"state":"open","outcome":"ready","seeds":[{"backend":"sector","action":"load","loaded":true,"refreshed":true,"credited_bits":256,"reason":"credited 256 bits"}]}`,
			wantOutcome: gatestate.Ready, wantSeeds: 1,
		},
		{name: "garbage", content: "{", wantGateErr: errAny},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			fake := pool.NewFake(pool.State{EntropyAvail: 7, PoolSize: 256, Semantics: pool.Modern})
			f := Gather(fake, path)
			if f.Readiness != pool.NotReady || f.Kernel.EntropyAvail != 7 {
				t.Errorf("kernel facts = %v, %+v", f.Readiness, f.Kernel)
			}
			switch {
			case tt.wantGateErr == errAny && f.GateErr == nil:
				t.Errorf("GateErr = nil, want an error")
			case tt.wantGateErr != errAny && !errors.Is(f.GateErr, tt.wantGateErr):
				t.Errorf("GateErr = %v, want %v", f.GateErr, tt.wantGateErr)
			}
			if f.Gate.Outcome != tt.wantOutcome || len(f.Gate.Seeds) != tt.wantSeeds {
				t.Errorf("Outcome %q, %d seeds; want %q, %d", f.Gate.Outcome, len(f.Gate.Seeds), tt.wantOutcome, tt.wantSeeds)
			}
		})
	}
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")
