// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

const (
	testKey   = "entropy_gate.seed"
	testValue = "0123abcd"
	testToken = testKey + "=" + testValue
)

func TestEditBootConfig(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		insert bool
		want   string
		res    BootConfigResult
	}{
		{
			name: "syslinux: replace an existing token, keep the spacing",
			in:   "label live\n  kernel /live/vmlinuz\n  APPEND initrd=/live/initrd.img  entropy_gate.seed=old\tquiet\n",
			want: "label live\n  kernel /live/vmlinuz\n  APPEND initrd=/live/initrd.img  " + testToken + "\tquiet\n",
			res:  BootConfigResult{Replaced: 1},
		},
		{
			name: "syslinux: no token, no insert: unchanged",
			in:   "label live\n  APPEND boot=live quiet\n",
			want: "label live\n  APPEND boot=live quiet\n",
		},
		{
			name:   "syslinux: insert at the end of every APPEND",
			in:     "label a\n  append boot=live\nlabel b\n  APPEND boot=live nopersistence   \n",
			insert: true,
			want:   "label a\n  append boot=live " + testToken + "\nlabel b\n  APPEND boot=live nopersistence " + testToken + "   \n",
			res:    BootConfigResult{Inserted: 2},
		},
		{
			name:   "grub: insert after the kernel path and arguments, not in other lines",
			in:     "menuentry 'Tails' {\n\tlinux /live/vmlinuz boot=live\n\tinitrd /live/initrd.img\n}\n",
			insert: true,
			want:   "menuentry 'Tails' {\n\tlinux /live/vmlinuz boot=live " + testToken + "\n\tinitrd /live/initrd.img\n}\n",
			res:    BootConfigResult{Inserted: 1},
		},
		{
			name:   "grub: bare kernel path",
			in:     "linuxefi /vmlinuz\n",
			insert: true,
			want:   "linuxefi /vmlinuz " + testToken + "\n",
			res:    BootConfigResult{Inserted: 1},
		},
		{
			name:   "grub: linux without a kernel path is skipped",
			in:     "linux\n",
			insert: true,
			want:   "linux\n",
			res:    BootConfigResult{Skipped: 1},
		},
		{
			name: "the kernel path is not an argument",
			in:   "linux entropy_gate.seed=x root=/dev/sda\n",
			want: "linux entropy_gate.seed=x root=/dev/sda\n",
		},
		{
			name:   "before -- (init's arguments) and a GRUB comment",
			in:     "linux /vmlinuz quiet -- single # comment\nAPPEND quiet # note\n",
			insert: true,
			want:   "linux /vmlinuz quiet " + testToken + " -- single # comment\nAPPEND quiet " + testToken + " # note\n",
			res:    BootConfigResult{Inserted: 2},
		},
		{
			name:   "CRLF line endings and no final newline",
			in:     "APPEND a\r\nAPPEND b",
			insert: true,
			want:   "APPEND a " + testToken + "\r\nAPPEND b " + testToken,
			res:    BootConfigResult{Inserted: 2},
		},
		{
			name:   "quotes or backslashes: skipped, not guessed",
			in:     "linux /vmlinuz \"acpi_osi=!Windows 2012\" entropy_gate.seed=old\nlinux /vmlinuz quiet \\\n  splash\n",
			insert: true,
			want:   "linux /vmlinuz \"acpi_osi=!Windows 2012\" entropy_gate.seed=old\nlinux /vmlinuz quiet \\\n  splash\n",
			res:    BootConfigResult{Skipped: 2},
		},
		{
			name: "comments and look-alike keys stay",
			in:   "# APPEND entropy_gate.seed=old\nAPPEND entropy_gate.seeds=1 xentropy_gate.seed=2 entropy_gate.seed\n",
			want: "# APPEND entropy_gate.seed=old\nAPPEND entropy_gate.seeds=1 xentropy_gate.seed=2 " + testToken + "\n",
			res:  BootConfigResult{Replaced: 1},
		},
		{
			name: "every occurrence on a line",
			in:   "APPEND entropy_gate.seed=1 quiet entropy_gate.seed=2\n",
			want: "APPEND " + testToken + " quiet " + testToken + "\n",
			res:  BootConfigResult{Replaced: 1},
		},
		{
			name:   "control or non-ASCII bytes: skipped",
			in:     "APPEND a\ventropy_gate.seed=old\nAPPEND b\xc2\xa0c\n",
			insert: true,
			want:   "APPEND a\ventropy_gate.seed=old\nAPPEND b\xc2\xa0c\n",
			res:    BootConfigResult{Skipped: 2},
		},
		{name: "empty file", in: "", insert: true, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := BootConfigEdit{Key: testKey, Value: testValue, Insert: tt.insert}
			got, res, err := EditBootConfig([]byte(tt.in), e)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("EditBootConfig =\n%q\nwant\n%q", got, tt.want)
			}
			if res != tt.res {
				t.Fatalf("result = %+v, want %+v", res, tt.res)
			}
			again, _, _ := EditBootConfig(got, e)
			if !bytes.Equal(again, got) {
				t.Fatalf("a second edit changed the file again:\n%q", again)
			}
		})
	}
}

