// SPDX-License-Identifier: GPL-3.0-or-later

package units

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// messageIDConst matches a MESSAGE_ID constant in the programs' sources.
var messageIDConst = regexp.MustCompile(`MessageID\s*=\s*"([0-9a-f]{32})"`)

// sentMessageIDs returns the MESSAGE_IDs the programs' sources define.
func sentMessageIDs(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, dir := range []string{"../cmd", "../internal"} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			for _, m := range messageIDConst.FindAllStringSubmatch(string(b), -1) {
				ids = append(ids, m[1])
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(ids) == 0 {
		t.Fatal("no MessageID constant found in the sources")
	}
	return ids
}

// TestCatalog installs the tree, builds journald's catalog database in it
// as the systemd package's trigger does, and asks journalctl for the
// entry of every MESSAGE_ID the programs send.
func TestCatalog(t *testing.T) {
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("journalctl not installed: sudo make deps installs the test packages")
	}
	root := installTree(t)
	journalctl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("journalctl", append([]string{"--root", root}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("journalctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// It reports a malformed catalog on stderr, and exits 0.
	if out := journalctl("--update-catalog"); out != "" {
		t.Errorf("journalctl --update-catalog: %s", out)
	}
	for _, id := range sentMessageIDs(t) {
		list := journalctl("--list-catalog", id)
		if !strings.HasPrefix(list, id+" entropy-gate: ") {
			t.Errorf("catalog entry of %s: %q, want one defined by entropy-gate", id, list)
		}
		entry := journalctl("--dump-catalog", id)
		for _, want := range []string{"Subject: ", "Defined-By: entropy-gate", "Support: ", "entropy-gate report"} {
			if !strings.Contains(entry, want) {
				t.Errorf("catalog entry of %s lacks %q:\n%s", id, want, entry)
			}
		}
	}
}
