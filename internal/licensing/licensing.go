// SPDX-License-Identifier: GPL-3.0-or-later

package licensing

import (
	"bytes"
	"path"
	"strings"
)

// Identifier is the project's licence, as an SPDX expression.
const Identifier = "GPL-3.0-or-later"

// tag is the SPDX line's text, without its comment markers.
const tag = "SPDX-License-Identifier: " + Identifier

// headerLines is how far from the top the SPDX line may be: after a
// shebang or an XML declaration.
const headerLines = 3

// comment is a file kind's comment syntax.
type comment struct{ open, close string }

var (
	slashes = comment{open: "// "}
	hash    = comment{open: "# "}
	xml     = comment{open: "<!-- ", close: " -->"}
)

// hashByName are the file names and extensions, after any ".in", whose
// comments start with #.
var hashByName = map[string]bool{
	"Makefile": true, ".sh": true, ".py": true, ".service": true, ".conf": true, ".preset": true,
	".desktop": true, ".po": true, ".lintian-overrides": true,
}

// skippedDirs hold files that are data, not code of ours.
var skippedDirs = []string{"testdata", "vendor"}

// commentFor says how a file at the slash-separated path with the given
// content takes a comment, and whether it should carry the SPDX line.
func commentFor(file string, content []byte) (comment, bool) {
	for _, dir := range strings.Split(path.Dir(file), "/") {
		for _, skipped := range skippedDirs {
			if dir == skipped {
				return comment{}, false
			}
		}
	}
	name := strings.TrimSuffix(path.Base(file), ".in")
	switch {
	case path.Ext(name) == ".go":
		return slashes, true
	case bytes.HasPrefix(content, []byte("#!")):
		return hash, true
	case bytes.HasPrefix(content, []byte("<")):
		return xml, true
	case hashByName[name] || hashByName[path.Ext(name)]:
		return hash, true
	}
	return comment{}, false
}

// Needs reports whether the file at path should carry the SPDX line.
func Needs(file string, content []byte) bool {
	_, ok := commentFor(file, content)
	return ok
}

// HasLine reports whether the SPDX line with our identifier is among the
// first lines of content.
func HasLine(content []byte) bool {
	lines := bytes.SplitN(content, []byte("\n"), headerLines+1)
	for _, line := range lines[:min(len(lines), headerLines)] {
		if bytes.Contains(line, []byte(tag)) {
			return true
		}
	}
	return false
}

// AddLine returns content with the SPDX line added in the file's comment
// syntax: after a shebang or an XML declaration, else at the top; in Go,
// followed by a blank line, so that it never becomes a package's doc
// comment. It reports false, and returns content as it was, when the
// file needs no line or has it already.
func AddLine(file string, content []byte) ([]byte, bool) {
	c, ok := commentFor(file, content)
	if !ok || HasLine(content) {
		return content, false
	}
	line := c.open + tag + c.close + "\n"
	if c == slashes {
		line += "\n"
	}
	at := 0
	if bytes.HasPrefix(content, []byte("#!")) || bytes.HasPrefix(content, []byte("<?xml")) {
		if at = bytes.IndexByte(content, '\n') + 1; at == 0 {
			// A single line without a newline.
			at, line = len(content), "\n"+line
		}
	}
	out := make([]byte, 0, len(content)+len(line))
	out = append(out, content[:at]...)
	out = append(out, line...)
	return append(out, content[at:]...), true
}
