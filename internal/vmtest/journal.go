// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Units holds `systemctl show` output: each unit's properties by its Id.
type Units map[string]map[string]string

// ParseUnits reads the output of `systemctl show --property=Id,…` for one
// or more units: KEY=VALUE lines, a blank line between units. Every unit
// must have the Id property.
func ParseUnits(lines []string) (Units, error) {
	units := Units{}
	props := map[string]string{}
	flush := func() error {
		if len(props) == 0 {
			return nil
		}
		id := props["Id"]
		if id == "" {
			return fmt.Errorf("systemctl show: a unit without Id: %v", props)
		}
		units[id] = props
		props = map[string]string{}
		return nil
	}
	for _, line := range lines {
		if line == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("systemctl show: not KEY=VALUE: %q", line)
		}
		props[key] = value
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return units, nil
}

// Get returns a property of a unit, "" if either is missing.
func (u Units) Get(id, key string) string { return u[id][key] }

// Monotonic returns a …TimestampMonotonic property of a unit: when it
// happened on the guest's CLOCK_MONOTONIC, 0 if it never did.
func (u Units) Monotonic(id, key string) (time.Duration, error) {
	v, ok := u[id][key]
	if !ok {
		return 0, fmt.Errorf("%s: no property %s", id, key)
	}
	usec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %s: %w", id, key, err)
	}
	return time.Duration(usec) * time.Microsecond, nil
}

// JournalEntry is one message of `journalctl -o short-monotonic`.
type JournalEntry struct {
	Time    time.Duration // the guest's CLOCK_MONOTONIC
	Ident   string        // syslog identifier, e.g. "kernel" or "systemd"
	Message string
}

// journalLine matches "[   12.070610] host ident[pid]: message".
var journalLine = regexp.MustCompile(`^\[\s*(\d+)\.(\d{6})\] \S+ ([^\s\[:]+)(?:\[\d+\])?: (.*)$`)

// ParseJournal reads the lines of `journalctl -o short-monotonic`. Lines
// of another form (boot separators, continuation lines) are skipped.
func ParseJournal(lines []string) []JournalEntry {
	var entries []JournalEntry
	for _, line := range lines {
		m := journalLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		usec, _ := strconv.ParseInt(m[2], 10, 64)
		entries = append(entries, JournalEntry{
			Time:    time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond,
			Ident:   m[3],
			Message: m[4],
		})
	}
	return entries
}

// FindJournal returns the first entry of ident ("" for any) whose message
// contains text.
func FindJournal(entries []JournalEntry, ident, text string) (JournalEntry, bool) {
	for _, e := range entries {
		if (ident == "" || e.Ident == ident) && strings.Contains(e.Message, text) {
			return e, true
		}
	}
	return JournalEntry{}, false
}
