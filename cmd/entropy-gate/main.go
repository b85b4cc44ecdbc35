// SPDX-License-Identifier: GPL-3.0-or-later

// Command entropy-gate keeps services that need strong randomness waiting
// until the kernel's random number generator is initialized.
package main

import (
	"context"
	"os"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], cli.System(os.Stdout, os.Stderr)))
}
