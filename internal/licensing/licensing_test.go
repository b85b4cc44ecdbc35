// SPDX-License-Identifier: GPL-3.0-or-later

package licensing

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

func TestAddLine(t *testing.T) {
	const goLine = "// SPDX-License-Identifier: GPL-3.0-or-later\n\n"
	const hashLine = "# SPDX-License-Identifier: GPL-3.0-or-later\n"
	for _, tt := range []struct {
		name, path, content string
		want                string // "" when no line is added
	}{
		{name: "go", path: "internal/x/x.go", content: "package x\n", want: goLine + "package x\n"},
		{name: "go build constraint", path: "x_linux.go", content: "//go:build linux\n\npackage x\n", want: goLine + "//go:build linux\n\npackage x\n"},
		{name: "shell after the shebang", path: ".ci/run", content: "#!/bin/sh\nset -e\n", want: "#!/bin/sh\n" + hashLine + "set -e\n"},
		{name: "shebang without newline", path: "units/hook", content: "#!/bin/sh", want: "#!/bin/sh\n" + hashLine},
		{name: "python", path: "docs/examples/check.py", content: "import os\n", want: hashLine + "import os\n"},
		{name: "makefile", path: "Makefile", content: "all:\n", want: hashLine + "all:\n"},
		{name: "unit", path: "units/system/x.service", content: "[Unit]\n", want: hashLine + "[Unit]\n"},
		{name: "drop-in", path: "units/system/x.service.d/x.conf", content: "[Unit]\n", want: hashLine + "[Unit]\n"},
		{name: "desktop entry template", path: "units/x.desktop.in", content: "[Desktop Entry]\n", want: hashLine + "[Desktop Entry]\n"},
		{name: "translation", path: "po/de.po", content: "msgid \"\"\n", want: hashLine + "msgid \"\"\n"},
		{name: "xml after the declaration", path: "units/dbus/x.conf", content: "<?xml version=\"1.0\"?>\n<busconfig/>\n",
			want: "<?xml version=\"1.0\"?>\n<!-- SPDX-License-Identifier: GPL-3.0-or-later -->\n<busconfig/>\n"},
		{name: "xml without declaration", path: "units/dbus/x.xml", content: "<!DOCTYPE node>\n<node/>\n",
			want: "<!-- SPDX-License-Identifier: GPL-3.0-or-later -->\n<!DOCTYPE node>\n<node/>\n"},
		{name: "already there", path: "x.go", content: goLine + "package x\n"},
		{name: "markdown", path: "README.md", content: "# x\n"},
		{name: "template written by xgettext", path: "po/entropy-gate.pot", content: "msgid \"\"\n"},
		{name: "test data", path: "internal/x/testdata/a.conf", content: "[Gate]\n"},
		{name: "test data script", path: "internal/x/testdata/run", content: "#!/bin/sh\n"},
		{name: "go.mod", path: "go.mod", content: "module x\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, added := AddLine(tt.path, []byte(tt.content))
			switch {
			case tt.want == "" && (added || string(got) != tt.content):
				t.Errorf("AddLine changed %s: %q", tt.path, got)
			case tt.want != "" && (!added || string(got) != tt.want):
				t.Errorf("AddLine(%s) = %q, %v; want %q", tt.path, got, added, tt.want)
			case tt.want != "" && !HasLine(got):
				t.Errorf("HasLine does not see the line AddLine added: %q", got)
			}
		})
	}
}

// TestAddLineKeepsGoDocComments: the line must not become, or detach, a
// package's documentation.
func TestAddLineKeepsGoDocComments(t *testing.T) {
	const src = "// Package x does things.\npackage x\n"
	got, _ := AddLine("x/doc.go", []byte(src))
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", got, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	if doc := f.Doc.Text(); doc != "Package x does things.\n" {
		t.Errorf("package doc after AddLine: %q", doc)
	}
}

func TestAddMissingThenNothingIsMissing(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed (apt-get install git)")
	}
	root := t.TempDir()
	files := map[string]string{"a.go": "package a\n", "run": "#!/bin/sh\n", "notes.md": "# notes\n", "new.py": "pass\n", "gone.go": "package a\n"}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "a.go", "run", "notes.md", "gone.go"}} {
		if out, err := exec.Command("git", append([]string{"-C", root}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	// A new file counts before it is added; a deleted one no longer does.
	if err := os.Remove(filepath.Join(root, "gone.go")); err != nil {
		t.Fatal(err)
	}
	tracked, err := ProjectFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	if missing, err := Missing(root, tracked); err != nil || !slices.Equal(missing, []string{"a.go", "new.py", "run"}) {
		t.Errorf("Missing = %q, %v; want a.go, new.py and run", missing, err)
	}
	if changed, err := AddMissing(root, tracked); err != nil || !slices.Equal(changed, []string{"a.go", "new.py", "run"}) {
		t.Errorf("AddMissing changed %q, %v", changed, err)
	}
	if info, err := os.Stat(filepath.Join(root, "run")); err != nil {
		t.Error(err)
	} else if info.Mode().Perm() != 0o755 {
		t.Errorf("AddMissing lost the script's mode: %v", info.Mode())
	}
	if missing, err := Missing(root, tracked); err != nil || len(missing) > 0 {
		t.Errorf("after AddMissing, Missing = %q, %v", missing, err)
	}
}
