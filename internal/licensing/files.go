// SPDX-License-Identifier: GPL-3.0-or-later

package licensing

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// ProjectFiles lists the files of the git checkout at root that git
// tracks or would track (new files not ignored), as slash-separated paths
// relative to root.
func ProjectFiles(root string) ([]string, error) {
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return nil, fmt.Errorf("list files with git ls-files: %w", err)
	}
	files := strings.FieldsFunc(string(out), func(r rune) bool { return r == 0 })
	slices.Sort(files)
	return files, nil
}

// Missing returns the files that should carry the SPDX line but do not.
func Missing(root string, files []string) ([]string, error) {
	var missing []string
	for _, f := range files {
		content, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted, not yet committed
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		if Needs(f, content) && !HasLine(content) {
			missing = append(missing, f)
		}
	}
	return missing, nil
}

// AddMissing adds the SPDX line to each file that lacks it, keeping its
// mode, and returns the files it changed.
func AddMissing(root string, files []string) ([]string, error) {
	var changed []string
	for _, f := range files {
		p := filepath.Join(root, f)
		content, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return changed, fmt.Errorf("read %s: %w", f, err)
		}
		updated, ok := AddLine(f, content)
		if !ok {
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			return changed, fmt.Errorf("add the licence line to %s: %w", f, err)
		}
		if err := os.WriteFile(p, updated, info.Mode().Perm()); err != nil {
			return changed, fmt.Errorf("add the licence line to %s: %w", f, err)
		}
		changed = append(changed, f)
	}
	return changed, nil
}
