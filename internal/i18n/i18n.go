// SPDX-License-Identifier: GPL-3.0-or-later

package i18n

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/leonelquinteros/gotext"

	"gitlab.tails.boum.org/tails/entropy-gate/po"
)

// Domain is the gettext domain of entropy-gate's messages.
const Domain = "entropy-gate"

// DefaultLocaleDir is where installed message catalogs live.
const DefaultLocaleDir = "/usr/share/locale"

// Pseudo is a language that marks every translated string with ⟦ ⟧, so
// tests can find text that escaped translation.
const Pseudo = "en@pseudo"

// catalog translates one message, singular or plural.
type catalog interface {
	Get(str string, vars ...any) string
	GetN(str, plural string, n int, vars ...any) string
}

// Translator translates into one language, or passes English through.
type Translator struct {
	lang string
	cat  catalog
}

// English is the identity translator.
var English = &Translator{lang: "en"}

// Language is the language found, "en" when none was.
func (t *Translator) Language() string { return t.lang }

// G translates msgid and formats it with args, like fmt.Sprintf.
func (t *Translator) G(msgid string, args ...any) string {
	if t.cat == nil {
		return format(msgid, args)
	}
	return t.cat.Get(msgid, args...)
}

// N translates the plural form for n and formats it with args.
func (t *Translator) N(singular, plural string, n int, args ...any) string {
	if t.cat == nil {
		if n == 1 {
			return format(singular, args)
		}
		return format(plural, args)
	}
	return t.cat.GetN(singular, plural, n, args...)
}

func format(s string, args []any) string {
	if len(args) == 0 {
		return s
	}
	return fmt.Sprintf(s, args...)
}

// Languages lists the preferred languages from the environment, as
// gettext reads it: LANGUAGE (a colon-separated list), then the first of
// LC_ALL, LC_MESSAGES, LANG that is set. "C" and "POSIX" mean English.
func Languages(getenv func(string) string) []string {
	var langs []string
	for _, l := range strings.Split(getenv("LANGUAGE"), ":") {
		if l != "" {
			langs = append(langs, l)
		}
	}
	for _, name := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := getenv(name); v != "" {
			langs = append(langs, v)
			break
		}
	}
	return langs
}

// candidates expands a locale name into the names to look for, most
// specific first: de_DE.UTF-8@euro → de_DE@euro, de_DE, de.
func candidates(locale string) []string {
	if locale == "C" || locale == "POSIX" || strings.HasPrefix(locale, "C.") {
		return nil
	}
	base, modifier, _ := strings.Cut(locale, "@")
	base, _, _ = strings.Cut(base, ".")
	var out []string
	add := func(s string) {
		if s != "" && (len(out) == 0 || out[len(out)-1] != s) {
			out = append(out, s)
		}
	}
	if modifier != "" {
		add(base + "@" + modifier)
	}
	add(base)
	lang, _, _ := strings.Cut(base, "_")
	add(lang)
	return out
}

// Find returns a Translator for the first of langs with a translation in
// localeDir or among the built-in ones, or English.
func Find(langs []string, localeDir string) *Translator {
	for _, l := range langs {
		if l == Pseudo {
			return &Translator{lang: Pseudo, cat: pseudo{}}
		}
		for _, c := range candidates(l) {
			if c == "en" {
				return English
			}
			if cat := load(c, localeDir); cat != nil {
				return &Translator{lang: c, cat: cat}
			}
		}
	}
	return English
}

// load reads the installed catalog for lang, else the built-in one.
func load(lang, localeDir string) catalog {
	if localeDir != "" {
		path := filepath.Join(localeDir, lang, "LC_MESSAGES", Domain+".mo")
		if b, err := os.ReadFile(path); err == nil {
			mo := gotext.NewMo()
			mo.Parse(b)
			return mo
		}
	}
	b, err := fs.ReadFile(po.FS, lang+".po")
	if err != nil {
		return nil
	}
	p := gotext.NewPo()
	p.Parse(b)
	return p
}

// pseudo marks translated strings, so that tests can tell them from
// strings that never went through translation.
type pseudo struct{}

func (pseudo) Get(s string, vars ...any) string { return "⟦" + format(s, vars) + "⟧" }

func (pseudo) GetN(s, p string, n int, vars ...any) string {
	if n == 1 {
		return "⟦" + format(s, vars) + "⟧"
	}
	return "⟦" + format(p, vars) + "⟧"
}

var (
	defaultOnce sync.Once
	defaultT    *Translator
)

// Default is the translator for this process's environment, chosen once.
func Default() *Translator {
	defaultOnce.Do(func() {
		defaultT = Find(Languages(os.Getenv), DefaultLocaleDir)
	})
	return defaultT
}

// SetDefault replaces the process's translator, e.g. with the boot
// language read from the kernel command line.
func SetDefault(t *Translator) {
	defaultOnce.Do(func() {})
	defaultT = t
}

// G translates with the default translator.
func G(msgid string, args ...any) string { return Default().G(msgid, args...) }

// N translates a plural with the default translator.
func N(singular, plural string, n int, args ...any) string {
	return Default().N(singular, plural, n, args...)
}

// BootLanguages finds the boot language where a service at early boot
// has no locale environment: live-config's locales= and LANG= on the
// kernel command line, then LANGUAGE= and LANG= in /etc/default/locale
// (whose text is defaultLocale).
func BootLanguages(cmdline, defaultLocale string) []string {
	var langs []string
	for _, word := range strings.Fields(cmdline) {
		key, value, _ := strings.Cut(word, "=")
		switch key {
		case "locales":
			langs = append(langs, strings.Split(value, ",")...)
		case "LANG":
			langs = append(langs, value)
		}
	}
	vars := map[string]string{}
	for _, line := range strings.Split(defaultLocale, "\n") {
		key, value, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok {
			vars[key] = strings.Trim(value, "\"'")
		}
	}
	return append(langs, Languages(func(k string) string { return vars[k] })...)
}
