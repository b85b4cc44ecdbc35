// SPDX-License-Identifier: GPL-3.0-or-later

// Package config reads entropy-gate's configuration: a file in systemd's
// INI syntax, drop-ins applied in lexical order, then overrides from the
// kernel command line. A bad value is reported with its file, line and
// key, and the default stays in force, so a typo never stops a boot.
package config
