// SPDX-License-Identifier: GPL-3.0-or-later

// Package i18n translates what a person reads: notifications, boot splash
// and console progress, and the CLI's human output. Machine output (JSON,
// journal field names, state files) is never translated.
//
// The language comes from LANGUAGE, LC_ALL, LC_MESSAGES and LANG, in that
// order, as gettext chooses it; each entry falls back from de_DE.UTF-8 to
// de_DE to de. Translations come from the installed message catalogs
// (/usr/share/locale/LL/LC_MESSAGES/entropy-gate.mo) and else from the .po
// files built into the binary.
//
// Strings are marked with G (and N for plurals) so xgettext finds them:
// xgettext --language=C --keyword=G --keyword=N:1,2.
package i18n
