// SPDX-License-Identifier: GPL-3.0-or-later

package seeders

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// BootConfigEdit sets one key=value token on the kernel command lines of a
// bootloader configuration: syslinux/extlinux/isolinux APPEND lines and GRUB
// linux, linuxefi and linux16 lines.
type BootConfigEdit struct {
	Key, Value string
	// Insert also adds the token to kernel lines that lack it; otherwise
	// only lines that already carry it change.
	Insert bool
}

// BootConfigResult counts the kernel lines an edit changed, and those it left
// alone because it could not edit them safely (quotes, backslashes or
// unusual bytes on the line, or no place for the token).
type BootConfigResult struct {
	Replaced, Inserted, Skipped int
}

// ErrBootToken: the key or value would not survive as one word of a kernel
// command line.
var ErrBootToken = errors.New("invalid boot configuration token")

// EditBootConfig returns text with the edit applied. Everything but the edited
// tokens stays byte-for-byte the same: other lines, comments, indentation,
// spacing, line endings (LF or CRLF), a missing final newline. A kernel line
// with quotes, backslashes, control characters or non-ASCII bytes is skipped
// rather than parsed: GRUB or the kernel could read words there differently
// from a plain split, and a wrong guess would corrupt the kernel's arguments.
// The value never appears in the error. The token goes before a "--" or "---" word (what
// follows is init's or a multiboot module's) and before a GRUB comment.
func EditBootConfig(text []byte, e BootConfigEdit) ([]byte, BootConfigResult, error) {
	var res BootConfigResult
	if !tokenSafe(e.Key, false) || !tokenSafe(e.Value, true) {
		return nil, res, fmt.Errorf("%w: %q", ErrBootToken, e.Key)
	}
	out := make([]byte, 0, len(text)+64)
	for rest := text; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		body := bytes.TrimRight(line, "\r\n")
		out = append(out, e.editLine(body, &res)...)
		out = append(out, line[len(body):]...)
	}
	return out, res, nil
}

// tokenSafe accepts what stays one unquoted word for GRUB, syslinux and the
// kernel's own parser: letters, digits and a few punctuation marks (enough
// for hex, base64url and paths). The key also may not contain '='.
func tokenSafe(s string, value bool) bool {
	if s == "" && !value {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("._-:/+,@", c):
		case c == '=' && value:
		default:
			return false
		}
	}
	return true
}

// kernelArgsStart returns the index of the first word that is a kernel
// argument, or -1 if the line is no kernel line.
func kernelArgsStart(first []byte) int {
	switch strings.ToLower(string(first)) {
	case "append": // syslinux: the rest of the line
		return 1
	case "linux", "linuxefi", "linux16": // GRUB: after the kernel path
		return 2
	}
	return -1
}

// plainLine reports whether the line's words are what a split on spaces and
// tabs says they are, for GRUB, syslinux and the kernel alike: printable
// ASCII only (the kernel also splits at \v, \f, \r and byte 0xA0), and no
// quotes or backslashes.
func plainLine(line []byte) bool {
	for _, c := range line {
		if (c < 0x20 && c != '\t') || c >= 0x7f || strings.IndexByte("\"'\\`", c) >= 0 {
			return false
		}
	}
	return true
}

type span struct{ start, end int }

func words(line []byte) []span {
	var ws []span
	for i := 0; i < len(line); {
		if line[i] == ' ' || line[i] == '\t' {
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		ws = append(ws, span{i, j})
		i = j
	}
	return ws
}

func (e BootConfigEdit) carries(word []byte) bool {
	return string(word) == e.Key || bytes.HasPrefix(word, []byte(e.Key+"="))
}

func (e BootConfigEdit) editLine(line []byte, res *BootConfigResult) []byte {
	ws := words(line)
	if len(ws) == 0 {
		return line
	}
	argsFrom := kernelArgsStart(line[ws[0].start:ws[0].end])
	if argsFrom < 0 {
		return line
	}
	ours := 0
	for _, w := range ws[min(argsFrom, len(ws)):] {
		if e.carries(line[w.start:w.end]) {
			ours++
		}
	}
	if ours == 0 && !e.Insert {
		return line
	}
	if !plainLine(line) || len(ws) < argsFrom {
		res.Skipped++
		return line
	}
	token := e.Key + "=" + e.Value
	if ours > 0 {
		var out []byte
		last := 0
		for _, w := range ws[argsFrom:] {
			if e.carries(line[w.start:w.end]) {
				out = append(append(out, line[last:w.start]...), token...)
				last = w.end
			}
		}
		res.Replaced++
		return append(out, line[last:]...)
	}
	// Insert after the last argument the kernel itself parses.
	at := ws[argsFrom-1].end
	for _, w := range ws[argsFrom:] {
		word := line[w.start:w.end]
		if string(word) == "--" || string(word) == "---" || word[0] == '#' {
			break
		}
		at = w.end
	}
	res.Inserted++
	out := append([]byte(nil), line[:at]...)
	out = append(append(out, ' '), token...)
	return append(out, line[at:]...)
}
