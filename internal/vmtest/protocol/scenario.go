// SPDX-License-Identifier: GPL-3.0-or-later

package protocol

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Where the host puts things in the initramfs for the guest init.
const (
	// ScenarioPath holds the scenario text.
	ScenarioPath = "/vmtest/scenario"
	// ModulesDir holds kernel modules named NN-name.ko; init loads them in
	// name order, which the host makes dependency order.
	ModulesDir = "/vmtest/modules"
)

// ErrScenario is wrapped by every error Parse and NewStep return.
var ErrScenario = errors.New("invalid scenario")

// Step is one line of a scenario.
type Step struct {
	Index   int      // 1-based position among the steps; events carry it
	Line    int      // line number in the script, for messages
	Op      string   // the operation, e.g. "run" or "probe"
	Args    []string // the words after the operation
	MayFail bool     // written as "-op": an error is reported and the scenario goes on
}

// String renders the step in scenario syntax.
func (s Step) String() string {
	words := make([]string, 0, 1+len(s.Args))
	op := s.Op
	if s.MayFail {
		op = "-" + op
	}
	words = append(words, op)
	for _, a := range s.Args {
		words = append(words, quoteWord(a))
	}
	return strings.Join(words, " ")
}

// opSpec says how many arguments an operation takes (max < 0: no limit)
// and checks their values.
type opSpec struct {
	min, max int
	usage    string
	check    func(args []string) error
}

var ops = map[string]opSpec{
	"run":       {min: 1, max: -1, usage: "run CMD [ARG...]"},
	"start":     {min: 2, max: -1, usage: "start NAME CMD [ARG...]"},
	"wait":      {min: 1, max: 1, usage: "wait NAME"},
	"sleep":     {min: 1, max: 1, usage: "sleep DURATION", check: checkDuration(0)},
	"credit":    {min: 1, max: 1, usage: "credit BITS", check: checkCount(0)},
	"probe":     {min: 0, max: 0, usage: "probe"},
	"waitready": {min: 0, max: 1, usage: "waitready [INTERVAL]", check: checkDuration(0)},
	"pollready": {min: 0, max: 0, usage: "pollready"},
	"waitpath":  {min: 2, max: 2, usage: "waitpath PATH TIMEOUT", check: checkDuration(1)},
	"waitgone":  {min: 2, max: 2, usage: "waitgone PATH TIMEOUT", check: checkDuration(1)},
	"poweroff":  {min: 0, max: 0, usage: "poweroff"},
	"cat":       {min: 1, max: 1, usage: "cat PATH"},
	"hash":      {min: 3, max: 3, usage: "hash PATH OFFSET LENGTH", check: checkOffsets(1, 2)},
	"write":     {min: 2, max: 2, usage: "write PATH TEXT"},
	"pwrite":    {min: 3, max: 3, usage: "pwrite PATH OFFSET TEXT", check: checkOffsets(1)},
	"mount":     {min: 3, max: 4, usage: "mount SOURCE TARGET FSTYPE [OPTIONS]"},
	"env":       {min: 1, max: 1, usage: "env KEY=VALUE", check: checkAssignment},
	"exec":      {min: 1, max: -1, usage: "exec PATH [ARG...]", check: checkAbsolute},
}

// NewStep checks one operation and its arguments. Index and Line are left
// for the caller to set.
func NewStep(op string, args []string) (Step, error) {
	step := Step{Op: op}
	if len(args) > 0 {
		step.Args = args
	}
	if rest, ok := strings.CutPrefix(op, "-"); ok {
		step.Op, step.MayFail = rest, true
	}
	spec, ok := ops[step.Op]
	if !ok {
		return Step{}, fmt.Errorf("%w: unknown operation %q", ErrScenario, step.Op)
	}
	if len(args) < spec.min || (spec.max >= 0 && len(args) > spec.max) {
		return Step{}, fmt.Errorf("%w: usage: %s", ErrScenario, spec.usage)
	}
	if spec.check != nil {
		if err := spec.check(args); err != nil {
			return Step{}, fmt.Errorf("%w: %s: %w", ErrScenario, spec.usage, err)
		}
	}
	return step, nil
}

