// SPDX-License-Identifier: GPL-3.0-or-later

package gate

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/seeders"
)

// notifyListener is a stand-in for systemd's notify socket.
func notifyListener(t testing.TB) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

func readDatagrams(t *testing.T, conn *net.UnixConn, until string) []string {
	t.Helper()
	var msgs []string
	buf := make([]byte, 4096)
	for {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", msgs, err)
		}
		msgs = append(msgs, string(buf[:n]))
		if strings.Contains(string(buf[:n]), until) {
			return msgs
		}
	}
}

func TestNotifySequence(t *testing.T) {
	conn := notifyListener(t)
	f := modernFake(3)
	g := &Gate{Pool: f, Config: cfg(256, time.Minute, config.Fail), Sinks: []Sink{NotifySink{}}, Interval: 5 * time.Millisecond}
	time.AfterFunc(30*time.Millisecond, func() { f.SetEntropyAvail(256); f.SetReady() })
	if _, err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	msgs := readDatagrams(t, conn, "READY=1")
	if len(msgs) < 3 {
		t.Fatalf("got %q, want seeding, waiting and ready messages", msgs)
	}
	for i, m := range msgs[:len(msgs)-1] {
		if !strings.HasPrefix(m, "STATUS=") || !strings.Contains(m, "\nEXTEND_TIMEOUT_USEC=10000000") {
			t.Errorf("message %d = %q, want STATUS and EXTEND_TIMEOUT_USEC while waiting", i, m)
		}
		if strings.Contains(m, "READY=1") {
			t.Errorf("message %d = %q: READY=1 before the gate opened", i, m)
		}
	}
	if !strings.Contains(msgs[1], "Waiting for the kernel random number generator") {
		t.Errorf("waiting status = %q", msgs[1])
	}
	last := msgs[len(msgs)-1]
	if !strings.HasPrefix(last, "READY=1\nSTATUS=Open") {
		t.Errorf("last message = %q, want READY=1 and the open status", last)
	}
}

func TestNotifyNoReadyOnFailClosedTimeout(t *testing.T) {
	conn := notifyListener(t)
	g := &Gate{Pool: modernFake(3), Config: cfg(256, 20*time.Millisecond, config.Fail), Sinks: []Sink{NotifySink{}}}
	if _, err := g.Run(context.Background()); err == nil {
		t.Fatal("Run succeeded on timeout with OnTimeout=fail")
	}
	msgs := readDatagrams(t, conn, "Timed out")
	for _, m := range msgs {
		if strings.Contains(m, "READY=1") {
			t.Errorf("READY=1 sent although the gate failed closed: %q", m)
		}
	}
}

func TestJournalSink(t *testing.T) {
	type entry struct {
		msg    string
		prio   journal.Priority
		fields map[string]string
	}
	var entries []entry
	s := &JournalSink{Send: func(msg string, prio journal.Priority, fields map[string]string) error {
		entries = append(entries, entry{msg, prio, fields})
		return nil
	}}
	f := modernFake(4)
	g := &Gate{Pool: f, Config: cfg(256, 30*time.Millisecond, config.Open), Sinks: []Sink{s}, Interval: time.Millisecond}
	if _, err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("got %d entries, want one per phase (seeding, waiting, open): %+v", len(entries), entries)
	}
	end := entries[2]
	if end.prio != journal.PriWarning {
		t.Errorf("open by timeout logged at priority %d, want warning", end.prio)
	}
	for key, want := range map[string]string{
		"MESSAGE_ID":                       MessageID,
		"ENTROPY_GATE_OUTCOME":             "timed-out",
		"ENTROPY_GATE_ENTROPY_AVAIL_START": "4",
		"ENTROPY_GATE_THRESHOLD":           "256",
		"ENTROPY_GATE_MODE":                "passive",
		"ENTROPY_GATE_SEMANTICS":           "modern",
	} {
		if got := end.fields[key]; got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if us := end.fields["ENTROPY_GATE_WAIT_USEC"]; us == "" || us == "0" {
		t.Errorf("ENTROPY_GATE_WAIT_USEC = %q, want the wait time", us)
	}
}

func TestJournalSinkFallsBackToLog(t *testing.T) {
	var lines []string
	s := &JournalSink{Logf: func(format string, args ...any) { lines = append(lines, format) }}
	s.Update(Progress{Phase: gatestate.Waiting, EntropyAvail: -1})
	s.Update(Progress{Phase: gatestate.Waiting, EntropyAvail: -1})
	if len(lines) != 1 {
		t.Errorf("logged %d lines for one phase, want 1", len(lines))
	}
}

func TestTerminalSink(t *testing.T) {
	var b bytes.Buffer
	s := &TerminalSink{W: &b}
	s.Update(Progress{Phase: gatestate.Waiting, Semantics: pool.Modern, Threshold: 256, EntropyAvail: 128})
	open := Progress{Phase: gatestate.Open, Outcome: gatestate.Ready, Threshold: 256, EntropyAvail: 256}
	s.Update(open)
	// The seeds' refresh after the wait sends the final progress again.
	open.Seeds = []seeders.Result{{Backend: "file:/seed", Action: seeders.ActionRefresh}}
	s.Update(open)
	out := b.String()
	if !strings.HasPrefix(out, "\r\033[KWaiting for the kernel random number generator: 50%") {
		t.Errorf("progress line = %q", out)
	}
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("want exactly one newline, at the end: %q", out)
	}
}

func TestStateFileSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "state.json")
	s := &StateFileSink{Path: path}
	start := time.Now()
	p := Progress{Phase: gatestate.Waiting, Mode: pool.Passive, Semantics: pool.Modern, Threshold: 256, EntropyAvailStart: 3, EntropyAvail: 3, Started: start, Waited: time.Second}
	s.Update(p)
	first, err := gatestate.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if first.Phase != gatestate.Waiting || first.WaitedMS != 1000 || first.Mode != "passive" {
		t.Errorf("state = %+v", first)
	}

	p.Waited = 2 * time.Second
	s.Update(p)
	if again, _ := gatestate.Read(path); again.WaitedMS != 1000 {
		t.Errorf("rewritten for a clock tick alone: waited_ms = %d", again.WaitedMS)
	}

	p.Phase, p.Outcome, p.CRNGInitialized, p.EntropyAvail, p.Waited = gatestate.Open, gatestate.Ready, true, 256, 3*time.Second
	s.Update(p)
	final, err := gatestate.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if final.Phase != gatestate.Open || final.Outcome != gatestate.Ready || final.WaitedMS != 3000 || !final.CRNGInitialized {
		t.Errorf("final state = %+v", final)
	}
}

func TestStateFileSinkReportsErrorOnce(t *testing.T) {
	var logs int
	// A path below a regular file can never be created.
	s := &StateFileSink{Path: "/dev/null/state.json", Logf: func(string, ...any) { logs++ }}
	s.Update(Progress{Phase: gatestate.Waiting})
	s.Update(Progress{Phase: gatestate.Open})
	if logs != 1 {
		t.Errorf("logged %d errors, want 1", logs)
	}
}
