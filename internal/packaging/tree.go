// SPDX-License-Identifier: GPL-3.0-or-later

package packaging

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// Tree describes every file below a root by its path relative to the
// root: its type and mode, a regular file's size, a link's target.
type Tree map[string]string

// Snapshot walks root, leaving out the folders skip names (relative to
// root, with their content): the ones a package manager keeps its own
// records and logs in.
func Snapshot(root string, skip ...string) (Tree, error) {
	tree := Tree{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		if slices.Contains(skip, rel) {
			return fs.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			tree[rel] = "link -> " + target
		case info.Mode().IsRegular():
			tree[rel] = fmt.Sprintf("file %v %d bytes", info.Mode(), info.Size())
		default:
			tree[rel] = info.Mode().String()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", root, err)
	}
	return tree, nil
}

// Diff lists, by path, what after has that before had not, what it
// lacks, and what changed, each as "path: description".
func Diff(before, after Tree) (added, removed, changed []string) {
	paths := slices.Collect(maps.Keys(after))
	for path := range before {
		if _, ok := after[path]; !ok {
			paths = append(paths, path)
		}
	}
	slices.Sort(paths)
	for _, path := range paths {
		was, inBefore := before[path]
		is, inAfter := after[path]
		switch {
		case !inBefore:
			added = append(added, path+": "+is)
		case !inAfter:
			removed = append(removed, path+": "+was)
		case was != is:
			changed = append(changed, path+": "+was+" => "+is)
		}
	}
	return added, removed, changed
}