// Parse reads a scenario: one step per line, words separated by blanks,
// '…' and "…" quoting, backslash escapes, '#' comments.
func Parse(script string) ([]Step, error) {
	var steps []Step
	started := map[string]bool{}
	for i, text := range strings.Split(script, "\n") {
		lineNo := i + 1
		words, err := splitWords(text)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrScenario, lineNo, err)
		}
		if len(words) == 0 {
			continue
		}
		step, err := NewStep(words[0], words[1:])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		step.Index, step.Line = len(steps)+1, lineNo
		switch step.Op {
		case "start":
			if started[step.Args[0]] {
				return nil, fmt.Errorf("%w: line %d: job %q started twice", ErrScenario, lineNo, step.Args[0])
			}
			started[step.Args[0]] = true
		case "wait":
			if !started[step.Args[0]] {
				return nil, fmt.Errorf("%w: line %d: wait for %q, which no earlier step starts", ErrScenario, lineNo, step.Args[0])
			}
		}
		if n := len(steps); n > 0 && steps[n-1].Op == "exec" {
			return nil, fmt.Errorf("%w: line %d: no step can follow exec, which replaces init", ErrScenario, lineNo)
		}
		steps = append(steps, step)
	}
	return steps, nil
}

// splitWords splits one line into words like a small shell: blanks
// separate words, '…' is literal, "…" and a bare backslash escape one
// character (\n and \t inside "…" are newline and tab), and # at the start
// of a word comments out the rest of the line.
func splitWords(line string) ([]string, error) {
	var (
		words  []string
		word   strings.Builder
		inWord bool
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case c == '#' && !inWord:
			return words, nil
		case c == '\\':
			if i+1 == len(line) {
				return nil, errors.New("backslash at end of line")
			}
			i++
			word.WriteByte(line[i])
			inWord = true
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated '")
			}
			word.WriteString(line[i+1 : i+1+end])
			i += 1 + end
			inWord = true
		case c == '"':
			n, err := readDoubleQuoted(line[i+1:], &word)
			if err != nil {
				return nil, err
			}
			i += n // now at the closing quote
			inWord = true
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

// readDoubleQuoted copies the body of a "…" word into w and returns how
// many bytes it used, including the closing quote.
func readDoubleQuoted(s string, w *strings.Builder) (int, error) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return i + 1, nil
		case '\\':
			if i+1 == len(s) {
				return 0, errors.New(`unterminated "`)
			}
			i++
			switch s[i] {
			case 'n':
				w.WriteByte('\n')
			case 't':
				w.WriteByte('\t')
			default:
				w.WriteByte(s[i])
			}
		default:
			w.WriteByte(c)
		}
	}
	return 0, errors.New(`unterminated "`)
}

// quoteWord returns w in a form splitWords reads back as w.
func quoteWord(w string) string {
	if w != "" && !strings.ContainsAny(w, " \t\r\n'\"\\#") {
		return w
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(w) + `"`
}

// checkDuration checks that args[i], if present, is a non-negative Go duration.
func checkDuration(i int) func([]string) error {
	return func(args []string) error {
		if i >= len(args) {
			return nil
		}
		d, err := time.ParseDuration(args[i])
		if err != nil {
			return err
		}
		if d < 0 {
			return fmt.Errorf("negative duration %s", args[i])
		}
		return nil
	}
}

// checkCount checks that args[i] is a positive integer.
func checkCount(i int) func([]string) error {
	return func(args []string) error {
		n, err := strconv.ParseInt(args[i], 10, 32)
		if err != nil {
			return err
		}
		if n <= 0 {
			return fmt.Errorf("%d is not positive", n)
		}
		return nil
	}
}

// checkOffsets checks that the arguments at the given positions are
// non-negative integers.
func checkOffsets(positions ...int) func([]string) error {
	return func(args []string) error {
		for _, i := range positions {
			if _, err := strconv.ParseUint(args[i], 10, 63); err != nil {
				return err
			}
		}
		return nil
	}
}

// checkAbsolute checks that the program to exec is an absolute path:
// init has no PATH to search.
func checkAbsolute(args []string) error {
	if !strings.HasPrefix(args[0], "/") {
		return fmt.Errorf("%q is not an absolute path", args[0])
	}
	return nil
}

func checkAssignment(args []string) error {
	if key, _, ok := strings.Cut(args[0], "="); !ok || key == "" {
		return fmt.Errorf("%q is not KEY=VALUE", args[0])
	}
	return nil
}
