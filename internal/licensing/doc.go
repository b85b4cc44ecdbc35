// SPDX-License-Identifier: GPL-3.0-or-later

// Package licensing knows which of the project's files carry an SPDX
// licence line, in which comment syntax and where, and adds the line to
// files that lack it (make spdx runs its command, spdx).
//
// Covered: Go, shell and Python (any file starting with #!), Makefiles
// and debian/rules, systemd units, drop-ins, presets and our
// configuration file, desktop entries, D-Bus files (XML ones get an XML
// comment), lintian overrides and debian's maintainer scripts, and
// translations (po/*.po). A template's ".in" suffix is looked through.
//
// Not covered, because no comment fits or the file is not code: Markdown
// documents (their text is the manual pages' and README's), test data and
// fuzz corpora, go.mod and go.sum, debian/changelog, control, copyright
// and source/format (debian/copyright states the licence), LICENSE
// itself, and po/entropy-gate.pot, which xgettext writes anew.
package licensing
