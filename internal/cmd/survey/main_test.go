// SPDX-License-Identifier: GPL-3.0-or-later

package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/history"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

func boot(outcome, readyBy string, waitedMS int64, entropyEnd int, crngInitMS, cpuBusyPct int64) measurement {
	return measurement{
		record:     history.Record{Outcome: outcome, ReadyBy: readyBy, WaitedMS: waitedMS, EntropyAvailEnd: entropyEnd},
		crngInitMS: crngInitMS,
		cpuBusyPct: cpuBusyPct,
	}
}

func TestRowCells(t *testing.T) {
	c := configuration{title: "some help"}
	crashed := boot("timed-out", "timeout", 60004, 5, -1, 1)
	crashed.daemonFailure = "exited with code 1: no entropy source"

	tests := []struct {
		name string
		row  row
		want []string
	}{
		{
			name: "three ready boots: median and range",
			row:  row{config: c, boots: []measurement{boot("ready", "entropy", 1500, 256, 5600, 90), boot("ready", "entropy", 1316, 256, 5440, 95), boot("ready", "entropy", 1200, 256, 5300, 100)}},
			want: []string{"some help", "3", "1.32 s (1.2 s–1.5 s)", "entropy", "5.44 s (5.3 s–5.6 s)", "256", "95 % (90 %–100 %)", ""},
		},
		{
			name: "one boot that timed out",
			row:  row{config: c, boots: []measurement{boot("timed-out", "timeout", 60005, 4, -1, 0)}},
			want: []string{"some help", "1", "not ready after 60 s", "timeout", "never", "4", "0 %", ""},
		},
		{
			name: "some boots timed out",
			row:  row{config: c, boots: []measurement{boot("ready", "seed", 80, 256, 3400, 60), boot("timed-out", "timeout", 60001, 255, 64000, 92)}},
			want: []string{"some help", "2", "0.08 s", "seed, timeout", "3.4 s (3.4 s–64 s)", "255 (255–256)", "60 % (60 %–92 %)", "1 of 2 boots not ready after 60 s"},
		},
		{
			name: "a daemon that did not run is a note",
			row:  row{config: c, boots: []measurement{crashed}},
			want: []string{"some help", "1", "not ready after 60 s", "timeout", "never", "5", "1 %", "exited with code 1: no entropy source"},
		},
		{
			name: "not measured",
			row:  row{config: c, skipped: "download haveged: no network"},
			want: []string{"some help", "0", "—", "—", "—", "—", "—", "not measured: download haveged: no network"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rowCells(tt.row, time.Minute); !slices.Equal(got, tt.want) {
				t.Errorf("rowCells =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestWriteTableAligns(t *testing.T) {
	var out bytes.Buffer
	writeTable(&out, []row{
		{config: configuration{title: "virtio-rng"}, boots: []measurement{boot("ready", "hwrng", 65, 256, 3190, 20)}},
		{config: configuration{title: "a much longer title"}, boots: []measurement{boot("timed-out", "timeout", 60005, 4, -1, 0)}},
	}, time.Minute)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "|---") {
		t.Fatalf("want a header, a rule and two rows:\n%s", out.String())
	}
	width := len([]rune(lines[0]))
	for _, l := range lines {
		if len([]rune(l)) != width || !strings.HasPrefix(l, "|") || !strings.HasSuffix(l, "|") {
			t.Errorf("ragged Markdown table line %q (want %d runes)", l, width)
		}
	}
}

func TestCPUBusyPercent(t *testing.T) {
	stat := func(step int, line string) vmtest.Event {
		return vmtest.Event{Step: step, Kind: "cat", Fields: []protocol.Field{{Key: "text", Value: line}}}
	}
	tests := []struct {
		name    string
		before  string
		after   string
		want    int64
		wantErr bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice
		{name: "idle", before: "cpu  12 0 184 0 0 0 0 0 0 0", after: "cpu  13 0 188 1994 0 0 0 0 0 0", want: 0},
		{name: "spinning", before: "cpu  13 0 258 0 0 0 2 0 0 0", after: "cpu  551 0 1693 0 0 0 2 0 0 0", want: 100},
		{name: "half, iowait counts as idle", before: "cpu  0 0 0 0 0 0 0 0 0 0", after: "cpu  30 0 20 40 10 0 0 0 0 0", want: 50},
		{name: "not the cpu line", before: "intr 1 2 3", after: "cpu  1 0 0 0 0 0 0 0 0 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &vmtest.Result{Events: []vmtest.Event{stat(1, tt.before), stat(1, "cpu0 9 9 9 9 9 9 9 9 9 9"), stat(2, tt.after)}}
			got, err := cpuBusyPercent(res, 1, 2)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("cpuBusyPercent = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSelectConfigurations(t *testing.T) {
	tests := []struct {
		name    string
		only    string
		want    []string
		wantErr bool
	}{
		{name: "all by default", only: "", want: configNames()},
		{name: "in the survey's order", only: "haveged,virtio-rng", want: []string{"virtio-rng", "haveged"}},
		{name: "unknown name", only: "virtio-rng,rngd", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := selectConfigurations(tt.only)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tt.wantErr)
			}
			var names []string
			for _, c := range got {
				names = append(names, c.name)
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("got %q, want %q", names, tt.want)
			}
		})
	}
}

func TestGateConfig(t *testing.T) {
	s := &survey{timeout: 90 * time.Second}
	if got, want := s.gateConfig(configuration{mode: "active"}), "[Gate]\nMode=active\nTimeout=90000ms\nOnTimeout=fail\n"; got != want {
		t.Errorf("no stick: %q, want %q", got, want)
	}
	if got := s.gateConfig(configuration{mode: "passive", stick: stickReadOnly}); !strings.HasSuffix(got, "[Seed.Sector]\nEnable=yes\nDevice=/dev/vda\n") {
		t.Errorf("with a stick: %q, want the sector seed on /dev/vda", got)
	}
}

// TestSurveyOneConfiguration runs the survey for real on its daemon path,
// one boot: jitterentropy-rngd from Debian in the guest.
func TestSurveyOneConfiguration(t *testing.T) {
	vmtest.New(t) // skips where the lab cannot run
	var out, log bytes.Buffer
	err := run(t.Context(), []string{"-boots", "1", "-timeout", "30s", "-only", "jitterentropy-rngd"}, &out, &log)
	if err != nil {
		t.Fatalf("survey: %v\n%s", err, log.String())
	}
	var row string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "| jitterentropy-rngd") {
			row = l
		}
	}
	cells := strings.Split(row, "|")
	if len(cells) != len(columns)+2 {
		t.Fatalf("no jitterentropy-rngd row in\n%s", out.String())
	}
	if boots, readyBy, notes := strings.TrimSpace(cells[2]), strings.TrimSpace(cells[4]), strings.TrimSpace(cells[8]); boots != "1" || readyBy != "entropy" || notes != "" {
		t.Errorf("row %q: want one boot made ready by the daemon's credited entropy, no notes", row)
	}
	if !strings.Contains(out.String(), "Guest kernel: Debian linux-image-") || !strings.Contains(out.String(), "The survey took") {
		t.Errorf("output lacks the setup or the duration:\n%s", out.String())
	}
}
