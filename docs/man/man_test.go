// SPDX-License-Identifier: GPL-3.0-or-later

// Package man holds the manual pages' markdown sources; its test renders
// the pages built from them as man-db does and fails on any warning.
package man

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// renderWarnings formats a manual page file for an 80-column terminal and
// returns what groff warned about it.
func renderWarnings(t *testing.T, page string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("man", "--warnings", "-l", page)
	cmd.Env = append(os.Environ(), "MANWIDTH=80")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("man -l %s: %v\n%s", page, err, stderr.String())
	}
	return strings.TrimSpace(stderr.String())
}

func needCommands(t *testing.T) {
	t.Helper()
	for tool, pkg := range map[string]string{"make": "make", "go-md2man": "go-md2man", "man": "man-db", "groff": "groff-base"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install %s)", tool, pkg)
		}
	}
}

// TestPagesRenderWithoutWarnings builds the pages with `make man` and
// renders each one.
func TestPagesRenderWithoutWarnings(t *testing.T) {
	needCommands(t)
	out := t.TempDir()
	if b, err := exec.Command("make", "-s", "-C", "../..", "man", "MANOUT="+out).CombinedOutput(); err != nil {
		t.Fatalf("make man: %v\n%s", err, b)
	}
	sources, err := filepath.Glob("*.md")
	if err != nil || len(sources) == 0 {
		t.Fatalf("no manual page sources here: %v", err)
	}
	for _, src := range sources {
		page := strings.TrimSuffix(src, ".md")
		t.Run(page, func(t *testing.T) {
			if warnings := renderWarnings(t, filepath.Join(out, page)); warnings != "" {
				t.Errorf("%s renders with warnings:\n%s", page, warnings)
			}
		})
	}
}

// TestRenderWarningsSeesWarnings makes sure a broken page does not pass.
func TestRenderWarningsSeesWarnings(t *testing.T) {
	needCommands(t)
	page := filepath.Join(t.TempDir(), "broken.1")
	text := ".TH broken 1\n.SH NAME\nbroken \\- a page\n.SH DESCRIPTION\n" + strings.Repeat("x", 100) + "\n"
	if err := os.WriteFile(page, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if warnings := renderWarnings(t, page); !strings.Contains(warnings, "warning") {
		t.Errorf("a line too long to break gave no warning: %q", warnings)
	}
}
