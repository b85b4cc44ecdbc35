// SPDX-License-Identifier: GPL-3.0-or-later

package protocol

import (
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"
)

// Prefix starts every event line. Console noise may precede it on the
// same line, so parsers search for it instead of anchoring at the start.
const Prefix = "EGLAB "

// Event kinds the guest emits.
const (
	KindInit   = "init"   // init or a scenario run started: boottime (kernel uptime, ns), kernel, cmdline, scenario (its file)
	KindModule = "module" // a kernel module was loaded: name
	KindStep   = "step"   // a step begins: text
	KindStdout = "stdout" // a line of a command's standard output: line [, name]
	KindStderr = "stderr" // a line of a command's standard error: line [, name]
	KindExit   = "exit"   // a command ended: code [, signal] [, name]
	KindCredit = "credit" // RNDADDENTROPY returned: bits, bytes, took, started (CLOCK_MONOTONIC, ns)
	KindProbe  = "probe"  // readiness probe: ready, entropy_avail
	KindReady  = "ready"  // waitready or pollready saw the CRNG ready: polls, entropy_avail
	KindCat    = "cat"    // a line of a file: path, text
	KindHash   = "hash"   // SHA-256 of a byte range: path, offset, length, sha256
	KindError  = "error"  // a step failed: msg
	KindPanic  = "panic"  // init panicked: msg
	KindDone   = "done"   // every step ran; the guest powers off next
)

// ErrMalformed is wrapped by ParseLine's errors for a line that holds the
// prefix but is not a whole, intact event.
var ErrMalformed = errors.New("malformed event line")

// Field is one key=value pair of an event.
type Field struct {
	Key, Value string
}

// Event is one thing that happened in the guest.
type Event struct {
	Time   time.Duration // guest CLOCK_MONOTONIC
	Step   int           // scenario step index, 0 for init's own events
	Kind   string
	Fields []Field
}

