// SPDX-License-Identifier: GPL-3.0-or-later

// Package logging writes entropy-gate's log lines at a priority that their
// reader understands: with the sd-daemon "<N>" prefix where stderr is the
// journal's stream (systemd services) or the kernel log (the initramfs,
// whose lines the journal takes from /dev/kmsg later), and as plain lines
// on a terminal or in a file. It also tags the structured journal entries
// that the programs send, as journald tags the lines.
package logging
