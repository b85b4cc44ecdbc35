// SPDX-License-Identifier: GPL-3.0-or-later

package gatestate

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFileWatcher follows the state file through the gate's life: its
// directories appear, it is replaced by rename, its directory is removed
// and made again. Each step must be reported; unrelated files must not.
func TestWatcher(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "run", "entropy-gate", "state.json")
	w, err := Watch(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
		for range w.Changes() {
			// Drains a pending report; ends once Changes is closed.
		}
		if err := w.Err(); err != nil {
			t.Errorf("Err after Close = %v, want nil", err)
		}
	}()
	write := func() {
		if err := Write(path, State{Phase: Waiting}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		do   func()
		// quiet: the step must not be reported.
		quiet bool
	}{
		{name: "unrelated file in an ancestor", quiet: true, do: func() { os.WriteFile(filepath.Join(root, "other"), []byte("x"), 0o644) }},
		{name: "directories and file appear", do: write},
		{name: "replaced by rename", do: write},
		{name: "sibling file", quiet: true, do: func() { os.WriteFile(filepath.Join(filepath.Dir(path), "other.json"), []byte("x"), 0o644) }},
		{name: "removed", do: func() { os.Remove(path) }},
		{name: "directory removed", do: func() { os.RemoveAll(filepath.Dir(path)) }},
		{name: "written again", do: write},
		{name: "written in place", do: func() { os.WriteFile(path, []byte("{}"), 0o644) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			drain(w)
			tt.do()
			// A report comes at once; silence is judged after a while.
			wait := 5 * time.Second
			if tt.quiet {
				wait = 200 * time.Millisecond
			}
			select {
			case <-w.Changes():
				if tt.quiet {
					t.Errorf("change reported")
				}
			case <-time.After(wait):
				if !tt.quiet {
					t.Errorf("no change reported")
				}
			}
		})
	}
}

// drain takes pending reports, waiting a little for late ones.
func drain(w *Watcher) {
	for {
		select {
		case <-w.Changes():
		case <-time.After(50 * time.Millisecond):
			return
		}
	}
}

func TestWatchRelative(t *testing.T) {
	if _, err := Watch("state.json"); err == nil {
		t.Error("Watch accepted a relative path")
	}
}

// TestWatcherDirectoryAppearingWhileArming: the state file's directories
// appear (and the file in them) after the watcher found them missing but
// before it watched their ancestor, so no event tells of them. Later
// writes must still be reported: the watcher must not stay on the
// ancestor waiting for a directory that is already there.
func TestWatcherDirectoryAppearingWhileArming(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "run", "entropy-gate", "state.json")
	testHookMissing = func(dir string) {
		if dir == filepath.Join(root, "run") {
			if err := Write(path, State{Phase: Waiting}); err != nil {
				t.Error(err)
			}
		}
	}
	w, err := Watch(path)
	testHookMissing = nil
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	drain(w)
	if err := Write(path, State{Phase: Open, Outcome: Ready}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Changes():
	case <-time.After(5 * time.Second):
		t.Fatal("a write after the directories appeared was not reported")
	}
}
