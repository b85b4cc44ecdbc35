// SPDX-License-Identifier: GPL-3.0-or-later

package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFormatParseRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		event Event
	}{
		{name: "no fields", event: Event{Time: 1, Step: 0, Kind: KindDone}},
		{name: "bare fields", event: Event{Time: 1834567890, Step: 3, Kind: KindProbe,
			Fields: []Field{{"ready", "false"}, {"entropy_avail", "4"}}}},
		{name: "quoted text with escapes and control bytes", event: Event{Time: 2e9, Step: 7, Kind: KindStdout,
			Fields: []Field{{"name", "gate"}, {"line", "waiting \"for\" crng\x1b[0m ~1234abcd\ttab ü"}}}},
		{name: "empty value", event: Event{Time: 5, Step: 1, Kind: KindStderr, Fields: []Field{{"line", ""}}}},
		{name: "value with equals sign", event: Event{Time: 5, Step: 1, Kind: KindStep, Fields: []Field{{"text", "env A=B"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := Format(tt.event)
			if strings.ContainsAny(line, "\n\r\x1b") {
				t.Fatalf("Format wrote control characters: %q", line)
			}
			got, ok, err := ParseLine(line)
			if err != nil || !ok {
				t.Fatalf("ParseLine(%q) = ok %v, %v", line, ok, err)
			}
			if !reflect.DeepEqual(got, tt.event) {
				t.Errorf("round trip:\n got %#v\nwant %#v", got, tt.event)
			}
		})
	}
}

func TestParseLine(t *testing.T) {
	probe := Event{Time: 1834567890, Step: 3, Kind: KindProbe, Fields: []Field{{"ready", "false"}, {"entropy_avail", "4"}}}
	line := Format(probe)
	tests := []struct {
		name    string
		line    string
		wantOK  bool
		wantErr error
	}{
		{name: "plain", line: line, wantOK: true},
		{name: "serial line ending", line: line + "\r", wantOK: true},
		{name: "escape codes before and inside", line: "\x1b[0m\x1b[?7h" + line[:10] + "\x1b[1;32m" + line[10:] + "\x1b[0m\r", wantOK: true},
		{name: "firmware reset escape", line: "\x1bc\x1b]0;title\x07" + line, wantOK: true},
		{name: "kernel message in front", line: "[    2.345678] random: crng init done" + line, wantOK: true},
		{name: "no event", line: "[    1.000000] Run /init as init process", wantOK: false},
		{name: "kernel message inside", line: line[:20] + "[    2.3] virtio_blk virtio0: [vda]" + line[20:], wantOK: true, wantErr: ErrMalformed},
		{name: "cut short", line: line[:len(line)-3], wantOK: true, wantErr: ErrMalformed},
		{name: "no checksum", line: "EGLAB 1 2 probe ready=true", wantOK: true, wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := ParseLine(tt.line)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v (err %v)", ok, tt.wantOK, err)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if ok && err == nil && !reflect.DeepEqual(got, probe) {
				t.Errorf("got %#v, want %#v", got, probe)
			}
		})
	}
}

func TestScanInterleavedConsole(t *testing.T) {
	initEvent := Event{Time: 1_900_000_000, Kind: KindInit, Fields: []Field{{"boottime", "1900000100"}}}
	exit := Event{Time: 3 * time.Second, Step: 2, Kind: KindExit, Fields: []Field{{"code", "0"}}}
	broken := Format(Event{Time: 2, Step: 1, Kind: KindStdout, Fields: []Field{{"line", "a line that a kernel message breaks"}}})
	console := strings.Join([]string{
		"\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)",
		"[    0.000000] Linux version 6.1.0-56-amd64",
		Format(initEvent) + "\r",
		broken[:25] + "[    2.100000] virtio_blk virtio1: [vda] 2048 512-byte logical blocks",
		broken[25:],
		"[    2.500000] random: crng init done" + Format(exit) + "\r",
		"[    3.100000] reboot: Power down",
	}, "\n")
	events, malformed := Scan(console)
	if want := []Event{initEvent, exit}; !reflect.DeepEqual(events, want) {
		t.Errorf("events:\n got %v\nwant %v", events, want)
	}
	if len(malformed) != 1 || !strings.Contains(malformed[0], "virtio_blk") {
		t.Errorf("malformed = %q, want the one broken line", malformed)
	}
}

func TestEventLookup(t *testing.T) {
	e := Event{Kind: KindProbe, Fields: []Field{{"ready", "true"}, {"entropy_avail", "256"}}}
	if v, ok := e.Lookup("entropy_avail"); !ok || v != "256" {
		t.Errorf("Lookup(entropy_avail) = %q, %v", v, ok)
	}
	if _, ok := e.Lookup("missing"); ok {
		t.Error("Lookup(missing) found a value")
	}
	if got := e.Get("ready"); got != "true" {
		t.Errorf("Get(ready) = %q", got)
	}
	if s := e.String(); !strings.Contains(s, "probe") || !strings.Contains(s, "entropy_avail=256") {
		t.Errorf("String() = %q", s)
	}
}

func TestCreditStarted(t *testing.T) {
	credit := func(fields ...Field) Event { return Event{Time: 9e9, Kind: KindCredit, Fields: fields} }
	tests := []struct {
		name    string
		event   Event
		want    time.Duration
		wantErr bool
	}{
		{name: "credit with its start", event: credit(Field{"took", "12ms"}, Field{"started", "8750000000"}), want: 8750 * time.Millisecond},
		{name: "credit without its start", event: credit(Field{"took", "12ms"}), wantErr: true},
		{name: "start that is no number", event: credit(Field{"started", "8.75s"}), wantErr: true},
		{name: "another kind", event: Event{Kind: KindReady, Fields: []Field{{"started", "1"}}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.event.CreditStarted()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("CreditStarted() = %v, %v; want %v, error %t", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add(Format(Event{Time: 1, Step: 2, Kind: KindStdout, Fields: []Field{{"line", "x y"}}}))
	f.Add("EGLAB 1 2 probe ready=true ~00000000")
	f.Fuzz(func(t *testing.T, line string) {
		e, ok, err := ParseLine(line)
		if !ok || err != nil {
			return
		}
		again, ok, err := ParseLine(Format(e))
		if !ok || err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("event %#v does not survive Format: %v", e, err)
		}
	})
}
