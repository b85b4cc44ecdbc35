// SPDX-License-Identifier: GPL-3.0-or-later

package logging

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
	"golang.org/x/sys/unix"
)

// Priority is a syslog priority, as sd-daemon(3) prefixes write it.
type Priority int

// The priorities the programs use.
const (
	Err     Priority = 3
	Warning Priority = 4
	Info    Priority = 6
	Debug   Priority = 7
)

// Style says how a line carries its priority.
type Style int

const (
	// Plain lines go to a terminal or a file: errors and warnings say
	// so in words, debug lines are left out unless asked for.
	Plain Style = iota
	// Journal lines go to the journal's stream transport, which reads
	// the "<N>" prefix and tags them with the program's name itself.
	Journal
	// Kmsg lines go to the kernel log (/dev/kmsg), which reads the
	// "<N>" prefix; "program: " names their writer among the kernel's
	// own, and the journal later takes it for the syslog identifier.
	Kmsg
)

func (s Style) String() string {
	switch s {
	case Journal:
		return "journal"
	case Kmsg:
		return "kmsg"
	}
	return "plain"
}

// StderrStyle tells how this process's stderr reaches its reader.
func StderrStyle() Style {
	if ok, err := journal.StderrIsJournalStream(); err == nil && ok {
		return Journal
	}
	// /dev/kmsg is the character device 1:11 (the kernel's devices.txt).
	var st unix.Stat_t
	if err := unix.Fstat(int(os.Stderr.Fd()), &st); err == nil &&
		st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == unix.Mkdev(1, 11) {
		return Kmsg
	}
	return Plain
}

// StyleOf is StderrStyle when w is this process's stderr, else Plain.
func StyleOf(w io.Writer) Style {
	if f, ok := w.(*os.File); ok && f.Fd() == os.Stderr.Fd() {
		return StderrStyle()
	}
	return Plain
}

// Logger writes one line per message, each with one write, as the
// kernel log needs. It is safe for concurrent use.
type Logger struct {
	w       io.Writer
	style   Style
	program string
	// PlainPrefix starts plain lines with "program: " too, for
	// programs whose stderr mixes with others', such as a desktop
	// session's.
	PlainPrefix bool
	// Verbose writes debug lines in the plain style too.
	Verbose bool

	mu sync.Mutex
}

// maxKmsgLine is the longest line the kernel log takes (printk's record
// limit, 1024 bytes less its header), with room to spare.
const maxKmsgLine = 960

// New returns a Logger writing to w in style, as program.
func New(w io.Writer, style Style, program string) *Logger {
	return &Logger{w: w, style: style, program: program}
}

// Errorf logs an error: something failed, and the defaults or a fallback
// apply.
func (l *Logger) Errorf(format string, args ...any) { l.log(Err, "error: ", format, args) }

// Warningf logs a warning: something is not as it should be.
func (l *Logger) Warningf(format string, args ...any) {
	l.log(Warning, "warning: ", format, args)
}

// Printf logs information, as log.Logger's Printf would.
func (l *Logger) Printf(format string, args ...any) { l.log(Info, "", format, args) }

// Debugf logs what is only of interest when looking into a problem.
func (l *Logger) Debugf(format string, args ...any) { l.log(Debug, "", format, args) }

func (l *Logger) log(p Priority, word, format string, args []any) {
	var b strings.Builder
	switch l.style {
	case Journal:
		fmt.Fprintf(&b, "<%d>", p)
	case Kmsg:
		if p == Debug {
			return // the kernel's ring buffer is small, and shared
		}
		fmt.Fprintf(&b, "<%d>%s: ", p, l.program)
	default:
		if p == Debug && !l.Verbose {
			return
		}
		if l.PlainPrefix {
			b.WriteString(l.program + ": ")
		}
	}
	b.WriteString(word)
	// One message is one line: a line break inside would start a line
	// without the prefix, at the default priority.
	b.WriteString(strings.ReplaceAll(strings.TrimRight(fmt.Sprintf(format, args...), "\n"), "\n", " "))
	line := b.String()
	if l.style == Kmsg && len(line) > maxKmsgLine {
		// The kernel refuses a longer record whole.
		line = strings.ToValidUTF8(line[:maxKmsgLine-len("…")], "") + "…"
	}
	line += "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, line)
}

// Identifier is the syslog identifier of entropy-gate's entries in the
// journal: journald takes it from the process name for lines on stderr,
// and Send adds it to structured entries, which carry none by themselves.
const Identifier = "entropy-gate"

// Send writes a structured entry to the journal, as journal.Send does,
// with SYSLOG_IDENTIFIER=entropy-gate, so that `journalctl -t
// entropy-gate` shows it beside the program's lines.
func Send(message string, priority journal.Priority, fields map[string]string) error {
	return journal.Send(message, priority, withIdentifier(fields))
}

// withIdentifier returns fields with the syslog identifier added, leaving
// the caller's map as it was.
func withIdentifier(fields map[string]string) map[string]string {
	tagged := make(map[string]string, len(fields)+1)
	for k, v := range fields {
		tagged[k] = v
	}
	tagged["SYSLOG_IDENTIFIER"] = Identifier
	return tagged
}
