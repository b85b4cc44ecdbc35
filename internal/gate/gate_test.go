// SPDX-License-Identifier: GPL-3.0-or-later

package gate

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

// recorder is a Sink that keeps every update it got.
type recorder struct {
	mu      sync.Mutex
	updates []Progress
}

func (r *recorder) Update(p Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, p)
}

func (r *recorder) phases() []gatestate.Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []gatestate.Phase
	for _, u := range r.updates {
		if len(out) == 0 || out[len(out)-1] != u.Phase {
			out = append(out, u.Phase)
		}
	}
	return out
}

func (r *recorder) count(phase gatestate.Phase) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, u := range r.updates {
		if u.Phase == phase {
			n++
		}
	}
	return n
}

func modernFake(avail int) *pool.Fake {
	return pool.NewFake(pool.State{EntropyAvail: avail, PoolSize: 256, WriteWakeupThreshold: 256, Semantics: pool.Modern, PollMeansReady: true})
}

func legacyFake(avail int) *pool.Fake {
	return pool.NewFake(pool.State{EntropyAvail: avail, PoolSize: 4096, WriteWakeupThreshold: 896, Semantics: pool.Legacy})
}

func cfg(threshold int, timeout time.Duration, on config.OnTimeout) config.Config {
	return config.Config{Threshold: threshold, Timeout: timeout, OnTimeout: on, Mode: pool.Passive}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name string
		fake *pool.Fake
		cfg  config.Config
		// act runs while the gate waits.
		act         func(f *pool.Fake)
		wantErr     error
		wantPhase   gatestate.Phase
		wantOutcome gatestate.Outcome
		wantPhases  []gatestate.Phase
		wantThresh  int
	}{
		{
			name:        "already ready opens without waiting",
			fake:        func() *pool.Fake { f := modernFake(256); f.SetReady(); return f }(),
			cfg:         cfg(256, 0, config.Fail),
			wantPhase:   gatestate.Open,
			wantOutcome: gatestate.Ready,
			wantPhases:  []gatestate.Phase{gatestate.Seeding, gatestate.Open},
			wantThresh:  256,
		},
		{
			name:        "opens when the kernel turns ready",
			fake:        modernFake(10),
			cfg:         cfg(256, time.Minute, config.Fail),
			act:         func(f *pool.Fake) { f.SetEntropyAvail(256); f.SetReady() },
			wantPhase:   gatestate.Open,
			wantOutcome: gatestate.Ready,
			wantPhases:  []gatestate.Phase{gatestate.Seeding, gatestate.Waiting, gatestate.Open},
			wantThresh:  256,
		},
		{
			name: "legacy pool: ready is not enough below the threshold",
			fake: legacyFake(100),
			cfg:  cfg(1024, time.Minute, config.Fail),
			act: func(f *pool.Fake) {
				f.SetReady()
				time.Sleep(30 * time.Millisecond)
				f.SetEntropyAvail(1100)
			},
			wantPhase:   gatestate.Open,
			wantOutcome: gatestate.Ready,
			wantPhases:  []gatestate.Phase{gatestate.Seeding, gatestate.Waiting, gatestate.Open},
			wantThresh:  1024,
		},
		{
			name:        "threshold above a modern pool is clamped to 256",
			fake:        modernFake(0),
			cfg:         cfg(4096, time.Minute, config.Fail),
			act:         func(f *pool.Fake) { f.SetEntropyAvail(256); f.SetReady() },
			wantPhase:   gatestate.Open,
			wantOutcome: gatestate.Ready,
			wantThresh:  256,
		},
		{
			name:        "threshold 0 waits for readiness only",
			fake:        legacyFake(5),
			cfg:         cfg(0, time.Minute, config.Fail),
			act:         func(f *pool.Fake) { f.SetReady() },
			wantPhase:   gatestate.Open,
			wantOutcome: gatestate.Ready,
		},
		{
			name:        "timeout with OnTimeout=open opens degraded",
			fake:        modernFake(4),
			cfg:         cfg(256, 50*time.Millisecond, config.Open),
			wantPhase:   gatestate.Open,
			wantOutcome: gatestate.Timeout,
			wantPhases:  []gatestate.Phase{gatestate.Seeding, gatestate.Waiting, gatestate.Open},
			wantThresh:  256,
		},
		{
			name:        "timeout with OnTimeout=fail stays shut",
			fake:        modernFake(4),
			cfg:         cfg(256, 50*time.Millisecond, config.Fail),
			wantErr:     ErrTimedOut,
			wantPhase:   gatestate.TimedOut,
			wantOutcome: gatestate.Timeout,
			wantPhases:  []gatestate.Phase{gatestate.Seeding, gatestate.Waiting, gatestate.TimedOut},
			wantThresh:  256,
		},
		{
			name:        "unknown readiness never opens by itself",
			fake:        func() *pool.Fake { f := modernFake(256); f.SetUnknown(pool.ErrUnknownReadiness); return f }(),
			cfg:         cfg(0, 50*time.Millisecond, config.Fail),
			wantErr:     ErrTimedOut,
			wantPhase:   gatestate.TimedOut,
			wantOutcome: gatestate.Timeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			g := &Gate{Pool: tt.fake, Config: tt.cfg, Sinks: []Sink{rec}, Interval: 5 * time.Millisecond}
			if tt.act != nil {
				go func() {
					time.Sleep(20 * time.Millisecond)
					tt.act(tt.fake)
				}()
			}
			p, err := g.Run(context.Background())
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Run error = %v, want %v", err, tt.wantErr)
			}
			if p.Phase != tt.wantPhase || p.Outcome != tt.wantOutcome {
				t.Errorf("final = %s/%s, want %s/%s", p.Phase, p.Outcome, tt.wantPhase, tt.wantOutcome)
			}
			if tt.wantThresh != 0 && p.Threshold != tt.wantThresh {
				t.Errorf("threshold = %d, want %d", p.Threshold, tt.wantThresh)
			}
			if tt.wantPhases != nil && fmt.Sprint(rec.phases()) != fmt.Sprint(tt.wantPhases) {
				t.Errorf("phases = %v, want %v", rec.phases(), tt.wantPhases)
			}
			if last := rec.updates[len(rec.updates)-1]; !reflect.DeepEqual(last, p) {
				t.Errorf("last update %+v is not the final progress %+v", last, p)
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	rec := &recorder{}
	g := &Gate{Pool: modernFake(0), Config: cfg(256, 0, config.Fail), Sinks: []Sink{rec}}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	p, err := g.Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if p.Phase != gatestate.Stopped || p.Outcome != gatestate.Cancelled {
		t.Errorf("final = %s/%s, want stopped/cancelled", p.Phase, p.Outcome)
	}
}

func TestRunSeedsBeforeWaiting(t *testing.T) {
	f := modernFake(0)
	rec := &recorder{}
	g := &Gate{Pool: f, Config: cfg(256, time.Second, config.Fail), Sinks: []Sink{rec}}
	seeds := []seeders.Result{{Backend: "test", Action: seeders.ActionLoad, Loaded: true, CreditedBits: 256}}
	g.Seed = func(context.Context) []seeders.Result {
		if got := rec.phases(); fmt.Sprint(got) != fmt.Sprint([]gatestate.Phase{gatestate.Seeding}) {
			t.Errorf("seeding hook ran in phases %v", got)
		}
		f.Credit(make([]byte, 32), 256)
		return seeds
	}
	p, err := g.Run(context.Background())
	if err != nil || p.Outcome != gatestate.Ready {
		t.Fatalf("Run = %+v, %v; want opened by the credited seed", p, err)
	}
	if !reflect.DeepEqual(p.Seeds, seeds) {
		t.Errorf("seeds = %+v, want the hook's", p.Seeds)
	}
	if n := rec.count(gatestate.Waiting); n != 0 {
		t.Errorf("%d waiting updates after a seed made the pool ready", n)
	}
}

func TestRunAfterOpen(t *testing.T) {
	load := seeders.Result{Backend: "test", Action: seeders.ActionLoad}
	refresh := seeders.Result{Backend: "test", Action: seeders.ActionRefresh, Refreshed: true, StoredCreditable: true}
	tests := []struct {
		name      string
		fake      *pool.Fake
		wantHook  bool
		wantSeeds []seeders.Result
	}{
		{name: "opened: the seeds are refreshed after the outcome is out", fake: modernFake(256), wantHook: true, wantSeeds: []seeders.Result{load, refresh}},
		{name: "timed out uninitialized: nothing creditable to write", fake: modernFake(0), wantSeeds: []seeders.Result{load}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantHook {
				tt.fake.SetReady()
			}
			rec := &recorder{}
			ran := false
			g := &Gate{Pool: tt.fake, Config: cfg(256, 30*time.Millisecond, config.Open), Sinks: []Sink{rec}}
			g.Seed = func(context.Context) []seeders.Result { return []seeders.Result{load} }
			g.AfterOpen = func(context.Context) []seeders.Result {
				ran = true
				if last := rec.updates[len(rec.updates)-1]; last.Phase != gatestate.Open {
					t.Errorf("hook ran before the sinks heard the outcome: last phase %s", last.Phase)
				}
				return []seeders.Result{refresh}
			}
			p, _ := g.Run(context.Background())
			if ran != tt.wantHook {
				t.Errorf("hook ran: %t, want %t", ran, tt.wantHook)
			}
			if !reflect.DeepEqual(p.Seeds, tt.wantSeeds) {
				t.Errorf("seeds = %+v, want %+v", p.Seeds, tt.wantSeeds)
			}
			if last := rec.updates[len(rec.updates)-1]; !reflect.DeepEqual(last.Seeds, tt.wantSeeds) {
				t.Errorf("sinks last heard seeds %+v, want %+v", last.Seeds, tt.wantSeeds)
			}
		})
	}
}

