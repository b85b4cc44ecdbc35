// SPDX-License-Identifier: GPL-3.0-or-later

package i18n

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLanguages(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want []string
	}{
		{name: "LANGUAGE list first", vars: map[string]string{"LANGUAGE": "fr:de", "LANG": "en_US.UTF-8"}, want: []string{"fr", "de", "en_US.UTF-8"}},
		{name: "LC_ALL over LC_MESSAGES over LANG", vars: map[string]string{"LC_ALL": "de_AT.UTF-8", "LC_MESSAGES": "fr_FR", "LANG": "it"}, want: []string{"de_AT.UTF-8"}},
		{name: "LC_MESSAGES over LANG", vars: map[string]string{"LC_MESSAGES": "fr_FR", "LANG": "it"}, want: []string{"fr_FR"}},
		{name: "nothing", vars: map[string]string{}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Languages(env(tt.vars)); !slices.Equal(got, tt.want) {
				t.Errorf("Languages() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{in: "de_DE.UTF-8", want: []string{"de_DE", "de"}},
		{in: "sr_RS.UTF-8@latin", want: []string{"sr_RS@latin", "sr_RS", "sr"}},
		{in: "fr", want: []string{"fr"}},
		{in: "C", want: nil},
		{in: "C.UTF-8", want: nil},
		{in: "POSIX", want: nil},
	}
	for _, tt := range tests {
		if got := candidates(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("candidates(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFindBuiltIn(t *testing.T) {
	for _, lang := range []string{"de", "fr"} {
		if got := Find([]string{lang + "_XX.UTF-8"}, t.TempDir()).Language(); got != lang {
			t.Errorf("Find(%s_XX.UTF-8) = %q, want the built-in %s", lang, got, lang)
		}
	}
}

func TestFindFallsBack(t *testing.T) {
	tests := []struct {
		name  string
		langs []string
		want  string
	}{
		{name: "unknown language is English", langs: []string{"tlh"}, want: "en"},
		{name: "first known wins", langs: []string{"tlh", "fr_CA", "de"}, want: "fr"},
		{name: "English stops the search", langs: []string{"en_GB", "de"}, want: "en"},
		{name: "C locale is skipped", langs: []string{"C.UTF-8", "de_DE"}, want: "de"},
		{name: "nothing", langs: nil, want: "en"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := Find(tt.langs, "")
			if tr.Language() != tt.want {
				t.Errorf("Find(%q) = %q, want %q", tt.langs, tr.Language(), tt.want)
			}
			if tt.want == "en" && tr.G("Ready:") != "Ready:" {
				t.Errorf("English translator changed the text")
			}
		})
	}
}

func TestInstalledCatalogWins(t *testing.T) {
	dir := t.TempDir()
	mo := filepath.Join(dir, "de", "LC_MESSAGES", Domain+".mo")
	if err := os.MkdirAll(filepath.Dir(mo), 0o755); err != nil {
		t.Fatal(err)
	}
	// A hand-made .mo with one message: "yes" → "jawohl".
	if err := os.WriteFile(mo, moFile(map[string]string{"": "Content-Type: text/plain; charset=UTF-8\n", "yes": "jawohl"}), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Find([]string{"de_DE.UTF-8"}, dir).G("yes"); got != "jawohl" {
		t.Errorf("G(yes) = %q, want the installed catalog's jawohl", got)
	}
}

func TestPluralsAndArgs(t *testing.T) {
	if got := English.N("%d bit", "%d bits", 1, 1); got != "1 bit" {
		t.Errorf("singular = %q", got)
	}
	if got := English.N("%d bit", "%d bits", 0, 0); got != "0 bits" {
		t.Errorf("plural = %q", got)
	}
	p := Find([]string{Pseudo}, "")
	if got := p.G("open after %s", "3s"); got != "⟦open after 3s⟧" {
		t.Errorf("pseudo = %q", got)
	}
}

func TestBootLanguages(t *testing.T) {
	got := BootLanguages("BOOT_IMAGE=/live/vmlinuz locales=fr_FR.UTF-8,de_DE.UTF-8 quiet", "# set by the greeter\nLANG=\"it_IT.UTF-8\"\n")
	want := []string{"fr_FR.UTF-8", "de_DE.UTF-8", "it_IT.UTF-8"}
	if !slices.Equal(got, want) {
		t.Errorf("BootLanguages = %q, want %q", got, want)
	}
	if got := BootLanguages("quiet", ""); len(got) != 0 {
		t.Errorf("BootLanguages without any = %q", got)
	}
}

// moFile writes a GNU .mo catalog (little endian, no hash table).
func moFile(msgs map[string]string) []byte {
	keys := make([]string, 0, len(msgs))
	for k := range msgs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	n := len(keys)
	le := func(b []byte, v int) []byte { return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24)) }
	header := 28
	origTable, transTable := header, header+8*n
	data := transTable + 8*n
	var strs strings.Builder
	var orig, trans []byte
	for _, k := range keys {
		orig = le(le(orig, len(k)), data+strs.Len())
		strs.WriteString(k + "\x00")
	}
	for _, k := range keys {
		trans = le(le(trans, len(msgs[k])), data+strs.Len())
		strs.WriteString(msgs[k] + "\x00")
	}
	var b []byte
	b = le(b, 0x950412de)
	b = le(b, 0)
	b = le(b, n)
	b = le(b, origTable)
	b = le(b, transTable)
	b = le(b, 0)
	b = le(b, data)
	b = append(b, orig...)
	b = append(b, trans...)
	return append(b, strs.String()...)
}