func TestEditBootConfigRejectsUnsafeTokens(t *testing.T) {
	tests := []struct {
		name, key, value string
	}{
		{name: "empty key", key: "", value: "x"},
		{name: "key with =", key: "a=b", value: "x"},
		{name: "space in value", key: testKey, value: "a b"},
		{name: "quote in value", key: testKey, value: "a\"b"},
		{name: "GRUB variable in value", key: testKey, value: "$x"},
		{name: "comment in value", key: testKey, value: "#x"},
		{name: "newline in value", key: testKey, value: "a\nAPPEND b"},
		{name: "non-ASCII", key: testKey, value: "é"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := EditBootConfig([]byte("APPEND a\n"), BootConfigEdit{Key: tt.key, Value: tt.value, Insert: true})
			if !errors.Is(err, ErrBootToken) {
				t.Fatalf("EditBootConfig = %v, want ErrBootToken", err)
			}
		})
	}
}

// splitLines splits text after each newline, keeping it.
func splitLines(b []byte) [][]byte {
	var lines [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n') + 1
		if i == 0 {
			i = len(b)
		}
		lines, b = append(lines, b[:i]), b[i:]
	}
	return lines
}

// otherWords is the line's words without the ones that carry the key.
func otherWords(line []byte) []string {
	var out []string
	for _, w := range bytes.Fields(bytes.TrimRight(line, "\r\n")) {
		if string(w) != testKey && !bytes.HasPrefix(w, []byte(testKey+"=")) {
			out = append(out, string(w))
		}
	}
	return out
}

func FuzzEditBootConfig(f *testing.F) {
	for _, s := range []string{
		"label live\n  APPEND initrd=/live/initrd.img boot=live entropy_gate.seed=old quiet\n",
		"menuentry 'Tails' {\n\tlinux /live/vmlinuz boot=live -- x\n\tinitrd /i\n}\n",
		"APPEND a\r\nlinux\nlinux /k \"q\" # c\n",
	} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, text []byte, insert bool) {
		e := BootConfigEdit{Key: testKey, Value: testValue, Insert: insert}
		out, res, err := EditBootConfig(text, e)
		if err != nil {
			t.Fatal(err)
		}
		in, got := splitLines(text), splitLines(out)
		if len(in) != len(got) {
			t.Fatalf("%d lines became %d", len(in), len(got))
		}
		changed := 0
		for i := range in {
			if bytes.Equal(in[i], got[i]) {
				continue
			}
			changed++
			// Only our token may differ: same other words in the same
			// order, same line ending.
			if a, b := otherWords(in[i]), otherWords(got[i]); !slices.Equal(a, b) {
				t.Fatalf("line %d: other words changed: %q -> %q", i, in[i], got[i])
			}
			if !bytes.Equal(in[i][len(bytes.TrimRight(in[i], "\r\n")):], got[i][len(bytes.TrimRight(got[i], "\r\n")):]) {
				t.Fatalf("line %d: line ending changed", i)
			}
			for _, w := range bytes.Fields(got[i]) {
				if (string(w) == testKey || bytes.HasPrefix(w, []byte(testKey+"="))) && string(w) != testToken {
					t.Fatalf("line %d: stale token %q left beside the new one", i, w)
				}
			}
		}
		if changed > res.Replaced+res.Inserted {
			t.Fatalf("%d lines changed, result says %+v", changed, res)
		}
		if !insert && !bytes.Contains(text, []byte(testKey)) && !bytes.Equal(out, text) {
			t.Fatal("changed a file that does not carry the token, without Insert")
		}
		again, _, _ := EditBootConfig(out, e)
		if !bytes.Equal(again, out) {
			t.Fatal("editing twice differs from editing once")
		}
	})
}
