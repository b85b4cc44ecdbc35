// SPDX-License-Identifier: GPL-3.0-or-later

package gate

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/journal"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/history"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/logging"
)

// NotifySink tells systemd about progress through $NOTIFY_SOCKET: STATUS=
// for `systemctl status`, EXTEND_TIMEOUT_USEC= while waiting so the start
// timeout never kills a gate that has its own, READY=1 once open. Without
// $NOTIFY_SOCKET it does nothing.
type NotifySink struct {
	// Extend is how long each EXTEND_TIMEOUT_USEC grants. It must be
	// well above the gate's update interval.
	Extend time.Duration
}

// DefaultExtend is NotifySink's default extension: many update intervals,
// so one late update never lets systemd's start timeout hit.
const DefaultExtend = 10 * time.Second

// Update implements Sink.
func (s NotifySink) Update(p Progress) {
	// SdNotify without NOTIFY_SOCKET is a no-op; with a dead socket the
	// error is not worth more than the status it carried.
	daemon.SdNotify(false, s.message(p))
}

func (s NotifySink) message(p Progress) string {
	status := "STATUS=" + p.Status(i18n.English)
	switch p.Phase {
	case gatestate.Seeding, gatestate.Waiting:
		extend := s.Extend
		if extend <= 0 {
			extend = DefaultExtend
		}
		return status + "\nEXTEND_TIMEOUT_USEC=" + strconv.FormatInt(extend.Microseconds(), 10)
	case gatestate.Open:
		return "READY=1\n" + status
	default:
		return status
	}
}

// MessageID marks the journal entry the gate writes when its wait ends,
// so boot reports can find every past boot's entry.
const MessageID = history.MessageID

// JournalSink logs the gate's phase changes, and the end of the wait with
// structured fields (wait time, entropy at start and end, threshold, mode,
// outcome). It writes to the journal when one runs, else to Logf.
type JournalSink struct {
	// Send writes one journal entry; nil means journal.Send when the
	// journal is running.
	Send func(message string, priority journal.Priority, fields map[string]string) error
	// Logf is used when there is no journal.
	Logf func(format string, args ...any)
	// Extra adds fields to the entry that ends the wait, e.g. what
	// made the pool ready, which only the caller can tell.
	Extra func(p Progress) map[string]string

	lastPhase gatestate.Phase
}

// NewJournalSink returns a JournalSink that uses the journal if it is
// there and logf otherwise.
func NewJournalSink(logf func(string, ...any)) *JournalSink {
	s := &JournalSink{Logf: logf}
	if journal.Enabled() {
		s.Send = logging.Send
	}
	return s
}

// Update implements Sink.
func (s *JournalSink) Update(p Progress) {
	if p.Phase == s.lastPhase {
		return
	}
	s.lastPhase = p.Phase
	priority := journal.PriInfo
	var fields map[string]string
	switch p.Phase {
	case gatestate.Open, gatestate.TimedOut, gatestate.Stopped:
		fields = journalFields(p)
		if s.Extra != nil {
			for k, v := range s.Extra(p) {
				fields[k] = v
			}
		}
		if p.Outcome != gatestate.Ready {
			priority = journal.PriWarning
		}
		if p.Phase == gatestate.TimedOut {
			priority = journal.PriErr
		}
	}
	if s.Send != nil && s.Send(p.Status(i18n.English), priority, fields) == nil {
		return
	}
	if s.Logf != nil {
		s.Logf("%s", p.Status(i18n.English))
	}
}

// journalFields are the structured fields of the end of a wait. They
// hold counters and names only, never seed material.
func journalFields(p Progress) map[string]string {
	return map[string]string{
		"MESSAGE_ID":                    MessageID,
		history.FieldOutcome:            string(p.Outcome),
		"ENTROPY_GATE_STATE":            string(p.Phase),
		history.FieldWaitUsec:           strconv.FormatInt(p.Waited.Microseconds(), 10),
		history.FieldEntropyAvailStart:  strconv.Itoa(p.EntropyAvailStart),
		history.FieldEntropyAvailEnd:    strconv.Itoa(p.EntropyAvail),
		history.FieldThreshold:          strconv.Itoa(p.Threshold),
		history.FieldMode:               p.Mode.String(),
		history.FieldSemantics:          p.Semantics.String(),
		"ENTROPY_GATE_CRNG_INITIALIZED": strconv.FormatBool(p.CRNGInitialized),
	}
}

// TerminalSink keeps one live progress line on a terminal, redrawn in
// place, and ends it with a newline when the wait is over.
type TerminalSink struct {
	W io.Writer
	// Translator is the user's language; nil means English.
	Translator *i18n.Translator

	// ended: the last line is written; the seeds' refresh after the wait
	// does not repeat it.
	ended bool
}

// Update implements Sink.
func (s *TerminalSink) Update(p Progress) {
	if s.ended {
		return
	}
	tr := s.Translator
	if tr == nil {
		tr = i18n.English
	}
	line := "\r\033[K" + p.Status(tr)
	if p.Phase != gatestate.Seeding && p.Phase != gatestate.Waiting {
		line += "\n"
		s.ended = true
	}
	io.WriteString(s.W, line)
}

// StateFileSink keeps the state file current. It rewrites the file only
// when something a reader acts on changed, not for every tick of the wait
// clock, so readers that watch the file with inotify wake rarely.
type StateFileSink struct {
	Path string
	// Logf reports the first write error; later ones are dropped.
	Logf func(format string, args ...any)

	last     gatestate.State
	reported sync.Once
}

// Update implements Sink.
func (s *StateFileSink) Update(p Progress) {
	st := gatestate.State{
		Version:           gatestate.Version,
		Phase:             p.Phase,
		Outcome:           p.Outcome,
		Reason:            p.Reason,
		Mode:              p.Mode.String(),
		Semantics:         p.Semantics.String(),
		Threshold:         p.Threshold,
		EntropyAvailStart: p.EntropyAvailStart,
		EntropyAvail:      p.EntropyAvail,
		CRNGInitialized:   p.CRNGInitialized,
		Started:           p.Started,
		Seeds:             p.Seeds,
	}
	if s.last.Version != 0 && sameState(st, s.last) {
		return
	}
	st.Updated = p.Started.Add(p.Waited)
	st.WaitedMS = p.Waited.Milliseconds()
	if err := gatestate.Write(s.Path, st); err != nil {
		s.reported.Do(func() {
			if s.Logf != nil {
				s.Logf("%v", fmt.Errorf("keep state file: %w", err))
			}
		})
		return
	}
	s.last = st
}

// sameState compares states but for the wait clock.
func sameState(a, b gatestate.State) bool {
	if !slices.Equal(a.Seeds, b.Seeds) {
		return false
	}
	a.Seeds, b.Seeds = nil, nil
	a.Updated, a.WaitedMS = b.Updated, b.WaitedMS
	return reflect.DeepEqual(a, b)
}
