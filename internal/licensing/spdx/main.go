// SPDX-License-Identifier: GPL-3.0-or-later

// Command spdx adds the SPDX licence line to every file git tracks that
// should carry one and lacks it, and names each file it changed (make
// spdx). Which files, and how, is package licensing's business.
package main

import (
	"fmt"
	"log"
	"os"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/licensing"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("spdx: ")
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: spdx REPOSITORY-ROOT")
	}
	root := os.Args[1]
	files, err := licensing.ProjectFiles(root)
	if err != nil {
		return err
	}
	changed, err := licensing.AddMissing(root, files)
	for _, f := range changed {
		fmt.Println("added the licence line to", f)
	}
	return err
}
