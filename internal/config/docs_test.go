// SPDX-License-Identifier: GPL-3.0-or-later

package config

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The documents that list every configuration key.
const (
	readme  = "../../README.md"
	confMan = "../../docs/man/entropy-gate.conf.5.md"
)

// documentedKeys are the keys a document describes: Section.Key names of
// the files, and kernel command line parameters.
type documentedKeys struct {
	file, cmdline []string
}

var (
	sectionName = regexp.MustCompile(`\[([A-Za-z.]+)\]`)
	keyName     = regexp.MustCompile("[` ]([A-Za-z]+)=`")
	cmdlineName = regexp.MustCompile(`(entropy_gate\.[a-z_]+)=`)
	// manKeys is a man page line naming keys: **A=**, **B=**.
	manKeys = regexp.MustCompile(`^\*\*[A-Za-z_.]+=\*\*(, \*\*[A-Za-z_.]+=\*\*)*$`)
)

// readmeKeys reads the table of the README's Configuration section: its
// first column names a [Section] and keys, its second the command line
// parameter.
func readmeKeys(text string) documentedKeys {
	var keys documentedKeys
	_, section, _ := strings.Cut(text, "\n## Configuration\n")
	section, _, _ = strings.Cut(section, "\n## ")
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`[") {
			continue
		}
		sec := sectionName.FindStringSubmatch(cells[1])
		for _, k := range keyName.FindAllStringSubmatch(cells[1], -1) {
			keys.file = append(keys.file, sec[1]+"."+k[1])
		}
		for _, c := range cmdlineName.FindAllStringSubmatch(cells[2], -1) {
			keys.cmdline = append(keys.cmdline, c[1])
		}
	}
	return keys
}

// manPageKeys reads the definition lists of entropy-gate.conf(5): keys
// under each "## [Section]" heading, parameters under KERNEL COMMAND LINE.
func manPageKeys(text string) documentedKeys {
	var keys documentedKeys
	section := ""
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			section = ""
			if m := sectionName.FindStringSubmatch(line); m != nil {
				section = m[1]
			}
		case strings.HasPrefix(line, "# "):
			section = strings.TrimPrefix(line, "# ")
		case manKeys.MatchString(line):
			for _, k := range strings.Split(line, ", ") {
				name := strings.TrimSuffix(strings.Trim(k, "*"), "=")
				if section == "KERNEL COMMAND LINE" {
					keys.cmdline = append(keys.cmdline, name)
				} else {
					keys.file = append(keys.file, section+"."+name)
				}
			}
		}
	}
	return keys
}

// TestDocumentedKeysMatchTheParser keeps the README's table and
// entropy-gate.conf(5) from drifting away from the keys Parse accepts.
func TestDocumentedKeysMatchTheParser(t *testing.T) {
	var want documentedKeys
	for _, s := range settings {
		want.file = append(want.file, s.key())
		if s.cmdline != "" {
			want.cmdline = append(want.cmdline, s.cmdline)
		}
	}
	for _, tt := range []struct {
		name, path string
		parse      func(string) documentedKeys
	}{
		{name: "README", path: readme, parse: readmeKeys},
		{name: "entropy-gate.conf(5)", path: confMan, parse: manPageKeys},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			got := tt.parse(string(b))
			compareKeys(t, tt.path, "configuration keys", got.file, want.file)
			compareKeys(t, tt.path, "kernel command line parameters", got.cmdline, want.cmdline)
		})
	}
}

func compareKeys(t *testing.T, path, what string, documented, accepted []string) {
	t.Helper()
	for _, k := range accepted {
		if !slices.Contains(documented, k) {
			t.Errorf("%s does not document %s %s", path, what, k)
		}
	}
	for _, k := range documented {
		if !slices.Contains(accepted, k) {
			t.Errorf("%s documents %s %s, which the parser does not accept", path, what, k)
		}
	}
}

func TestDocumentParsers(t *testing.T) {
	for _, tt := range []struct {
		name  string
		parse func(string) documentedKeys
		text  string
		want  documentedKeys
	}{
		{
			name:  "README table",
			parse: readmeKeys,
			text: "# x\n| `[Not] Config=` | | |\n## Configuration\n\n| key | cmdline |\n|---|---|\n" +
				"| `[Gate] Mode=` | `entropy_gate.mode=` | `active` | how |\n| `[Seed.FAT] Enable=`, `Path=` | | `no`, `x` | a `Word=` in the meaning |\n" +
				"## Command line\n| `[Gate] After=` | | |\n",
			want: documentedKeys{file: []string{"Gate.Mode", "Seed.FAT.Enable", "Seed.FAT.Path"}, cmdline: []string{"entropy_gate.mode"}},
		},
		{
			name:  "man page",
			parse: manPageKeys,
			text: "# OPTIONS\n\n## [Gate]\n\n**Mode=**\n:   As **Threshold=**.\n\n## [Notify]\n\n**EntropyLow=**, **EntropyHigh=**\n:   x\n\n" +
				"# KERNEL COMMAND LINE\n\n**entropy_gate.mode=**\n:   As **Mode=**.\n",
			want: documentedKeys{file: []string{"Gate.Mode", "Notify.EntropyLow", "Notify.EntropyHigh"}, cmdline: []string{"entropy_gate.mode"}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.parse(tt.text)
			if !slices.Equal(got.file, tt.want.file) || !slices.Equal(got.cmdline, tt.want.cmdline) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
