// SPDX-License-Identifier: GPL-3.0-or-later

// Package packaging checks entropy-gate's Debian package the way an
// archive would: its test builds it (make deb), runs lintian on it, and
// installs, removes and purges it in a copy of a clean Debian system,
// comparing the system's files before and after, as piuparts does. The
// package itself holds the file list comparison.
package packaging
