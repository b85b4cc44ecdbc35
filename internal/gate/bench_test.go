// SPDX-License-Identifier: GPL-3.0-or-later

package gate

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
)

// phaseSignal is a Sink that closes a channel the first time the gate
// reports a phase.
type phaseSignal struct {
	phase gatestate.Phase
	once  sync.Once
	ch    chan struct{}
}

func (s *phaseSignal) Update(p Progress) {
	if p.Phase == s.phase {
		s.once.Do(func() { close(s.ch) })
	}
}

// awaitReady reads the notify socket until a READY=1 arrives and returns
// when it did.
func awaitReady(b *testing.B, conn *net.UnixConn) time.Time {
	buf := make([]byte, 4096)
	for {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			return time.Now()
		}
	}
}

func percentile(samples []time.Duration, p float64) time.Duration {
	s := slices.Clone(samples)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}

// BenchmarkReactionLatency measures the time from the (fake) kernel
// turning ready to READY=1 arriving on the notify socket, for the gate and
// for the usual shell-script approach of polling entropy_avail once a
// second. The baseline's figures come from the same run, so their ratio is
// what to compare across machines.
func BenchmarkReactionLatency(b *testing.B) {
	conn := notifyListener(b)
	var gate []time.Duration
	for i := 0; i < b.N; i++ {
		f := modernFake(3)
		waiting := &phaseSignal{phase: gatestate.Waiting, ch: make(chan struct{})}
		g := &Gate{Pool: f, Config: cfg(256, time.Minute, config.Fail), Sinks: []Sink{waiting, NotifySink{}}}
		done := make(chan error, 1)
		go func() { _, err := g.Run(context.Background()); done <- err }()
		<-waiting.ch
		start := time.Now()
		f.SetEntropyAvail(256)
		f.SetReady()
		gate = append(gate, awaitReady(b, conn).Sub(start))
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	// The baseline takes a second of waiting, which must not count as
	// the gate's time: the framework would stop at one sample.
	b.StopTimer()
	naive := naivePollerLatencies(b, conn)
	b.StartTimer()
	b.ReportMetric(float64(percentile(gate, 0.5).Microseconds()), "gate-p50-µs")
	b.ReportMetric(float64(percentile(gate, 0.99).Microseconds()), "gate-p99-µs")
	b.ReportMetric(float64(percentile(naive, 0.5).Microseconds()), "poll-1s-p50-µs")
	b.ReportMetric(float64(percentile(naive, 0.99).Microseconds()), "poll-1s-p99-µs")
}

// naivePollers is how many baseline pollers run at once, each starting at
// its own phase of the one-second period, so one second of waiting yields
// every sample.
const naivePollers = 50

var naiveOnce struct {
	sync.Once
	samples []time.Duration
}

// naivePollerLatencies runs the baseline once per process: loops that
// read entropy_avail every second and notify READY=1 once it reaches the
// threshold, as shell scripts around /proc do.
func naivePollerLatencies(b *testing.B, conn *net.UnixConn) []time.Duration {
	naiveOnce.Do(func() {
		f := modernFake(3)
		var wg sync.WaitGroup
		for i := 0; i < naivePollers; i++ {
			wg.Add(1)
			go func(phase time.Duration) {
				defer wg.Done()
				time.Sleep(phase)
				for {
					if s, _ := f.State(); s.EntropyAvail >= 256 {
						daemon.SdNotify(false, "READY=1")
						return
					}
					time.Sleep(time.Second)
				}
			}(time.Duration(i) * time.Second / naivePollers)
		}
		time.Sleep(time.Second)
		start := time.Now()
		f.SetEntropyAvail(256)
		for i := 0; i < naivePollers; i++ {
			naiveOnce.samples = append(naiveOnce.samples, awaitReady(b, conn).Sub(start))
		}
		wg.Wait()
	})
	return naiveOnce.samples
}
