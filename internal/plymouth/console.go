// SPDX-License-Identifier: GPL-3.0-or-later

package plymouth

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultConsole is the kernel console device.
const DefaultConsole = "/dev/console"

// DefaultConsoleInterval is the least time between two console lines.
const DefaultConsoleInterval = 5 * time.Second

// Console writes progress text as lines to the console, for boots without
// a splash (nosplash, plymouth.enable=0) that would otherwise be silent
// while the gate waits. Lines are history, not a status line: a line is
// written only when the text changed and Interval has passed since the
// last one, and texts in between are dropped.
//
// A write never waits longer than Timeout, so a stopped or slow console
// cannot hold up the caller. The zero value writes to DefaultConsole.
// A Console is safe for concurrent use.
type Console struct {
	// Path is the device or file written to; "" means DefaultConsole.
	Path string
	// Interval is the least time between lines; 0 means
	// DefaultConsoleInterval.
	Interval time.Duration
	// Timeout bounds one write; 0 means DefaultTimeout.
	Timeout time.Duration
	// Logf, if set, receives the first failed write, once.
	Logf func(format string, args ...any)

	mu      sync.Mutex
	last    string // last text written
	written time.Time
	logged  bool
}

// Show writes text as a line, unless it repeats the last line or the last
// line is younger than Interval. Empty text writes nothing.
func (c *Console) Show(text string) {
	text = oneLine(text)
	c.mu.Lock()
	defer c.mu.Unlock()
	interval := c.Interval
	if interval <= 0 {
		interval = DefaultConsoleInterval
	}
	if text == "" || text == c.last || time.Since(c.written) < interval {
		return
	}
	// A failed write counts too, so a broken console is tried once per
	// Interval, not once per update.
	c.written = time.Now()
	if err := c.write(text + "\n"); err != nil {
		if !c.logged && c.Logf != nil {
			c.Logf("console progress unused: %v", err)
		}
		c.logged = true
		return
	}
	c.last = text
}

// Clear forgets the last line, so the same text may be written again. What
// is on the console stays there.
func (c *Console) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = ""
}

func (c *Console) write(line string) error {
	path, timeout := c.Path, c.Timeout
	if path == "" {
		path = DefaultConsole
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// O_NOCTTY: a service must not acquire the console as its controlling
	// terminal. O_NONBLOCK: the open does not wait for a serial line's
	// carrier. Writes to a terminal go through the runtime poller, where
	// the deadline below applies.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open console: %w", err)
	}
	defer f.Close()
	// Regular files (tests, a log file as console) have no deadlines and
	// need none: they never block.
	if err := f.SetWriteDeadline(time.Now().Add(timeout)); err != nil && !errors.Is(err, os.ErrNoDeadline) {
		return fmt.Errorf("set console deadline: %w", err)
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("write console: %w", err)
	}
	return nil
}
