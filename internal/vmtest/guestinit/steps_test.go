// SPDX-License-Identifier: GPL-3.0-or-later

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest/protocol"
)

// TestSteps runs the steps that are safe on the host (no credit: that
// would credit the host's own RNG) and checks their events.
// maxRSS matches the peak RSS field of exit events.
var maxRSS = regexp.MustCompile(` maxrss_kb=[0-9]+`)

func TestSteps(t *testing.T) {
	// pollready tells a notify socket it is ready, as a service would.
	notify := filepath.Join(t.TempDir(), "notify")
	listener, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	t.Setenv("NOTIFY_SOCKET", notify)
	file := filepath.Join(t.TempDir(), "f")
	script := fmt.Sprintf(`
		write %[1]s "hello\nworld"
		cat %[1]s
		pwrite %[1]s 6 WORLD
		hash %[1]s 0 11
		-hash %[1]s 0 12
		run /bin/sh -c 'echo err >&2; exit 3'
		start job /bin/sh -c 'echo from the job'
		wait job
		env GREETING=hi
		run /bin/sh -c 'echo $GREETING'
		run /bin/sh -c 'kill -9 $$'
		probe
		waitready 1ms
		-start broken /nonexistent
		wait broken
		waitpath %[1]s 1s
		-waitpath %[1]s.missing 50ms
		pollready
		waitgone %[1]s.missing 1s
		-waitgone %[1]s 50ms
	`, file)
	steps, err := protocol.Parse(script)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	g := newGuest(&out)
	for _, s := range steps {
		if err := g.do(s); err != nil {
			g.emit(s.Index, protocol.KindError, "msg", err.Error())
		}
	}
	events, malformed := protocol.Scan(out.String())
	if len(malformed) > 0 {
		t.Fatalf("malformed lines: %q", malformed)
	}
	byStep := map[int][]string{}
	for _, e := range events {
		var fields []string
		for _, f := range e.Fields {
			fields = append(fields, f.Key+"="+f.Value)
		}
		byStep[e.Step] = append(byStep[e.Step], e.Kind+" "+strings.Join(fields, " "))
	}
	sum := sha256.Sum256([]byte("hello\nWORLD"))
	tests := []struct {
		name string
		step int
		want []string
	}{
		{name: "write makes no event", step: 1},
		{name: "cat emits each line", step: 2, want: []string{"cat path=" + file + " text=hello", "cat path=" + file + " text=world"}},
		{name: "hash of the pwritten file", step: 4, want: []string{"hash path=" + file + " offset=0 length=11 sha256=" + hex.EncodeToString(sum[:])}},
		{name: "hash past the end fails", step: 5, want: []string{"error msg=read " + file + ": 12 bytes at 0: only 11 bytes"}},
		{name: "run streams stderr and the exit code", step: 6, want: []string{"stderr line=err", "exit code=3"}},
		{name: "background job", step: 7, want: []string{"stdout name=job line=from the job", "exit code=0 name=job"}},
		{name: "env reaches commands", step: 10, want: []string{"stdout line=hi", "exit code=0"}},
		{name: "signal", step: 11, want: []string{"exit code=-1 signal=killed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range byStep[tt.step] {
				// Peak RSS varies; that exit events carry it is checked here.
				if strings.HasPrefix(e, "exit ") && !maxRSS.MatchString(e) {
					t.Errorf("exit event without peak RSS: %q", e)
				}
				got = append(got, maxRSS.ReplaceAllString(e, ""))
			}
			if len(tt.want) == 0 && len(got) == 0 {
				return
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("step %d events:\n got %q\nwant %q", tt.step, got, tt.want)
			}
		})
	}
	// The host's CRNG has long been initialized.
	if got := byStep[12]; len(got) != 1 || !strings.HasPrefix(got[0], "probe ready=true entropy_avail=") {
		t.Errorf("probe events = %q", got)
	}
	if got := byStep[13]; len(got) != 1 || !strings.HasPrefix(got[0], "ready polls=1 ") {
		t.Errorf("waitready events = %q", got)
	}
	if got := byStep[15]; len(got) != 1 || got[0] != "error msg=job broken was not started" {
		t.Errorf("wait for a job that failed to start: events %q", got)
	}
	if got := byStep[16]; len(got) != 0 {
		t.Errorf("waitpath of an existing file: events %q", got)
	}
	if got := byStep[17]; len(got) != 1 || !strings.HasPrefix(got[0], "error msg=waited 50ms for "+file+".missing") {
		t.Errorf("waitpath of a missing file: events %q", got)
	}
	if got := byStep[18]; len(got) != 1 || !strings.HasPrefix(got[0], "ready polls=poll(2) entropy_avail=") {
		t.Errorf("pollready events = %q", got)
	}
	listener.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 64)
	if n, err := listener.Read(buf); err != nil || string(buf[:n]) != "READY=1" {
		t.Errorf("pollready told the notify socket %q, %v; want READY=1", buf[:n], err)
	}
	if got := byStep[19]; len(got) != 0 {
		t.Errorf("waitgone of a missing file: events %q", got)
	}
	if got := byStep[20]; len(got) != 1 || got[0] != "error msg=waited 50ms for "+file+" to go" {
		t.Errorf("waitgone of an existing file: events %q", got)
	}
}

func TestRunToolRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "no step", args: nil},
		{name: "unknown operation", args: []string{"reboot"}},
		{name: "start needs a scenario", args: []string{"start", "job", "/bin/true"}},
		{name: "env needs a scenario", args: []string{"env", "A=B"}},
		{name: "--scenario needs one file", args: []string{"--scenario"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runTool(tt.args, &stdout, &stderr); code != 2 || stderr.Len() == 0 || stdout.Len() != 0 {
				t.Errorf("runTool(%q) = %d, stdout %q, stderr %q; want 2 and a message", tt.args, code, &stdout, &stderr)
			}
		})
	}
}

func TestRunToolProbe(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runTool([]string{"probe"}, &stdout, &stderr); code != 0 {
		t.Fatalf("runTool(probe) = %d: %s", code, &stderr)
	}
	events, _ := protocol.Scan(stdout.String())
	if len(events) != 1 || events[0].Kind != protocol.KindProbe || events[0].Step != 0 {
		t.Errorf("events = %v, want one probe event of step 0", events)
	}
}

func TestRunScenarioTool(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		script   string
		wantCode int
		want     []string // kind and, for errors, message of each event after init
	}{
		{
			name:     "every step runs, then done",
			script:   "write " + filepath.Join(dir, "f") + " hi\ncat " + filepath.Join(dir, "f"),
			wantCode: 0,
			want:     []string{"step", "step", "cat", "done"},
		},
		{
			name:     "a failing exec stops the scenario",
			script:   "probe\nexec /nonexistent/init",
			wantCode: 1,
			want:     []string{"step", "probe", "step", "error exec /nonexistent/init: no such file or directory"},
		},
		{
			name:     "a scenario that does not parse",
			script:   "reboot",
			wantCode: 1,
			want:     []string{`error line 1: invalid scenario: unknown operation "reboot"`},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprint("scenario", i))
			if err := os.WriteFile(path, []byte(tt.script), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout bytes.Buffer
			if code := runScenarioTool(path, &stdout); code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			events, malformed := protocol.Scan(stdout.String())
			if len(malformed) > 0 || len(events) == 0 {
				t.Fatalf("events %v, malformed %q", events, malformed)
			}
			if init := events[0]; init.Kind != protocol.KindInit || init.Get("scenario") != path {
				t.Errorf("first event %v, want init with scenario=%s", init, path)
			}
			var got []string
			for _, e := range events[1:] {
				if e.Kind == protocol.KindError {
					got = append(got, "error "+e.Get("msg"))
				} else {
					got = append(got, e.Kind)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("events after init:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
