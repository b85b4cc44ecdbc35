// SPDX-License-Identifier: GPL-3.0-or-later

// Command entropy-notify warns in the desktop session, with one
// notification, when the kernel's random number generator or this boot's
// random seeds are not in a good state.
package main

import (
	"os"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/notifier"
)

func main() {
	os.Exit(notifier.Main(os.Args[1:], os.Stdout, os.Stderr))
}
