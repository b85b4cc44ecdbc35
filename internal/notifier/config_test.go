// SPDX-License-Identifier: GPL-3.0-or-later

package notifier

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/config"
)

// TestLoadConfig checks that the notifier reads its section of the shared
// file and its drop-ins; the keys themselves are tested in package config.
func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "entropy-gate.conf")
	writeFile(t, file, "[Gate]\nTimeout=90s\n\n[Notify]\nEntropyLow=10\nRenotifyInterval=30min\n")
	writeFile(t, filepath.Join(file+".d", "10-a.conf"), "[Notify]\nEntropyLow=20\nEntropyHigh=40\nFallbackInterval=2s\n")
	got, problems := LoadConfig(file, file+".d")
	want := Config{Policy: Policy{EntropyLow: 20, EntropyHigh: 40, Renotify: 30 * time.Minute}, FallbackInterval: 2 * time.Second}
	if got != want || len(problems) != 0 {
		t.Errorf("LoadConfig = %+v, %v; want %+v", got, problems, want)
	}
	writeFile(t, file, "[Notify]\nEntropyLow=lots\n")
	got, problems = LoadConfig(file, "")
	if got != DefaultConfig() || len(problems) != 1 || !errors.Is(problems[0], config.ErrInvalidValue) {
		t.Errorf("bad value: %+v, %v", got, problems)
	}
	if got, problems := LoadConfig(filepath.Join(dir, "missing.conf"), ""); got != DefaultConfig() || len(problems) != 0 {
		t.Errorf("missing file: %+v, %v", got, problems)
	}
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLoadShippedConfig reads the configuration file the gate ships, which
// the notifier shares: its syntax must suit both parsers.
func TestLoadShippedConfig(t *testing.T) {
	const shipped = "../config/entropy-gate.conf"
	got, problems := LoadConfig(shipped, "")
	if len(problems) > 0 || got != DefaultConfig() {
		t.Errorf("LoadConfig(%s) = %+v, %v; want the defaults, no problems", shipped, got, problems)
	}
}
