// SPDX-License-Identifier: GPL-3.0-or-later

package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebianPackagesInTestDeps checks that `make deps` installs the
// package of every command a test may skip for.
func TestDebianPackagesInTestDeps(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "..", ".ci", "test-deps"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	_, rest, ok := strings.Cut(string(script), `packages="`)
	list, _, closed := strings.Cut(rest, `"`)
	if !ok || !closed {
		t.Fatal(`.ci/test-deps has no packages="…" list`)
	}
	for _, pkg := range strings.Fields(list) {
		listed[pkg] = true
	}
	for command, pkg := range debianPackages {
		if !listed[pkg] {
			t.Errorf("%s ships %s, which tests run, but .ci/test-deps does not install it", pkg, command)
		}
	}
}

func TestMissing(t *testing.T) {
	bin := t.TempDir()
	tool := filepath.Join(bin, "sgdisk")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	tests := []struct {
		name     string
		commands []string
		want     string // "" for no error
	}{
		{name: "all present", commands: []string{"sgdisk"}},
		{name: "nothing asked"},
		{
			name:     "known package",
			commands: []string{"sgdisk", "entropy-gate-no-such-tool", "dunstctl"},
			want:     "missing host commands: needs entropy-gate-no-such-tool, dunstctl (Debian package dunst): run `sudo make deps`",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Missing(tt.commands...)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Missing(%q) = %v, want nil", tt.commands, err)
			case tt.want != "" && (err == nil || err.Error() != tt.want || !errors.Is(err, ErrMissing)):
				t.Errorf("Missing(%q) = %v, want %q wrapping ErrMissing", tt.commands, err, tt.want)
			}
		})
	}
}
