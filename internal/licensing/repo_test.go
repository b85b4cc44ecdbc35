// SPDX-License-Identifier: GPL-3.0-or-later

package licensing

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryProjectFileCarriesTheLine fails on a file of this checkout,
// committed or new, that should carry the SPDX line and lacks it.
func TestEveryProjectFileCarriesTheLine(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skip("not a git checkout (a release tarball): nothing lists the project's files")
	}
	files, err := ProjectFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	missing, err := Missing(root, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Errorf("without the line %q (add it with make spdx):\n%s", tag, strings.Join(missing, "\n"))
	}
}
