// SPDX-License-Identifier: GPL-3.0-or-later

package vmtest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

// A program (such as a demo) prepares a lab without a testing.T, boots
// a guest and prints its timeline.
func ExamplePrepare() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lab, err := vmtest.Prepare(ctx, vmtest.Options{Logf: log.Printf})
	if err != nil {
		log.Fatal(err)
	}
	defer lab.Close()
	gate, err := lab.Build(ctx, "./cmd/entropy-gate")
	if err != nil {
		log.Fatal(err)
	}
	res, err := lab.Boot(ctx, vmtest.Config{
		Files: map[string]string{"/bin/entropy-gate": gate},
		Script: `
			probe
			start gate /bin/entropy-gate wait
			sleep 2s
			credit 256
			wait gate
		`,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(res.Timeline())
}
