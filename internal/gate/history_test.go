// SPDX-License-Identifier: GPL-3.0-or-later

package gate

import (
	"path/filepath"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/history"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

func TestHistorySink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lib", "history.jsonl")
	s := &HistorySink{Path: path, Kernel: "6.1.0-28-amd64", Sources: history.Sources{Active: true}}
	p := Progress{Phase: gatestate.Waiting, Mode: pool.Active, Semantics: pool.Modern, Threshold: 256, Started: time.Now(), Waited: time.Second,
		Seeds: []seeders.Result{
			{Backend: "file:/a", Action: seeders.ActionLoad, Loaded: true, Content: seeders.ContentRecord, CreditedBits: 256},
			{Backend: "file:/b", Action: seeders.ActionLoad, Loaded: true, Content: seeders.ContentEmpty},
		}}
	s.Update(p)
	p.Phase, p.Outcome = gatestate.Open, gatestate.Ready
	s.Update(p)
	// The refresh after opening sends the final progress again.
	p.Seeds = append(p.Seeds, seeders.Result{Backend: "file:/a", Action: seeders.ActionRefresh, Loaded: true, Content: seeders.ContentRecord})
	s.Update(p)
	records, _, err := history.Read(path)
	if err != nil || len(records) != 1 {
		t.Fatalf("history = %+v, %v; want one record", records, err)
	}
	r := records[0]
	if r.Kernel != "6.1.0-28-amd64" || r.SeedsLoaded != 1 || r.SeedsCredited != 1 || r.ReadyBy != "seed" || r.WaitedMS != 1000 {
		t.Errorf("record %+v", r)
	}
	if f := s.JournalFields(p); f[history.FieldSeedsLoaded] != "1" || f[history.FieldReadyBy] != "seed" || f[history.FieldKernel] != "6.1.0-28-amd64" {
		t.Errorf("journal fields %v", f)
	}
}