// Lookup returns the value of the field key.
func (e Event) Lookup(key string) (string, bool) {
	for _, f := range e.Fields {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

// Get returns the value of the field key, or "" if the event has none.
func (e Event) Get(key string) string {
	v, _ := e.Lookup(key)
	return v
}

// CreditStarted returns when the ioctl of a credit event began. The kernel
// turns ready inside it, so whatever reacts to the credit may be seen
// before the event itself, never before this.
func (e Event) CreditStarted() (time.Duration, error) {
	ns, err := strconv.ParseInt(e.Get("started"), 10, 64)
	if e.Kind != KindCredit || err != nil {
		return 0, fmt.Errorf("not a credit event with its start: %v", e)
	}
	return time.Duration(ns), nil
}

// String renders the event for people: time in seconds, step, kind, fields.
func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%11.6fs  #%-2d %-7s", e.Time.Seconds(), e.Step, e.Kind)
	for _, f := range e.Fields {
		b.WriteString(" " + f.Key + "=" + encodeValue(f.Value))
	}
	return b.String()
}

// Format renders e as one event line, without the newline. Values that
// are not plain words are quoted with strconv.QuoteToASCII, so a line
// never holds control characters of its own; the trailing CRC-32 lets the
// parser reject a line that console noise broke into.
func Format(e Event) string {
	var b strings.Builder
	b.WriteString(Prefix)
	b.WriteString(strconv.FormatInt(int64(e.Time), 10))
	b.WriteString(" " + strconv.Itoa(e.Step) + " " + e.Kind)
	for _, f := range e.Fields {
		b.WriteString(" " + f.Key + "=" + encodeValue(f.Value))
	}
	body := b.String()
	return fmt.Sprintf("%s ~%08x", body, crc32.ChecksumIEEE([]byte(body)))
}

// ParseLine finds an event in one console line. It returns ok == false if
// the line has no event prefix, and an error wrapping ErrMalformed if it
// has one but the event is broken.
func ParseLine(line string) (e Event, ok bool, err error) {
	line = stripTerminalCodes(line)
	start := strings.Index(line, Prefix)
	if start < 0 {
		return Event{}, false, nil
	}
	line = strings.TrimRight(line[start:], " \t")
	body, sum, found := cutLast(line, " ~")
	if !found {
		return Event{}, true, fmt.Errorf("%w: no checksum: %q", ErrMalformed, line)
	}
	want, err := strconv.ParseUint(sum, 16, 32)
	if err != nil || len(sum) != 8 || uint32(want) != crc32.ChecksumIEEE([]byte(body)) {
		return Event{}, true, fmt.Errorf("%w: checksum mismatch: %q", ErrMalformed, line)
	}
	e, err = parseBody(strings.TrimPrefix(body, Prefix))
	if err != nil {
		return Event{}, true, fmt.Errorf("%w: %w: %q", ErrMalformed, err, line)
	}
	return e, true, nil
}

// Scan parses every event in a console transcript. Lines that hold the
// prefix but no intact event are returned in malformed.
func Scan(console string) (events []Event, malformed []string) {
	for _, line := range strings.Split(console, "\n") {
		e, ok, err := ParseLine(line)
		switch {
		case err != nil:
			malformed = append(malformed, line)
		case ok:
			events = append(events, e)
		}
	}
	return events, malformed
}

func parseBody(body string) (Event, error) {
	var e Event
	head := strings.SplitN(body, " ", 4)
	if len(head) < 3 {
		return e, errors.New("too few words")
	}
	t, err := strconv.ParseInt(head[0], 10, 64)
	if err != nil {
		return e, fmt.Errorf("time: %w", err)
	}
	if e.Step, err = strconv.Atoi(head[1]); err != nil {
		return e, fmt.Errorf("step: %w", err)
	}
	e.Time, e.Kind = time.Duration(t), head[2]
	if !isName(e.Kind) {
		return e, fmt.Errorf("bad kind %q", e.Kind)
	}
	if len(head) < 4 {
		return e, nil
	}
	rest := head[3]
	for rest != "" {
		key, value, ok := strings.Cut(rest, "=")
		if !ok || !isName(key) {
			return e, fmt.Errorf("bad field at %q", rest)
		}
		if strings.HasPrefix(value, `"`) {
			quoted, err := strconv.QuotedPrefix(value)
			if err != nil {
				return e, fmt.Errorf("field %s: %w", key, err)
			}
			rest = value[len(quoted):]
			if value, err = strconv.Unquote(quoted); err != nil {
				return e, fmt.Errorf("field %s: %w", key, err)
			}
		} else if i := strings.IndexByte(value, ' '); i >= 0 {
			value, rest = value[:i], value[i:]
		} else {
			rest = ""
		}
		e.Fields = append(e.Fields, Field{Key: key, Value: value})
		if rest != "" && rest[0] != ' ' {
			return e, fmt.Errorf("field %s: no blank after value", key)
		}
		rest = strings.TrimLeft(rest, " ")
	}
	return e, nil
}

// encodeValue leaves plain words bare and quotes everything else.
func encodeValue(v string) string {
	if v == "" {
		return `""`
	}
	for i := 0; i < len(v); i++ {
		if !isBareByte(v[i]) {
			return strconv.QuoteToASCII(v)
		}
	}
	return v
}

func isBareByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("._/:,+-=@%()[]", c) >= 0
}

func isName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// stripTerminalCodes removes ANSI escape sequences (CSI, OSC and two-byte
// escapes) and other control characters but tab, which a serial console
// and the firmware in front of the kernel sprinkle into the output.
func stripTerminalCodes(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0x1b && i+1 < len(s) && s[i+1] == '[':
			// CSI: parameters and intermediates up to a final byte 0x40–0x7e.
			i += 2
			for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
				i++
			}
		case c == 0x1b && i+1 < len(s) && s[i+1] == ']':
			// OSC: up to BEL or ESC \.
			i += 2
			for i < len(s) && s[i] != 0x07 && !(s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\') {
				i++
			}
			if i < len(s) && s[i] == 0x1b {
				i++
			}
		case c == 0x1b:
			i++ // a two-byte escape such as ESC c or ESC 7
		case c < 0x20 && c != '\t' || c == 0x7f:
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
