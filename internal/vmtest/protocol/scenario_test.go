// SPDX-License-Identifier: GPL-3.0-or-later

package protocol

import (
	"errors"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	script := `
# the gate waits while init credits
probe
start gate /bin/entropy-gate wait --timeout 5s   # background
sleep 500ms
credit 256
wait gate
run /bin/sh -c 'echo "a b"; exit 3'
write /run/x "line one\nline two\ttab \"q\" \\"
-pwrite /dev/vda 17408 it\ works
env LANG=C
exec /sbin/init --log-level=debug
`
	want := []Step{
		{Index: 1, Line: 3, Op: "probe"},
		{Index: 2, Line: 4, Op: "start", Args: []string{"gate", "/bin/entropy-gate", "wait", "--timeout", "5s"}},
		{Index: 3, Line: 5, Op: "sleep", Args: []string{"500ms"}},
		{Index: 4, Line: 6, Op: "credit", Args: []string{"256"}},
		{Index: 5, Line: 7, Op: "wait", Args: []string{"gate"}},
		{Index: 6, Line: 8, Op: "run", Args: []string{"/bin/sh", "-c", `echo "a b"; exit 3`}},
		{Index: 7, Line: 9, Op: "write", Args: []string{"/run/x", "line one\nline two\ttab \"q\" \\"}},
		{Index: 8, Line: 10, Op: "pwrite", Args: []string{"/dev/vda", "17408", "it works"}, MayFail: true},
		{Index: 9, Line: 11, Op: "env", Args: []string{"LANG=C"}},
		{Index: 10, Line: 12, Op: "exec", Args: []string{"/sbin/init", "--log-level=debug"}},
	}
	got, err := Parse(script)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse:\n got %#v\nwant %#v", got, want)
	}
	for _, step := range got {
		words, err := splitWords(step.String())
		if err != nil {
			t.Fatalf("String() of step %d does not split: %v", step.Index, err)
		}
		again, err := NewStep(words[0], words[1:])
		if err != nil || again.Op != step.Op || again.MayFail != step.MayFail || !reflect.DeepEqual(again.Args, step.Args) {
			t.Errorf("step %d does not survive String(): %q → %#v, %v", step.Index, step.String(), again, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{name: "unknown operation", script: "reboot"},
		{name: "run without command", script: "run"},
		{name: "probe with argument", script: "probe now"},
		{name: "bad duration", script: "sleep 5"},
		{name: "waitpath without timeout", script: "waitpath /dev/sda"},
		{name: "negative duration", script: "sleep -1s"},
		{name: "zero credit", script: "credit 0"},
		{name: "credit not a number", script: "credit lots"},
		{name: "negative offset", script: "hash /dev/vda -1 512"},
		{name: "env without equals", script: "env LANG"},
		{name: "unterminated single quote", script: "run /bin/echo 'x"},
		{name: "unterminated double quote", script: `run /bin/echo "x\"`},
		{name: "trailing backslash", script: `run /bin/echo x\`},
		{name: "wait before start", script: "wait gate\nstart gate /bin/true"},
		{name: "job started twice", script: "start a /bin/true\nstart a /bin/true"},
		{name: "exec of a relative path", script: "exec init"},
		{name: "a step after exec", script: "exec /sbin/init\nprobe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, err := Parse(tt.script)
			if !errors.Is(err, ErrScenario) {
				t.Fatalf("Parse(%q) = %v, %v; want an ErrScenario", tt.script, steps, err)
			}
		})
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string
	}{
		{name: "blanks", line: " \ta  b\t", want: []string{"a", "b"}},
		{name: "comment", line: "a #b c", want: []string{"a"}},
		{name: "hash inside word", line: "a#b", want: []string{"a#b"}},
		{name: "concatenated quotes", line: `a'b c'"d e"f`, want: []string{"ab cd ef"}},
		{name: "empty quoted word", line: `'' ""`, want: []string{"", ""}},
		{name: "single quotes are literal", line: `'\n'`, want: []string{`\n`}},
		{name: "escaped blank", line: `a\ b`, want: []string{"a b"}},
		{name: "carriage return", line: "probe\r", want: []string{"probe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitWords(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitWords(%q) = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}
