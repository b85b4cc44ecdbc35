// SPDX-License-Identifier: GPL-3.0-or-later

package gate

import (
	"context"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/plymouth"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// fakeDisplay records what the splash was asked to show; "" is a clear.
type fakeDisplay struct{ shown []string }

func (d *fakeDisplay) Show(text string) { d.shown = append(d.shown, text) }
func (d *fakeDisplay) Clear()           { d.shown = append(d.shown, "") }

var _ plymouth.Sink = (*fakeDisplay)(nil)

func TestSplashSink(t *testing.T) {
	tests := []struct {
		name      string
		on        config.OnTimeout
		ready     bool
		wantFinal string
	}{
		{name: "cleared when open", ready: true, wantFinal: ""},
		{name: "degraded message on timeout-open", on: config.Open, wantFinal: "Continuing without enough randomness"},
		{name: "failure message on timeout-fail", on: config.Fail, wantFinal: "Not enough randomness: services that need it will not start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDisplay{}
			f := modernFake(64)
			g := &Gate{Pool: f, Config: cfg(256, 100*time.Millisecond, tt.on), Sinks: []Sink{SplashSink{Display: d}}, Interval: 5 * time.Millisecond}
			if tt.ready {
				time.AfterFunc(30*time.Millisecond, func() { f.SetEntropyAvail(256); f.SetReady() })
			}
			g.Run(context.Background())
			if len(d.shown) < 2 {
				t.Fatalf("shown = %q, want progress then a final message", d.shown)
			}
			if d.shown[0] != "Initializing the random number generator… 25%" {
				t.Errorf("first message = %q", d.shown[0])
			}
			if final := d.shown[len(d.shown)-1]; final != tt.wantFinal {
				t.Errorf("final message = %q, want %q", final, tt.wantFinal)
			}
		})
	}
}

func TestSplashTextWithoutNumbers(t *testing.T) {
	p := Progress{Phase: gatestate.Waiting, Semantics: pool.SemanticsUnknown, EntropyAvail: -1, Waited: 12500 * time.Millisecond}
	if got := p.SplashText(i18n.English); !strings.HasSuffix(got, "(12 seconds)") {
		t.Errorf("SplashText() = %q, want seconds waited", got)
	}
}

func TestSplashTextTranslated(t *testing.T) {
	waiting := Progress{Phase: gatestate.Waiting, Semantics: pool.Modern, Threshold: 256, EntropyAvail: 102}
	noNumbers := Progress{Phase: gatestate.Waiting, EntropyAvail: -1, Waited: time.Second}
	tests := []struct {
		lang            string
		percent, second string
	}{
		{lang: "de", percent: "Zufallszahlengenerator wird initialisiert … 39 %", second: "Zufallszahlengenerator wird initialisiert … (1 Sekunde)"},
		{lang: "fr", percent: "Initialisation du générateur de nombres aléatoires… 39 %", second: "Initialisation du générateur de nombres aléatoires… (1 seconde)"},
		{lang: "xx", percent: "Initializing the random number generator… 39%", second: "Initializing the random number generator… (1 second)"},
	}
	for _, tt := range tests {
		t.Run(tt.lang, func(t *testing.T) {
			tr := i18n.Find([]string{tt.lang}, "")
			if got := waiting.SplashText(tr); got != tt.percent {
				t.Errorf("SplashText = %q, want %q", got, tt.percent)
			}
			if got := noNumbers.SplashText(tr); got != tt.second {
				t.Errorf("SplashText = %q, want %q", got, tt.second)
			}
		})
	}
	if got := (Progress{Phase: gatestate.Waiting, EntropyAvail: -1, Waited: 3 * time.Second}).SplashText(i18n.Find([]string{"de"}, "")); !strings.HasSuffix(got, "(3 Sekunden)") {
		t.Errorf("German plural = %q", got)
	}
}
