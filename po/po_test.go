// SPDX-License-Identifier: GPL-3.0-or-later

package po

import (
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/leonelquinteros/gotext"
)

// verb matches a Go format verb: %s, %d, %5.1f, %[2]s, %%.
var verb = regexp.MustCompile(`%(\[\d+\])?[-+# 0]*\d*(\.\d+)?[a-zA-Z%]`)

// placeholders returns a format's verbs: the unnumbered ones in order, as
// their arguments come in order, and the numbered ones (%[n]s) sorted, as
// a translation may put them in any order.
func placeholders(format string) (ordered, numbered []string) {
	for _, v := range verb.FindAllString(format, -1) {
		if strings.HasPrefix(v, "%[") {
			numbered = append(numbered, v)
		} else {
			ordered = append(ordered, v)
		}
	}
	slices.Sort(numbered)
	return ordered, numbered
}

// samePlaceholders says how translation differs from the placeholders of
// msgid, or returns nil.
func samePlaceholders(msgid, translation string) error {
	wantOrdered, wantNumbered := placeholders(msgid)
	gotOrdered, gotNumbered := placeholders(translation)
	if !slices.Equal(gotOrdered, wantOrdered) || !slices.Equal(gotNumbered, wantNumbered) {
		return fmt.Errorf("placeholders %q %q, want %q %q", gotOrdered, gotNumbered, wantOrdered, wantNumbered)
	}
	return nil
}

func TestSamePlaceholders(t *testing.T) {
	for _, tt := range []struct {
		name, msgid, translation string
		ok                       bool
	}{
		{name: "same", msgid: "waited %s for %d bits", translation: "%s für %d Bits gewartet", ok: true},
		{name: "numbered, moved", msgid: "%[1]s: %[2]d bits", translation: "%[2]d Bits: %[1]s", ok: true},
		{name: "no placeholder", msgid: "Show details", translation: "Details anzeigen", ok: true},
		{name: "percent sign", msgid: "%d%% done", translation: "%d %% fertig", ok: true},
		{name: "dropped", msgid: "timed out after %s", translation: "Zeitüberschreitung", ok: false},
		{name: "numbered dropped", msgid: "%[1]s: %[2]d bits", translation: "%[1]s", ok: false},
		{name: "added", msgid: "ready", translation: "bereit %s", ok: false},
		{name: "verb changed", msgid: "%d seeds", translation: "%s Seeds", ok: false},
		{name: "unnumbered reordered", msgid: "%s waited %d", translation: "%d: %s", ok: false},
		{name: "numbered lost its number", msgid: "%[1]s", translation: "%s", ok: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := samePlaceholders(tt.msgid, tt.translation); (err == nil) != tt.ok {
				t.Errorf("samePlaceholders(%q, %q) = %v, want ok %t", tt.msgid, tt.translation, err, tt.ok)
			}
		})
	}
}

// TestTranslationsKeepPlaceholders: every translation has the format
// verbs of its msgid (the first form) or msgid_plural (the others), so no
// argument goes missing or lands in the wrong place at run time.
func TestTranslationsKeepPlaceholders(t *testing.T) {
	files, err := fs.Glob(FS, "*.po")
	if err != nil || len(files) == 0 {
		t.Fatalf("no translations: %v", err)
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			b, err := FS.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			po := gotext.NewPo()
			po.Parse(b)
			translations := po.GetDomain().GetTranslations()
			if len(translations) < 10 {
				t.Fatalf("%s: only %d messages parsed", file, len(translations))
			}
			for _, tr := range translations {
				for form, text := range tr.Trs {
					if text == "" {
						continue // untranslated: the msgid shows
					}
					msgid := tr.ID
					if form > 0 && tr.PluralID != "" {
						msgid = tr.PluralID
					}
					if err := samePlaceholders(msgid, text); err != nil {
						t.Errorf("%s: msgid %q, msgstr[%d] %q: %v", file, tr.ID, form, text, err)
					}
				}
			}
		})
	}
}
