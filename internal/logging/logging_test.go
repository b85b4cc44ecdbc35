// SPDX-License-Identifier: GPL-3.0-or-later

package logging

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/logging/logtest"
)

// styleEnv makes the test binary print its stderr's style and exit.
const styleEnv = "ENTROPY_GATE_TEST_STDERR_STYLE"

func TestMain(m *testing.M) {
	if os.Getenv(styleEnv) != "" {
		fmt.Println(StderrStyle())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestLines(t *testing.T) {
	for _, tt := range []struct {
		name    string
		style   Style
		prefix  bool
		verbose bool
		want    string
	}{
		{name: "journal", style: Journal,
			want: "<3>error: bad.conf:2: Threshold\n<4>warning: no seed\n<6>seed loaded\n<7>no splash\n"},
		{name: "kernel log", style: Kmsg,
			want: "<3>entropy-gate: error: bad.conf:2: Threshold\n<4>entropy-gate: warning: no seed\n<6>entropy-gate: seed loaded\n"},
		{name: "plain", style: Plain,
			want: "error: bad.conf:2: Threshold\nwarning: no seed\nseed loaded\n"},
		{name: "plain, verbose", style: Plain, verbose: true,
			want: "error: bad.conf:2: Threshold\nwarning: no seed\nseed loaded\nno splash\n"},
		{name: "plain with the program's name", style: Plain, prefix: true,
			want: "entropy-gate: error: bad.conf:2: Threshold\nentropy-gate: warning: no seed\nentropy-gate: seed loaded\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			l := New(&b, tt.style, "entropy-gate")
			l.PlainPrefix, l.Verbose = tt.prefix, tt.verbose
			l.Errorf("%s:%d: %s", "bad.conf", 2, "Threshold")
			l.Warningf("no seed")
			l.Printf("seed %s\n", "loaded")
			l.Debugf("no splash")
			if b.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tt.want)
			}
		})
	}
}

// TestOneLinePerMessage: a line break inside a message would start a line
// without the priority, which the journal would file at the default one.
func TestOneLinePerMessage(t *testing.T) {
	var b bytes.Buffer
	New(&b, Journal, "entropy-gate").Errorf("parse:\n%s", "line 2\n")
	if got, want := b.String(), "<3>error: parse: line 2\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestStderrStyle runs the test binary with its stderr on a journal
// stream, the kernel log, a pipe and a stream that $JOURNAL_STREAM does
// not name.
// TestKmsgLineLimit: the kernel refuses a record over its limit whole, so
// a long line is cut, at a character's boundary.
func TestKmsgLineLimit(t *testing.T) {
	var b bytes.Buffer
	New(&b, Kmsg, "entropy-gate").Warningf("%s", strings.Repeat("é", 1000))
	line := b.String()
	if len(line) > maxKmsgLine+1 || !strings.HasPrefix(line, "<4>entropy-gate: warning: éé") || !strings.HasSuffix(line, "é…\n") {
		t.Errorf("%d bytes: %q…%q", len(line), line[:40], line[len(line)-10:])
	}
	b.Reset()
	New(&b, Journal, "entropy-gate").Warningf("%s", strings.Repeat("é", 1000))
	if len(b.String()) < 2000 {
		t.Errorf("journal line cut to %d bytes", len(b.String()))
	}
}

func TestStderrStyle(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, cmd *exec.Cmd)
		want  Style
	}{
		{name: "journal stream", want: Journal, setup: func(t *testing.T, cmd *exec.Cmd) {
			s := logtest.JournalStream(t)
			cmd.Stderr, cmd.Env = s.Child, append(cmd.Env, s.Env)
		}},
		{name: "another stream", want: Plain, setup: func(t *testing.T, cmd *exec.Cmd) {
			s, other := logtest.JournalStream(t), logtest.JournalStream(t)
			cmd.Stderr, cmd.Env = s.Child, append(cmd.Env, other.Env)
		}},
		{name: "pipe", want: Plain, setup: func(t *testing.T, cmd *exec.Cmd) {
			cmd.Stderr = &bytes.Buffer{}
		}},
		{name: "kernel log", want: Kmsg, setup: func(t *testing.T, cmd *exec.Cmd) {
			// Nothing is written: opening it for writing needs root.
			f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
			if err != nil {
				t.Skipf("open /dev/kmsg: %v (needs root: sudo make test)", err)
			}
			t.Cleanup(func() { f.Close() })
			cmd.Stderr = f
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), styleEnv+"=1")
			tt.setup(t, cmd)
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(out)); got != tt.want.String() {
				t.Errorf("style %s, want %s", got, tt.want)
			}
		})
	}
}

func TestWithIdentifier(t *testing.T) {
	fields := map[string]string{"MESSAGE_ID": "a5a4b28754a34a7395465a3846f60945"}
	tagged := withIdentifier(fields)
	if tagged["SYSLOG_IDENTIFIER"] != "entropy-gate" || tagged["MESSAGE_ID"] != fields["MESSAGE_ID"] {
		t.Errorf("tagged fields %v", tagged)
	}
	if _, changed := fields["SYSLOG_IDENTIFIER"]; changed {
		t.Error("the caller's fields changed")
	}
	if got := withIdentifier(nil); len(got) != 1 {
		t.Errorf("no fields: %v", got)
	}
}
