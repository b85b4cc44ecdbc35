// SPDX-License-Identifier: GPL-3.0-or-later

package plymouth

import (
	"context"
	"sync"
	"time"
)

// DefaultRetryAfter is how long a Splash leaves Plymouth alone after a
// failed request.
const DefaultRetryAfter = 5 * time.Second

// Splash shows progress text as the Plymouth message. It sends a request
// only when the text changes. When Plymouth does not answer (not running,
// refuses us, too slow), Show and Clear do nothing for RetryAfter, so an
// absent Plymouth costs nothing per update and a stuck one at most Timeout
// every RetryAfter.
//
// The zero value talks to plymouthd at DefaultAddr. A Splash is safe for
// concurrent use.
type Splash struct {
	Client Client
	// RetryAfter is the pause after a failure; 0 means DefaultRetryAfter.
	RetryAfter time.Duration
	// Logf, if set, receives the first failure, once: a boot without
	// Plymouth is normal, so it is debug information.
	Logf func(format string, args ...any)

	mu      sync.Mutex
	text    string // on the splash, if shown
	shown   bool
	retryAt time.Time
	logged  bool
}

// Show displays text, replacing the previous message.
func (s *Splash) Show(text string) {
	s.show(text)
}

// show reports whether text is now on the splash.
func (s *Splash) show(text string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown && s.text == text {
		return true
	}
	if !s.send(func(ctx context.Context) error { return s.Client.DisplayMessage(ctx, text) }) {
		s.shown = false
		return false
	}
	s.text, s.shown = text, true
	return true
}

// Clear removes the message, if one of ours is shown.
func (s *Splash) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.shown {
		return
	}
	// Not retried on failure: a Plymouth that stopped answering has most
	// likely quit and taken the message with it.
	s.shown = false
	s.send(func(ctx context.Context) error { return s.Client.DisplayMessage(ctx, "") })
}

// send runs request unless Plymouth failed recently, and reports success.
func (s *Splash) send(request func(context.Context) error) bool {
	if time.Now().Before(s.retryAt) {
		return false
	}
	err := request(context.Background())
	if err == nil {
		return true
	}
	retryAfter := s.RetryAfter
	if retryAfter <= 0 {
		retryAfter = DefaultRetryAfter
	}
	s.retryAt = time.Now().Add(retryAfter)
	if !s.logged && s.Logf != nil {
		s.Logf("boot splash unused: %v (retrying every %v)", err, retryAfter)
	}
	s.logged = true
	return false
}
