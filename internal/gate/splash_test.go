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
