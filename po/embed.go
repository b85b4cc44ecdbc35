// SPDX-License-Identifier: GPL-3.0-or-later

// Package po holds entropy-gate's translations. The .po files are built
// into the binaries as a fallback, so a binary in an initramfs, where no
// /usr/share/locale exists, still speaks the boot language.
package po

import "embed"

// FS holds every translation, as LANG.po.
//
//go:embed *.po
var FS embed.FS
