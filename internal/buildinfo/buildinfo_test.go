// SPDX-License-Identifier: GPL-3.0-or-later

package buildinfo

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gitlab.tails.boum.org/tails/entropy-gate/internal/testenv"
)

// moduleRoot is where the Makefile is, from this package's folder.
var moduleRoot = filepath.Join("..", "..")

func TestVersionUnstamped(t *testing.T) {
	if got := Version(); got != "dev" {
		t.Errorf("Version() = %q in a test binary, want dev", got)
	}
}

// TestMakeBuildStampsTheVersion builds both binaries as a developer and
// as a distribution would, and asks each for its version.
func TestMakeBuildStampsTheVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries: skipped in -short mode")
	}
	testenv.NeedCommands(t, "make")
	const version = "v9.8.7-test"
	tests := []struct {
		name string
		args []string
		// env adds to the environment: dpkg-buildflags exports the C
		// linker's LDFLAGS, which Go's linker must never see.
		env          []string
		wantStripped bool
	}{
		{name: "make build", wantStripped: true},
		{
			name:         "packager's flags, not stripped",
			args:         []string{"STRIP=0", "LDFLAGS=-X main.packagerFlag=kept", "GOFLAGS=-buildvcs=false"},
			wantStripped: false,
		},
		{
			name:         "C flags in the environment",
			env:          []string{"LDFLAGS=-Wl,-z,relro -Wl,-z,now"},
			wantStripped: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			args := append([]string{"-s", "-C", moduleRoot, "build", "OUT=" + out, "VERSION=" + version}, tt.args...)
			build := exec.Command("make", args...)
			build.Env = append(os.Environ(), tt.env...)
			if output, err := build.CombinedOutput(); err != nil {
				t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, output)
			}
			for _, run := range [][]string{
				{"entropy-gate", "--version"},
				{"entropy-gate", "version"},
				{"entropy-notify", "--version"},
			} {
				bin := filepath.Join(out, run[0])
				got, err := exec.Command(bin, run[1:]...).Output()
				if want := run[0] + " " + version + "\n"; err != nil || string(got) != want {
					t.Errorf("%s %s: %q, %v; want %q", run[0], run[1], got, err, want)
				}
				if stripped := !hasSymbols(t, bin); stripped != tt.wantStripped {
					t.Errorf("%s: stripped = %v, want %v", run[0], stripped, tt.wantStripped)
				}
			}
		})
	}
}

// hasSymbols says whether an ELF binary keeps its symbol table.
func hasSymbols(t *testing.T, path string) bool {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.Section(".symtab") != nil
}

// TestVersionFileWithoutGit runs the Makefile in a release tarball's
// layout, without .git: the version comes from the VERSION file.
func TestVersionFileWithoutGit(t *testing.T) {
	testenv.NeedCommands(t, "make")
	file, err := os.ReadFile(filepath.Join(moduleRoot, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(file))
	if !regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(want) {
		t.Errorf("VERSION holds %q, want a version such as v0.1.0", want)
	}
	tarball := t.TempDir()
	for _, name := range []string{"Makefile", "VERSION", filepath.Join(".ci", "find-go")} {
		copyFile(t, filepath.Join(moduleRoot, name), filepath.Join(tarball, name))
	}
	got, err := exec.Command("make", "-s", "-C", tarball, "version").Output()
	if err != nil || strings.TrimSpace(string(got)) != want {
		t.Errorf("make version without git: %q, %v; want %q", got, err, want)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}