func TestRunRateLimitsProgress(t *testing.T) {
	rec := &recorder{}
	interval := 10 * time.Millisecond
	g := &Gate{Pool: modernFake(0), Config: cfg(256, 200*time.Millisecond, config.Open), Sinks: []Sink{rec}, Interval: interval}
	start := time.Now()
	if _, err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	n := rec.count(gatestate.Waiting)
	if max := int(elapsed/interval) + 2; n > max {
		t.Errorf("%d waiting updates in %v, more than one per %v (%d)", n, elapsed, interval, max)
	}
	if n < 3 {
		t.Errorf("only %d waiting updates in %v: progress is not reported", n, elapsed)
	}
}

func TestRunLogsClamp(t *testing.T) {
	var logs []string
	g := &Gate{
		Pool:   func() *pool.Fake { f := modernFake(256); f.SetReady(); return f }(),
		Config: cfg(512, 0, config.Fail),
		Logf:   func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) },
	}
	if _, err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(logs) != 1 || !strings.Contains(logs[0], "512") || !strings.Contains(logs[0], "256") {
		t.Errorf("logs = %q, want one warning about clamping 512 to 256", logs)
	}
}

func TestFraction(t *testing.T) {
	tests := []struct {
		name string
		p    Progress
		want float64
	}{
		{name: "modern, before init, counts towards 256", p: Progress{Phase: gatestate.Waiting, Semantics: pool.Modern, Threshold: 0, EntropyAvail: 64}, want: 0.25},
		{name: "legacy, initialized, towards the threshold", p: Progress{Phase: gatestate.Waiting, Semantics: pool.Legacy, Threshold: 1000, EntropyAvail: 400, CRNGInitialized: true}, want: 0.4},
		{name: "never 100% before opening", p: Progress{Phase: gatestate.Waiting, Semantics: pool.Modern, Threshold: 256, EntropyAvail: 256}, want: 0.99},
		{name: "open is 100%", p: Progress{Phase: gatestate.Open, Outcome: gatestate.Ready}, want: 1},
		{name: "unknown counter", p: Progress{Phase: gatestate.Waiting, Semantics: pool.Modern, Threshold: 256, EntropyAvail: -1}, want: -1},
		{name: "unknown semantics and no threshold", p: Progress{Phase: gatestate.Waiting, EntropyAvail: 5}, want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Fraction(); got != tt.want {
				t.Errorf("Fraction() = %v, want %v", got, tt.want)
			}
		})
	}
}
