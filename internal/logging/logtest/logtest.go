// SPDX-License-Identifier: GPL-3.0-or-later

// Package logtest gives tests a stand-in for the journal's stream
// transport: a Unix stream socket that a child process gets as stderr,
// named by $JOURNAL_STREAM as systemd names the journal's.
package logtest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Stream is the test's end of a journal stream.
type Stream struct {
	// Child is the child's stderr; Env is the JOURNAL_STREAM variable
	// that names it.
	Child *os.File
	Env   string
	ours  *os.File
}

// JournalStream makes a stream for one child process.
func JournalStream(t testing.TB) *Stream {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	s := &Stream{Child: os.NewFile(uintptr(fds[0]), "journal-stream"), ours: os.NewFile(uintptr(fds[1]), "journal")}
	t.Cleanup(func() {
		s.Child.Close()
		s.ours.Close()
	})
	var st unix.Stat_t
	if err := unix.Fstat(fds[0], &st); err != nil {
		t.Fatalf("fstat: %v", err)
	}
	s.Env = fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino)
	return s
}

// Read returns what the child wrote, once it has exited.
func (s *Stream) Read(t testing.TB) string {
	t.Helper()
	s.Child.Close()
	b, err := io.ReadAll(s.ours)
	if err != nil {
		t.Fatalf("read the journal stream: %v", err)
	}
	return string(b)
}

// Stderr gives cmd a stderr: a journal stream if journal, else a pipe.
// It returns what cmd wrote there, to call once cmd has exited.
func Stderr(t testing.TB, cmd *exec.Cmd, journal bool) func() string {
	t.Helper()
	if !journal {
		var b bytes.Buffer
		cmd.Stderr = &b
		return b.String
	}
	s := JournalStream(t)
	cmd.Stderr = s.Child
	cmd.Env = append(cmd.Env, s.Env)
	return func() string { return s.Read(t) }
}

// WantLines checks that out has one line for each of want, starting
// with it.
func WantLines(t testing.TB, out string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got\n%s\nwant %d lines", out, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i], w)
		}
	}
}
