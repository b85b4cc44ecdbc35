// SPDX-License-Identifier: GPL-3.0-or-later

package plymouth

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	_ Sink = (*Splash)(nil)
	_ Sink = (*Console)(nil)
	_ Sink = (*Display)(nil)
)

// logRecorder is a Logf that keeps what it was given.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logRecorder) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

func messages(requests [][]byte) []string {
	var texts []string
	for _, r := range requests {
		if r[0] == 'M' {
			texts = append(texts, strings.TrimSuffix(string(r[3:]), "\x00"))
		}
	}
	return texts
}

func TestSplashSendsOnlyChanges(t *testing.T) {
	s := startFake(t, replyWith(replyACK))
	splash := &Splash{Client: Client{Addr: s.addr}}
	splash.Clear() // nothing shown yet: no request
	for _, text := range []string{"10%", "10%", "40%", "40%", "40%", "100%"} {
		splash.Show(text)
	}
	splash.Clear()
	splash.Clear()
	splash.Show("100%") // shown again after a clear
	want := []string{"10%", "40%", "100%", "", "100%"}
	if got := messages(s.received()); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("plymouth received messages %q, want %q", got, want)
	}
}

func TestSplashWithoutPlymouth(t *testing.T) {
	tests := []struct {
		name  string
		reply func(net.Conn) // nil: nothing listens
	}{
		{"refused as non-root", replyWith(replyNAK)},
		{"hung", neverReply},
		{"not running", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var server *fakeServer
			addr := noServer()
			if tt.reply != nil {
				server = startFake(t, tt.reply)
				addr = server.addr
			}
			var log logRecorder
			splash := &Splash{Client: Client{Addr: addr, Timeout: 20 * time.Millisecond}, RetryAfter: time.Hour, Logf: log.logf}
			for i := range 100 {
				if splash.show(fmt.Sprintf("%d%%", i)) {
					t.Fatalf("Show reported the text on a splash that does not answer")
				}
			}
			splash.Clear()
			if log.count() != 1 {
				t.Errorf("logged %d times, want once: %q", log.count(), log.lines)
			}
			if server != nil && server.connections() != 1 {
				t.Errorf("plymouth saw %d connections for 100 updates, want 1", server.connections())
			}
		})
	}
}

func TestSplashRetriesAfterPause(t *testing.T) {
	var refuse sync.Mutex
	refusing := true
	s := startFake(t, func(conn net.Conn) {
		refuse.Lock()
		defer refuse.Unlock()
		if refusing {
			conn.Write([]byte{replyNAK})
			return
		}
		conn.Write([]byte{replyACK})
	})
	splash := &Splash{Client: Client{Addr: s.addr}, RetryAfter: time.Nanosecond}
	splash.Show("40%")
	refuse.Lock()
	refusing = false
	refuse.Unlock()
	time.Sleep(time.Millisecond)
	splash.Show("40%") // same text, but it never reached the splash
	if got := messages(s.received()); len(got) != 2 {
		t.Errorf("plymouth received %q, want the text twice (refused, then accepted)", got)
	}
}

// consoleFile stands in for the console device, which exists before anyone
// writes to it.
func consoleFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "console")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConsole(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		do       func(*Console)
		want     string
	}{
		{"first line at once", time.Hour, func(c *Console) { c.Show("10%") }, "10%\n"},
		{"rate limited", time.Hour, func(c *Console) { c.Show("10%"); c.Show("40%") }, "10%\n"},
		{"repeats skipped", time.Nanosecond, func(c *Console) {
			c.Show("10%")
			c.Show("10%")
			c.Show("40%")
		}, "10%\n40%\n"},
		{"one line", time.Nanosecond, func(c *Console) { c.Show("a\nb\x1b[2J") }, "a b [2J\n"},
		{"empty writes nothing", time.Nanosecond, func(c *Console) { c.Show("") }, ""},
		{"clear allows repeat", time.Nanosecond, func(c *Console) {
			c.Show("done")
			c.Clear()
			c.Show("done")
		}, "done\ndone\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := consoleFile(t)
			c := &Console{Path: path, Interval: tt.interval}
			tt.do(c)
			if got := readFile(t, path); got != tt.want {
				t.Errorf("console got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConsoleMissingDevice(t *testing.T) {
	var log logRecorder
	c := &Console{Path: filepath.Join(t.TempDir(), "missing", "console"), Interval: time.Nanosecond, Logf: log.logf}
	for i := range 10 {
		c.Show(fmt.Sprint(i))
	}
	if log.count() != 1 || !strings.Contains(log.lines[0], "open console") {
		t.Errorf("logged %q, want one open error", log.lines)
	}
}

func TestDisplay(t *testing.T) {
	t.Run("splash answers", func(t *testing.T) {
		s := startFake(t, replyWith(replyACK))
		path := consoleFile(t)
		d := &Display{Splash: &Splash{Client: Client{Addr: s.addr}}, Console: &Console{Path: path}}
		d.Show("40%")
		d.Clear()
		if got := messages(s.received()); strings.Join(got, "|") != "40%|" {
			t.Errorf("plymouth received %q, want 40%% then a clear", got)
		}
		if got := readFile(t, path); got != "" {
			t.Errorf("console got %q while the splash answered", got)
		}
	})
	t.Run("no splash", func(t *testing.T) {
		path := consoleFile(t)
		d := &Display{Splash: &Splash{Client: Client{Addr: noServer()}}, Console: &Console{Path: path}}
		d.Show("40%")
		d.Clear()
		if got := readFile(t, path); got != "40%\n" {
			t.Errorf("console got %q, want the text", got)
		}
	})
	t.Run("splash quits", func(t *testing.T) {
		var quit sync.Mutex
		quitted := false
		s := startFake(t, func(conn net.Conn) {
			quit.Lock()
			defer quit.Unlock()
			if !quitted {
				conn.Write([]byte{replyACK})
			}
		})
		path := consoleFile(t)
		d := &Display{Splash: &Splash{Client: Client{Addr: s.addr}}, Console: &Console{Path: path}}
		d.Show("10%")
		quit.Lock()
		quitted = true
		quit.Unlock()
		d.Show("40%")
		if got := readFile(t, path); got != "40%\n" {
			t.Errorf("console got %q, want only the text the splash missed", got)
		}
	})
	t.Run("no console", func(t *testing.T) {
		d := &Display{Splash: &Splash{Client: Client{Addr: noServer()}}}
		d.Show("40%")
		d.Clear()
	})
}
