// SPDX-License-Identifier: GPL-3.0-or-later

package plymouth_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/plymouth"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

func modernFake(avail int) *pool.Fake {
	return pool.NewFake(pool.State{EntropyAvail: avail, PoolSize: 256, Semantics: pool.Modern, PollMeansReady: true})
}

// artifactDir is where tests keep what a person should look at: the
// directory in $ENTROPY_GATE_ARTIFACTS, else build/artifacts in the tree.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ENTROPY_GATE_ARTIFACTS")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "build", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

var escapes = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r`)

// TestGateProgressOnRealSplash runs the gate against a fake kernel with
// its progress on a real plymouthd: the messages arrive in order, the
// last one is the clear, and the text is on the screen.
func TestGateProgressOnRealSplash(t *testing.T) {
	d := plymouth.StartDaemon(t, true)
	f := modernFake(64)
	g := &gate.Gate{
		Pool:     f,
		Config:   config.Config{Threshold: 256, Timeout: time.Minute, Mode: pool.Passive},
		Sinks:    []gate.Sink{gate.SplashSink{Display: &plymouth.Splash{}, Translator: i18n.English}},
		Interval: 20 * time.Millisecond,
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		f.SetEntropyAvail(128)
		time.Sleep(300 * time.Millisecond)
		f.SetEntropyAvail(256)
		f.SetReady()
	}()
	var final gate.Progress
	if err := d.Run(func() (err error) { final, err = g.Run(context.Background()); return err }); err != nil {
		t.Fatal(err)
	}
	if final.Outcome != "ready" {
		t.Fatalf("gate ended %s/%s", final.Phase, final.Outcome)
	}

	const progress = "Initializing the random number generator… "
	want := []string{progress + "25%", progress + "50%", ""}
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = d.DebugLines(t, ": displaying message "); len(got) >= len(want) {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("plymouthd displayed %q, want %q", got, want)
	}
	screen := escapes.ReplaceAllString(string(d.Screen()), "")
	if !strings.Contains(screen, progress+"50%") {
		t.Errorf("progress not on the splash:\n%s", screen)
	}
	capture := filepath.Join(artifactDir(t), "plymouth-splash.txt")
	if err := os.WriteFile(capture, []byte(screen), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("splash capture: %s", capture)
}

// BenchmarkGateWithSplash measures the gate's reaction latency, from the
// fake kernel turning ready to the gate returning with every sink told,
// with a real plymouthd behind the splash sink and with no splash sink.
func BenchmarkGateWithSplash(b *testing.B) {
	measure := func(b *testing.B, sinks func() []gate.Sink) {
		latencies := make([]time.Duration, 0, b.N)
		for range b.N {
			f := modernFake(3)
			waiting := make(chan struct{})
			g := &gate.Gate{
				Pool:   f,
				Config: config.Config{Threshold: 256, Timeout: time.Minute, Mode: pool.Passive},
				Sinks:  append(sinks(), signalOnWaiting(waiting)),
			}
			// The gate runs on this goroutine, which for the plymouthd
			// case is the thread in plymouthd's network namespace; the
			// kernel turns ready from another.
			started := make(chan time.Time, 1)
			go func() {
				<-waiting
				started <- time.Now()
				f.SetEntropyAvail(256)
				f.SetReady()
			}()
			g.Run(context.Background())
			latencies = append(latencies, time.Since(<-started))
		}
		slices.Sort(latencies)
		b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
	}
	b.Run("splash-off", func(b *testing.B) {
		measure(b, func() []gate.Sink { return nil })
	})
	b.Run("splash-plymouthd", func(b *testing.B) {
		d := plymouth.StartDaemon(b, false)
		d.Run(func() error {
			measure(b, func() []gate.Sink {
				return []gate.Sink{gate.SplashSink{Display: &plymouth.Splash{Logf: b.Logf}, Translator: i18n.English}}
			})
			return nil
		})
	})
}

// signalOnWaiting is a sink that closes ch when the gate starts waiting.
type signalOnWaiting chan struct{}

func (s signalOnWaiting) Update(p gate.Progress) {
	if p.Phase == "waiting" {
		select {
		case <-s:
		default:
			close(s)
		}
	}
}
