// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"errors"
	"strings"
	"time"

	"github.com/esiqveland/notify"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/gatestate"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/i18n"
	"gitlab.tails.boum.org/tails/entropy-gate/internal/pool"
)

// Notice is a notification ready to send.
type Notice struct {
	AppName string
	// Icon is a themed icon name, a -symbolic one: newer Adwaita themes
	// keep only those of the security-* icons.
	Icon    string
	Summary string
	// Body is markup-escaped when the server parses markup.
	Body    string
	Urgency notify.Urgency
	// DetailsLabel labels the default action, which shows the details.
	DetailsLabel string
}

// Render writes the notification for a Show action in tr's language.
// markup says whether the server parses body markup (its "body-markup"
// capability): the body is then escaped, so that no translation, file
// name or reason can inject markup or break it.
func Render(tr *i18n.Translator, a Action, f gatestate.View, markup bool) Notice {
	n := Notice{
		// TRANSLATORS: the application name shown with its notifications.
		AppName: tr.G("Entropy Gate"),
		Icon:    "security-medium-symbolic",
		Urgency: a.Conditions.Urgency(),
		// TRANSLATORS: the action of clicking on the notification.
		DetailsLabel: tr.G("Show details"),
	}
	if n.Urgency == notify.UrgencyCritical {
		n.Icon = "security-low-symbolic"
	}
	var paragraphs []string
	a.Conditions.Each(func(c Conditions) {
		summary, body := explain(tr, c, f)
		if n.Summary == "" {
			n.Summary = summary
		}
		paragraphs = append(paragraphs, body)
	})
	if a.Details {
		paragraphs = append(paragraphs, details(tr, f))
	}
	n.Body = strings.Join(paragraphs, "\n\n")
	if markup {
		n.Body = escapeMarkup(n.Body)
	}
	return n
}

// explain returns the summary and the explanation of one condition.
func explain(tr *i18n.Translator, c Conditions, f gatestate.View) (summary, body string) {
	switch c {
	case CRNGNotInitialized:
		return tr.G("Random number generator not ready"),
			tr.G("This computer cannot make strong encryption keys yet. Wait until this warning disappears before you create the Persistent Storage or new keys.")
	case ReadinessUnknown:
		return tr.G("Random number generator state unknown"),
			tr.G("The system cannot tell whether its random number generator is ready. Encryption keys made now might be weak.")
	case GateTimedOut:
		waited := waitedText(tr, time.Duration(f.Gate.WaitedMS)*time.Millisecond)
		if f.Gate.Phase == gatestate.TimedOut {
			return tr.G("Services held back for lack of randomness"),
				// TRANSLATORS: %s is a duration, like "2 minutes".
				tr.G("The wait for the random number generator timed out after %s. Services that need strong randomness, such as Tor, were not started. Restart the computer to try again.", waited)
		}
		return tr.G("Started without enough randomness"),
			// TRANSLATORS: %s is a duration, like "2 minutes".
			tr.G("The wait for the random number generator timed out after %s, and services such as Tor started anyway. Restart the computer before you create the Persistent Storage or new keys.", waited)
	case LowEntropy:
		return tr.G("Low entropy"),
			// TRANSLATORS: %d is a number of bits, like 64.
			tr.G("The kernel estimates only %d bits of entropy. Avoid creating long-term encryption keys until this warning disappears.", f.Kernel.EntropyAvail)
	case SeedNotRefreshed:
		return tr.G("Random seed not saved"),
			tr.G("The random seed for the next start could not be saved on the boot medium. The next start may have to wait longer for randomness.")
	case NoSeedCredited:
		return tr.G("No saved randomness at this start"),
			tr.G("No saved random seed could be used at this start, for example because this USB stick starts for the first time. A seed was saved for the next start: for the strongest encryption keys, create the Persistent Storage after restarting.")
	}
	return c.String(), ""
}

// details is the technical part of the body: what the kernel and the gate
// said, for a person who wants to understand or report the problem.
func details(tr *i18n.Translator, f gatestate.View) string {
	lines := []string{tr.G("Details:"), crngText(tr, f)}
	if avail, size := f.Kernel.EntropyAvail, f.Kernel.PoolSize; avail >= 0 && size > 0 {
		// TRANSLATORS: the kernel's entropy estimate and its pool size.
		lines = append(lines, tr.G("Entropy estimate: %d of %d bits", avail, size))
	} else if avail >= 0 {
		lines = append(lines, tr.G("Entropy estimate: %d bits", avail))
	}
	lines = append(lines, gateText(tr, f))
	if f.GateErr == nil && f.Gate.Reason != "" {
		lines = append(lines, tr.G("Reason: %s", f.Gate.Reason))
	}
	for _, s := range f.Gate.Seeds {
		// TRANSLATORS: a seed location's name, "load" or "refresh", then
		// what happened to it (in English).
		lines = append(lines, tr.G("Seed %s, %s: %s", s.Backend, s.Action, s.Reason))
	}
	return strings.Join(lines, "\n")
}

func crngText(tr *i18n.Translator, f gatestate.View) string {
	switch f.Readiness {
	case pool.Ready:
		return tr.G("Random number generator: initialized")
	case pool.NotReady:
		return tr.G("Random number generator: not initialized")
	}
	if f.ReadinessErr != nil {
		// TRANSLATORS: %s is a technical reason, in English.
		return tr.G("Random number generator: unknown (%s)", f.ReadinessErr)
	}
	return tr.G("Random number generator: unknown")
}

// gateText says how the wait at startup went; "startup wait" is the gate
// as the user knows it.
func gateText(tr *i18n.Translator, f gatestate.View) string {
	if errors.Is(f.GateErr, gatestate.ErrNotRun) {
		// TRANSLATORS: "Startup wait" is the wait for the random number
		// generator at startup, before services such as Tor start.
		return tr.G("Startup wait: did not run")
	}
	if f.GateErr != nil {
		return tr.G("Startup wait: state unreadable (%s)", f.GateErr)
	}
	waited := waitedText(tr, time.Duration(f.Gate.WaitedMS)*time.Millisecond)
	switch {
	case f.Gate.Phase == gatestate.Open && f.Gate.Outcome == gatestate.Timeout:
		return tr.G("Startup wait: timed out after %s, services started anyway", waited)
	case f.Gate.Phase == gatestate.Open:
		return tr.G("Startup wait: ready after %s", waited)
	case f.Gate.Phase == gatestate.TimedOut:
		return tr.G("Startup wait: timed out after %s, services held back", waited)
	case f.Gate.Phase == gatestate.Stopped:
		return tr.G("Startup wait: stopped")
	}
	return tr.G("Startup wait: in progress")
}

// waitedText is a duration in whole seconds or, from two minutes on,
// whole minutes.
func waitedText(tr *i18n.Translator, d time.Duration) string {
	if d < 2*time.Minute {
		s := int(d.Round(time.Second) / time.Second)
		return tr.N("%d second", "%d seconds", s, s)
	}
	m := int(d.Round(time.Minute) / time.Minute)
	return tr.N("%d minute", "%d minutes", m, m)
}

// markupEscaper escapes what Pango-style notification markup gives a
// meaning to in text.
var markupEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escapeMarkup(s string) string { return markupEscaper.Replace(s) }
