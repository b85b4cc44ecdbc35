// SPDX-License-Identifier: GPL-3.0-or-later

package main

import (
	"bytes"
	"strings"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/vmtest"
)

// TestDemo runs the README's first command as it is: four real boots of
// the lab's guest, then the live system.
func TestDemo(t *testing.T) {
	vmtest.New(t) // skips where the lab cannot run
	var out bytes.Buffer
	if err := run(nil, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"boot 1:", "(jitter)", // the new stick waits for the kernel's jitter
		"boot 2:", "boot 3:", // the same stick, and a seed-init stick: credited
		"(hwrng)",
		"seed load sector:/dev/vda@34: credited 256 bits; replacement written and verified",
		"Boot 5", "entropy-gate: seed load sector:/dev/sda@34: credited 256 bits", "Tor started",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	if strings.Count(text, "made ready by a seed from the boot medium") != 2 {
		t.Errorf("want boots 2 and 3 made ready by their seed:\n%s", text)
	}
	if err := run([]string{"extra"}, &out); err == nil {
		t.Error("demo accepted an argument")
	}
}
