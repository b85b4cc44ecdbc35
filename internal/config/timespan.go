// SPDX-License-Identifier: GPL-3.0-or-later

package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// timeUnits are systemd.time(7)'s time span units.
var timeUnits = map[string]time.Duration{
	"us": time.Microsecond, "usec": time.Microsecond, "µs": time.Microsecond,
	"ms": time.Millisecond, "msec": time.Millisecond,
	"s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
}

var errTimespan = errors.New(`not a time span (like "90s", "2min", "1min 30s", or "infinity")`)

// ParseTimespan parses a systemd time span: numbers with units, a bare
// number meaning seconds, "infinity" meaning no limit (returned as 0). A
// span above zero but below a nanosecond is an error: it would round to 0,
// and 0 means no limit, the opposite of what was written.
func ParseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "infinity" {
		return 0, nil
	}
	if s == "" {
		return 0, errTimespan
	}
	var total time.Duration
	positive := false
	for s != "" {
		num := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if num == -1 {
			num = len(s)
		}
		if num == 0 {
			return 0, errTimespan
		}
		value, err := strconv.ParseFloat(s[:num], 64)
		if err != nil {
			return 0, errTimespan
		}
		s = strings.TrimLeft(s[num:], " ")
		end := strings.IndexFunc(s, func(r rune) bool { return r == ' ' || (r >= '0' && r <= '9') })
		if end == -1 {
			end = len(s)
		}
		unit := time.Second
		if end > 0 {
			var ok bool
			if unit, ok = timeUnits[s[:end]]; !ok {
				return 0, errTimespan
			}
		}
		part := value * float64(unit)
		if part > float64(100*365*24*time.Hour) {
			return 0, fmt.Errorf("%w: too long", errTimespan)
		}
		positive = positive || part > 0
		total += time.Duration(part)
		s = strings.TrimLeft(s[end:], " ")
	}
	if positive && total == 0 {
		return 0, fmt.Errorf("%w: shorter than 1ns", errTimespan)
	}
	return total, nil
}

// FormatTimespan writes d the way systemd does ("1min 30s"), and a zero
// duration as "infinity" (no limit).
func FormatTimespan(d time.Duration) string {
	if d <= 0 {
		return "infinity"
	}
	var parts []string
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"h", time.Hour}, {"min", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}} {
		if n := d / u.d; n > 0 {
			parts = append(parts, fmt.Sprintf("%d%s", n, u.name))
			d -= n * u.d
		}
	}
	return strings.Join(parts, " ")
}
